"""Pilot tests of the operator console: every flow, checked in the store afterwards.

Each test drives ``JobtuiApp`` headless (``App.run_test``) on a real SQLite store in
``tmp_path``. Assertions read the store back through ``OperatorAPI`` (what the
operator's key did), not only the screen. Nothing sleeps to wait for work: tests
wait for a rendered refresh (``app.refresh_now()``) or poll a condition with a timeout.
"""

from __future__ import annotations

import asyncio
import urllib.parse
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from pydantic import BaseModel
from textual import events
from textual.css.query import NoMatches
from textual.widgets import Button, Input, Label, Log, Select, Static

from jobtui.engine.api import OperatorAPI, waiting_for
from jobtui.engine.config import Settings
from jobtui.engine.context import JobContext
from jobtui.engine.errors import JobFailed
from jobtui.engine.models import Batch, Job, JobError, JobFilter, JobStatus, WorkerInfo
from jobtui.engine.registry import Registry, default_registry
from jobtui.engine.store.sqlite import SQLiteStore
from jobtui.engine.worker import Engine
from jobtui.tui.app import JobtuiApp
from jobtui.tui.console import start_process_helpers
from jobtui.tui.screens.detail import DetailScreen
from jobtui.tui.screens.dialogs import ConfirmScreen, FilterScreen, QuitScreen
from jobtui.tui.screens.enqueue import EnqueueScreen
from jobtui.tui.screens.main import MainScreen
from jobtui.tui.screens.rows import HELD
from jobtui.tui.screens.workers import WorkersScreen
from jobtui.tui.widgets.logtail import NO_JOBS_HINT
from jobtui.tui.widgets.status import StatusLine, render_status
from jobtui.tui.widgets.tables import KeyedTable
from tests.test_console_data import (
    FAILED_JOB,
    NOW,
    RUNNING_JOB,
    frozen_clock,
    load_demo,
    make_pdfs,
    until,
)
from tests.util import api_of

SIZE = (120, 40)
FAST = {"poll_interval": 0.05, "heartbeat_interval": 0.1, "watchdog_interval": 0.2}


pytestmark = pytest.mark.usefixtures("console_config_dir")


@pytest.fixture
def store(sqlite_store: SQLiteStore) -> SQLiteStore:
    return sqlite_store


class Gate:
    def __init__(self) -> None:
        self.release = asyncio.Event()
        self.inside = 0


def hold_registry(gate: Gate) -> Registry:
    reg = default_registry()

    class Params(BaseModel):
        path: str | None = None

    @reg.handler("hold", params=Params)
    async def hold(ctx: JobContext, params: Params) -> dict[str, Any]:
        gate.inside += 1
        try:
            while not gate.release.is_set():
                ctx.check_cancelled()
                await asyncio.sleep(0.02)
        finally:
            gate.inside -= 1
        return {"ok": True}

    @reg.handler("broken", max_attempts=1)
    async def broken(ctx: JobContext, params: Any) -> None:
        raise JobFailed("PDF_CORRUPT", "not readable", {"why": "test"})

    return reg


@pytest.fixture
def gate() -> Gate:
    return Gate()


@pytest.fixture
async def engine(store: SQLiteStore, gate: Gate, tmp_path: Path) -> AsyncIterator[Engine]:
    start_process_helpers()  # as run_console does, before Textual captures stderr
    eng = Engine(
        store,
        hold_registry(gate),
        Settings(concurrency=4, output_dir=tmp_path / "out", shutdown_grace=10, **FAST),
    )
    await eng.start()
    yield eng
    gate.release.set()
    await eng.stop(grace=5)  # no-op for tests whose app already stopped it


def console(api: OperatorAPI, engine: Engine | None = None, **kw: Any) -> JobtuiApp:
    settings = engine.settings if engine is not None else Settings()
    return JobtuiApp(api=api, engine=engine, settings=settings, refresh_interval=1.0, **kw)


def watch_only(store: SQLiteStore, **kw: Any) -> JobtuiApp:
    return console(OperatorAPI(store, default_registry()), None, **kw)


def row_keys(app: JobtuiApp, table_id: str) -> list[str]:
    table = app.screen_stack[0].query_one(table_id, KeyedTable)
    return [str(k.value) for k in table.rows]


async def select_job(app: JobtuiApp, job_id: str) -> None:
    await app.refresh_now()
    assert app.main.query_one("#jobs", KeyedTable).select_key(job_id), f"{job_id} not shown"
    await app.refresh_now()


async def job(api: OperatorAPI, job_id: str) -> Job:
    detail = await api.job_detail(job_id)
    assert detail is not None
    return detail.job


# -- the main screen ---------------------------------------------------------------------


async def test_main_screen_shows_status_batches_jobs_and_log(store: SQLiteStore) -> None:
    await load_demo(store)
    app = watch_only(store, clock=frozen_clock)
    async with app.run_test(size=SIZE) as pilot:
        await app.refresh_now()
        assert row_keys(app, "#batches") == ["__all__", "invoices", "scans", "letters"]
        assert len(row_keys(app, "#jobs")) == len(app.main.jobs) > 0
        status = str(app.main.query_one(StatusLine).render())
        assert "connected" in status and "queue 4" in status and "running 1" in status
        assert "workers 1 live" in status
        await pilot.press("shift+tab", "down")  # batches table: invoices
        await app.refresh_now()
        assert app.main.batch_id == "invoices"
        assert len(row_keys(app, "#jobs")) == 6
        await select_job(app, RUNNING_JOB)
        log = app.main.query_one("#log", Log)
        assert "page 8/20: no text layer" in "\n".join(log.lines)


async def test_an_empty_store_says_how_to_start(store: SQLiteStore) -> None:
    app = watch_only(store)
    async with app.run_test(size=(80, 24)):
        await app.refresh_now()
        log = app.main.query_one("#log", Log)
        assert list(log.lines) == list(NO_JOBS_HINT)
        assert all(len(line) <= 76 for line in NO_JOBS_HINT)  # inside the panel at 80x24
        assert log.scroll_y == 0 and log.scrollable_content_region.height >= len(NO_JOBS_HINT)
        await app.refresh_now()
        assert list(log.lines) == list(NO_JOBS_HINT)  # written once, not once per refresh
        await OperatorAPI(store, default_registry()).enqueue("noop", [{}])
        await app.refresh_now()
        await app.refresh_now()
        assert not any(line in NO_JOBS_HINT for line in log.lines)


async def test_keys_that_do_not_apply_are_disabled(store: SQLiteStore) -> None:
    await load_demo(store)
    app = watch_only(store)
    async with app.run_test(size=SIZE):
        main = app.main
        await select_job(app, RUNNING_JOB)
        assert main.check_action("retry_job", ()) is None  # running: nothing to retry
        assert main.check_action("cancel_job", ()) is True
        assert main.check_action("pause", ()) is None  # watch only: no engine here
        assert main.check_action("retry_failed", ()) is None  # no batch selected
        await select_job(app, FAILED_JOB)
        assert main.check_action("retry_job", ()) is True
        assert main.check_action("cancel_job", ()) is None


async def test_unchanged_refresh_writes_no_cells(store: SQLiteStore) -> None:
    await load_demo(store)
    app = watch_only(store, clock=frozen_clock)
    async with app.run_test(size=SIZE):
        await app.refresh_now()
        await app.refresh_now()
        assert app.main.query_one("#jobs", KeyedTable).updates == 0
        assert app.main.query_one("#batches", KeyedTable).updates == 0


async def test_pages_of_jobs_are_fetched_one_at_a_time(store: SQLiteStore) -> None:
    api = OperatorAPI(store, default_registry())
    await api.enqueue("noop", [{"path": f"/p/{i:03d}.pdf"} for i in range(120)], batch_name="many")
    app = console(api)
    async with app.run_test(size=SIZE) as pilot:
        await app.refresh_now()
        await pilot.pause()  # the layout settles (the batches table grows with its rows)
        await app.refresh_now()
        first = row_keys(app, "#jobs")
        size = app.main.page_size()
        assert len(first) == size < 120
        await pilot.press("pagedown")
        await app.refresh_now()
        second = row_keys(app, "#jobs")
        assert len(second) == size and not set(first) & set(second)
        assert app.snapshot is not None and app.snapshot.page is not None
        assert len(app.snapshot.page.jobs) == size  # only the visible page was fetched
        await pilot.press("pageup")
        await app.refresh_now()
        assert row_keys(app, "#jobs") == first


# -- steering: retry, retry failed, cancel ---------------------------------------------------


async def test_retry_job(store: SQLiteStore) -> None:
    await load_demo(store)
    app = watch_only(store)
    async with app.run_test(size=SIZE) as pilot:
        await select_job(app, FAILED_JOB)
        await pilot.press("r")
        await until(lambda: _status(app.api, FAILED_JOB, JobStatus.PENDING), what="retried")
    j = await job(app.api, FAILED_JOB)
    assert j.error is None and j.attempts == 0


async def test_retry_failed_of_batch(store: SQLiteStore) -> None:
    api = OperatorAPI(store, default_registry())
    await store.create_batch(Batch(batch_id="b", name="b", total_jobs=5))
    await store.create_batch(Batch(batch_id="other", name="other", total_jobs=1))
    failed = JobError(code="HANDLER_ERROR", message="boom")
    await store.insert_jobs(
        [Job(batch_id="b", status=JobStatus.FAILED, error=failed, attempts=3) for _ in range(3)]
        + [Job(batch_id="b", status=JobStatus.COMPLETED, attempts=1) for _ in range(2)]
        + [Job(batch_id="other", status=JobStatus.FAILED, error=failed, attempts=3)]
    )
    app = console(api)
    async with app.run_test(size=SIZE) as pilot:
        await app.refresh_now()
        app.main.select_batch("b")
        await app.refresh_now()
        assert app.main.check_action("retry_failed", ()) is True
        await pilot.press("R")
        await until(lambda: _counts(api, "b", {"pending": 3, "completed": 2}), what="retried")
    assert (await api.count_jobs(JobFilter(batch_id="other"))) == {"failed": 1}


async def test_cancel_job_asks_and_no_is_the_default(store: SQLiteStore) -> None:
    await load_demo(store)
    pending = "let020" + "0" * 26
    app = watch_only(store)
    async with app.run_test(size=SIZE) as pilot:
        await select_job(app, pending)
        await pilot.press("c")
        assert isinstance(app.screen, ConfirmScreen)
        assert app.screen.focused is not None and app.screen.focused.id == "no"
        await pilot.press("enter")  # enter on the focused "No"
        await pilot.pause()
        assert isinstance(app.screen, MainScreen)
        assert (await job(app.api, pending)).status == JobStatus.PENDING
        await pilot.press("c")
        await pilot.click("#yes")
        await until(lambda: _status(app.api, pending, JobStatus.CANCELLED), what="cancelled")


async def test_cancel_batch_with_confirm_and_declined(store: SQLiteStore) -> None:
    await load_demo(store)
    app = watch_only(store)
    async with app.run_test(size=SIZE) as pilot:
        await app.refresh_now()
        app.main.select_batch("letters")
        await app.refresh_now()
        await pilot.press("C")
        assert isinstance(app.screen, ConfirmScreen)
        await pilot.press("escape")
        await pilot.pause()
        assert await app.api.count_jobs(JobFilter(batch_id="letters")) == {"pending": 3}
        await pilot.press("C", "y")
        await until(lambda: _counts(app.api, "letters", {"cancelled": 3}), what="batch cancelled")
    # the other batches are untouched
    assert (await app.api.count_jobs(JobFilter(batch_id="invoices")))["pending"] == 1


# -- filter, detail, workers ---------------------------------------------------------------------


async def test_filter_by_text_status_and_type(store: SQLiteStore) -> None:
    await load_demo(store)
    api = OperatorAPI(store, default_registry())
    await api.enqueue("noop", [{"path": "/data/x/inv-9999.pdf"}], batch_name="x")
    app = console(api)
    async with app.run_test(size=SIZE) as pilot:
        await app.refresh_now()
        await pilot.press("slash")
        assert isinstance(app.screen, FilterScreen)
        await pilot.press(*"inv-")
        app.screen.query_one("#filter-status", Select).value = JobStatus.PENDING
        await pilot.press("enter")
        await app.refresh_now()
        shown = set(row_keys(app, "#jobs"))
        want = await api.all_jobs(JobFilter(text="inv-", status=[JobStatus.PENDING]))
        assert shown == {j.job_id for j in want} and len(shown) == 2
        await pilot.press("slash")
        app.screen.query_one("#filter-type", Select).value = "noop"
        await pilot.click("#apply")
        await app.refresh_now()
        assert len(row_keys(app, "#jobs")) == 1
        await pilot.press("escape")  # clears the filter
        await app.refresh_now()
        assert app.snapshot is not None and app.snapshot.scope_total == 14


async def test_detail_shows_parameters_error_attempts_and_full_log(store: SQLiteStore) -> None:
    await load_demo(store)
    app = watch_only(store)
    async with app.run_test(size=SIZE) as pilot:
        await select_job(app, FAILED_JOB)
        await pilot.press("enter")
        assert isinstance(app.screen, DetailScreen)
        screen = app.screen
        await until(lambda: screen.detail is not None, what="detail loaded")
        text = " ".join(str(s.render()) for s in screen.query(Static))
        assert "PDF_CORRUPT" in text and "trailer not found" in text and '"size": 1834' in text
        assert "attempts 1/3" in text and "/data/invoices/inv-0004.pdf" in text
        assert '"languages": "deu+eng"' in text
        log = screen.query_one("#detail-log", Log)
        assert any("opening inv-0004.pdf" in line for line in log.lines)
        await pilot.press("escape")
        assert isinstance(app.screen, MainScreen)


async def test_workers_view(store: SQLiteStore) -> None:
    await load_demo(store)
    await store.upsert_worker(
        WorkerInfo(
            worker_id="gone-1",
            host="old-box",
            pid=7,
            job_types=["noop"],
            concurrency=1,
            heartbeat_at=NOW.replace(year=2025),
        )
    )
    app = watch_only(store, clock=frozen_clock)
    async with app.run_test(size=SIZE) as pilot:
        await app.refresh_now()
        await pilot.press("w")
        assert isinstance(app.screen, WorkersScreen)
        table = app.screen.query_one(KeyedTable)
        await until(lambda: table.row_count == 2, what="two workers")
        row = table.get_row("scan-01:4242:a1b2c3")
        cells = [str(c) for c in row]
        assert cells[0] == "scan-01" and cells[1] == "4242" and "pdf.transcribe" in cells[3]
        assert str(table.get_row("gone-1")[-1]) == "gone"
        await pilot.press("escape")
        assert isinstance(app.screen, MainScreen)


# -- the engine in this process: pause, quit -------------------------------------------------------


async def test_pause_and_resume_claiming(store: SQLiteStore, engine: Engine, gate: Gate) -> None:
    app = console(api_of(engine), engine)
    async with app.run_test(size=SIZE) as pilot:
        await app.refresh_now()
        await pilot.press("p")
        assert engine.paused
        res = await api_of(engine).enqueue("noop", [{"path": "/n/1.pdf"}, {"path": "/n/2.pdf"}])
        claims = engine.claims
        engine.wake()
        await app.refresh_now()
        await app.refresh_now()
        assert engine.claims == claims
        assert await api_of(engine).count_jobs(JobFilter(batch_id=res.batch_id)) == {"pending": 2}
        assert "PAUSED" in str(app.main.query_one(StatusLine).render())
        await pilot.press("p")
        assert not engine.paused
        await until(lambda: _counts(api_of(engine), res.batch_id, {"completed": 2}), what="done")


async def _running_job(engine: Engine, gate: Gate) -> str:
    res = await api_of(engine).enqueue("hold", [{"path": "/h/1.pdf"}])
    await until(lambda: gate.inside == 1, what="job running")
    return res.job_ids[0]


async def test_cancel_reaches_a_job_running_here(
    store: SQLiteStore, engine: Engine, gate: Gate
) -> None:
    job_id = await _running_job(engine, gate)
    app = console(api_of(engine), engine)
    async with app.run_test(size=SIZE) as pilot:
        await select_job(app, job_id)
        await pilot.press("c")
        assert isinstance(app.screen, ConfirmScreen)
        await pilot.press("y")
        await until(lambda: _status(api_of(engine), job_id, JobStatus.CANCELLED), what="cancelled")
        await until(lambda: gate.inside == 0, what="handler stopped")
        assert job_id not in engine.running


async def test_quit_hands_running_jobs_back(store: SQLiteStore, engine: Engine, gate: Gate) -> None:
    job_id = await _running_job(engine, gate)
    app = console(api_of(engine), engine)
    async with app.run_test(size=SIZE) as pilot:
        await app.refresh_now()
        await pilot.press("q")
        assert isinstance(app.screen, QuitScreen)
        await pilot.click("#handback")
        await until(lambda: app.return_code is not None, what="app exit")
    j = await job(api_of(engine), job_id)
    assert j.status == JobStatus.PENDING and j.attempts == 0 and j.lease is None


async def test_quit_finishes_running_jobs(store: SQLiteStore, engine: Engine, gate: Gate) -> None:
    job_id = await _running_job(engine, gate)
    app = console(api_of(engine), engine)
    async with app.run_test(size=SIZE) as pilot:
        await app.refresh_now()
        await pilot.press("q")
        await pilot.click("#finish")
        await until(lambda: app.engine_stopped, what="engine stopping")
        assert app.return_code is None  # still waiting for the job
        gate.release.set()
        await until(lambda: app.return_code is not None, what="app exit")
    assert (await job(api_of(engine), job_id)).status == JobStatus.COMPLETED


async def test_quit_can_be_called_off(store: SQLiteStore, engine: Engine, gate: Gate) -> None:
    job_id = await _running_job(engine, gate)
    app = console(api_of(engine), engine)
    async with app.run_test(size=SIZE) as pilot:
        await app.refresh_now()
        await pilot.press("q")
        assert app.screen.focused is not None and app.screen.focused.id == "stay"
        await pilot.press("enter")
        await pilot.pause()
        assert isinstance(app.screen, MainScreen) and app.return_code is None
        assert (await job(api_of(engine), job_id)).status == JobStatus.PROCESSING


async def test_quit_without_running_jobs_exits_at_once(store: SQLiteStore) -> None:
    app = watch_only(store)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("q")
        await until(lambda: app.return_code == 0, what="exit")


# -- enqueue: typing, pasting -------------------------------------------------------------------


@pytest.fixture
def inbox(tmp_path: Path) -> Path:
    folder = tmp_path / "in box"
    make_pdfs(folder, 3)
    (folder / "notes.txt").write_text("not a pdf")
    make_pdfs(folder / "sub", 1)
    return folder


async def _found(app: JobtuiApp, text: str) -> bool:
    screen = app.screen
    if not isinstance(screen, EnqueueScreen):
        return False
    try:  # ready: composed, its Select mounted (escape before that trips Textual's Select)
        return screen.query_one("#enqueue-type", Select).is_mounted and text in str(
            screen.query_one("#enqueue-found", Label).render()
        )
    except NoMatches:
        return False


async def test_enqueue_by_typing(
    store: SQLiteStore, engine: Engine, inbox: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(inbox.parent)  # a relative path keeps the typing short
    app = console(api_of(engine), engine)
    async with app.run_test(size=SIZE) as pilot:
        await app.refresh_now()
        await pilot.press("e")
        assert isinstance(app.screen, EnqueueScreen)
        await pilot.press(*"./in\\ box")
        await until(lambda: _found(app, "Found 4 files: 4 pdf.transcribe"), what="scan")
        app.screen.query_one("#enqueue-type", Select).value = "noop"  # noop takes every file
        await until(lambda: _found(app, "Found 5 files"), what="rescan")
        await pilot.press("enter")
        await until(lambda: _batch_with(api_of(engine), 5), what="batch of 5")
        await until(lambda: app.main.batch_id is not None, what="new batch selected")
        assert app.main.selected_batch is not None


async def test_enqueue_not_recursive_counts_only_the_top_folder(
    store: SQLiteStore, inbox: Path
) -> None:
    app = watch_only(store)
    async with app.run_test(size=SIZE) as pilot:
        await app.refresh_now()
        app.open_enqueue([str(inbox)])
        await until(lambda: _found(app, "Found 4 files: 4 pdf.transcribe"), what="scan")
        await pilot.click("#enqueue-recursive")
        await until(lambda: _found(app, "Found 3 files"), what="rescan")


def _spellings(folder: Path) -> dict[str, str]:
    p = str(folder)
    return {
        "single-quoted": f"'{p}'",
        "backslash": p.replace(" ", "\\ "),
        "double-quoted": f'"{p}"',
        "file-url": "file://" + urllib.parse.quote(p),
        "trailing-space": p.replace(" ", "\\ ") + " ",
        "trailing-newline": f"'{p}'\n",
    }


SPELLINGS = list(_spellings(Path("/x")))


@pytest.mark.parametrize("spelling", SPELLINGS)
@pytest.mark.parametrize("focus", ["jobs-table", "filter-input"])
async def test_paste_opens_enqueue_with_the_path(
    store: SQLiteStore, inbox: Path, spelling: str, focus: str
) -> None:
    app = watch_only(store)
    async with app.run_test(size=SIZE) as pilot:
        await app.refresh_now()
        if focus == "filter-input":
            await pilot.press("slash")
            assert isinstance(app.focused, Input)
        app.post_message(events.Paste(_spellings(inbox)[spelling]))
        await until(lambda: isinstance(app.screen, EnqueueScreen), what="enqueue dialog")
        await until(lambda: _found(app, "Found 4 files: 4 pdf.transcribe"), what="scan")
        screen = app.screen
        assert isinstance(screen, EnqueueScreen)
        assert screen.paths == [str(inbox)]
        await pilot.press("escape")
        await until(lambda: isinstance(app.screen, MainScreen), what="dialog closed")
        assert not app.main.filter.active  # the paste did not land in the filter's input


async def test_paste_into_the_open_dialog_replaces_the_path(
    store: SQLiteStore, inbox: Path, tmp_path: Path
) -> None:
    pdf = make_pdfs(tmp_path / "single", 1)[0]
    app = watch_only(store)
    async with app.run_test(size=SIZE) as pilot:
        await app.refresh_now()
        app.open_enqueue([str(inbox)])
        await until(lambda: _found(app, "Found 4 files: 4 pdf.transcribe"), what="scan")
        app.screen.query_one("#enqueue-languages", Input).focus()
        await pilot.pause()
        app.post_message(events.Paste(str(pdf).replace(" ", "\\ ") + "\n"))
        await until(lambda: _found(app, "Found 1 file:"), what="rescan")
        assert app.screen.query_one("#enqueue-languages", Input).value == "deu+eng"
        assert app.screen.paths == [str(pdf)]  # type: ignore[attr-defined]


async def test_paste_of_several_paths_and_home(
    store: SQLiteStore, inbox: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HOME", str(tmp_path))
    other = tmp_path / "other"
    make_pdfs(other, 2)
    app = watch_only(store)
    async with app.run_test(size=SIZE):
        app.post_message(events.Paste("~/in\\ box\n~/other\n"))
        await until(lambda: _found(app, "Found 6 files"), what="scan of both")
        assert app.screen.paths == [str(inbox), str(other)]  # type: ignore[attr-defined]


async def test_paste_that_is_not_a_path_goes_to_the_input(store: SQLiteStore) -> None:
    app = watch_only(store)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("slash")
        app.post_message(events.Paste("/no/such/folder"))
        await pilot.pause()
        assert isinstance(app.screen, FilterScreen)
        assert app.screen.query_one("#filter-text", Input).value == "/no/such/folder"


@pytest.mark.parametrize("size", [SIZE, (80, 24)])
async def test_enqueue_by_paste_and_confirm(
    store: SQLiteStore, engine: Engine, inbox: Path, size: tuple[int, int]
) -> None:
    app = console(api_of(engine), engine)
    async with app.run_test(size=size) as pilot:
        await app.refresh_now()
        app.post_message(events.Paste(f"file://{urllib.parse.quote(str(inbox))}\n"))
        await until(
            lambda: _found(
                app, "Found 4 files: 4 pdf.transcribe; skipped 1 no job type takes it (notes.txt)"
            ),
            what="scan",
        )
        button = app.screen.query_one("#enqueue-ok", Button)
        assert not button.disabled and str(button.label) == "Enqueue 4 files"
        await pilot.pause()
        # the whole label is drawn (its width was once kept from "Enqueue": "Enqueue 4")
        assert button.content_size.width >= button.label.cell_length
        await pilot.click("#enqueue-ok")
        batch = await until(lambda: _batch_with(api_of(engine), 4), what="batch of 4")
        try:
            await until(
                lambda: _counts(api_of(engine), batch, {"completed": 4}),
                timeout=90,
                what="PDFs transcribed",
            )
        finally:
            jobs = await api_of(engine).all_jobs(JobFilter(batch_id=batch))
            print([(j.status, j.error) for j in jobs])
        assert sorted(Path(j.path or "").name for j in jobs) == [
            "doc 0.pdf",
            "doc 0.pdf",
            "doc 1.pdf",
            "doc 2.pdf",
        ]
        assert all(j.parameters.get("languages") == "deu+eng" for j in jobs)


# -- the store goes away and comes back ------------------------------------------------------------


async def test_disconnected_store_is_shown_and_recovered(store: SQLiteStore) -> None:
    await load_demo(store)
    app = watch_only(store)
    async with app.run_test(size=SIZE):
        await app.refresh_now()
        await store.close()
        await app.refresh_now()
        status = str(app.main.query_one(StatusLine).render())
        assert "DISCONNECTED" in status
        assert app.main.query_one("#jobs", KeyedTable).row_count > 0  # last data stays
        await store.open()
        await app.refresh_now()
        assert "connected" in str(app.main.query_one(StatusLine).render())
        assert app.snapshot is not None and app.snapshot.status.connected


# -- themes and the command palette -----------------------------------------------------------------


async def test_theme_choice_persists(store: SQLiteStore, console_config_dir: Path) -> None:
    app = watch_only(store)
    async with app.run_test(size=SIZE) as pilot:
        assert app.theme == "jobtui-dark"
        app.theme = "jobtui-light"
        await pilot.pause()
    assert (console_config_dir / "console.json").exists()
    again = watch_only(store)
    async with again.run_test(size=SIZE):
        assert again.theme == "jobtui-light"


async def test_broken_theme_file_gives_one_notification(store: SQLiteStore, tmp_path: Path) -> None:
    themes = tmp_path / "themes"
    themes.mkdir()
    (themes / "good.yaml").write_text("name: good\nprimary: '#336699'\n")
    (themes / "bad.yaml").write_text("name: bad\nprimary: not-a-colour\n")
    (themes / "worse.toml").write_text("name = [\n")
    app = watch_only(store, theme_dirs=[Path("themes").resolve(), themes])
    async with app.run_test(size=SIZE):
        assert "good" in app.available_themes and "bad" not in app.available_themes
        assert {"jobtui-dark", "jobtui-light", "jobtui-high-contrast"} <= set(app.available_themes)
        assert len(app._notifications) == 1
        assert app.theme == "jobtui-dark"
        assert len(app.theme_errors) == 2


async def test_command_palette_offers_every_action_and_themes(store: SQLiteStore) -> None:
    await load_demo(store)
    app = watch_only(store)
    async with app.run_test(size=SIZE):
        await select_job(app, FAILED_JOB)
        app.main.select_batch("invoices")
        await app.refresh_now()
        await app.main.query_one("#jobs", KeyedTable).run_action("cursor_down")
        titles = {c.title for c in app.get_system_commands(app.main)}
        assert {"Enqueue", "Retry failed", "Cancel batch", "Filter", "Workers", "Help"} <= titles
        assert "Theme" in titles and "Quit" in titles


# -- helpers -------------------------------------------------------------------------------------------


async def _status(api: OperatorAPI, job_id: str, status: JobStatus) -> bool:
    return (await job(api, job_id)).status == status


async def _counts(api: OperatorAPI, batch_id: str | None, want: dict[str, int]) -> bool:
    return await api.count_jobs(JobFilter(batch_id=batch_id)) == want


async def _batch_with(api: OperatorAPI, n: int) -> str | None:
    for b in await api.batches():
        if b.total == n:
            return b.batch.batch_id
    return None


async def test_pending_job_of_an_unserved_type_says_what_it_waits_for(store: SQLiteStore) -> None:
    """Issue 11: a pending job whose type no live worker serves is visibly waiting, in
    its row as well as in the status line's count; a served type's row says nothing."""
    api = OperatorAPI(store, default_registry())
    batch = await api.enqueue("noop", [{}], batch_name="nobody serves")
    await store.upsert_worker(
        WorkerInfo(worker_id="w-sleep", host="h", pid=1, job_types=["sleep"], concurrency=1)
    )
    served = await api.enqueue("sleep", [{"seconds": 1}], batch_name="served")
    app = watch_only(store)
    async with app.run_test(size=(200, 50)):
        await app.refresh_now()
        table = app.main.query_one("#jobs", KeyedTable)
        waiting = str(table.get_cell(batch.job_ids[0], "error"))
        assert waiting == "waiting for a worker that serves noop"
        assert str(table.get_cell(served.job_ids[0], "error")) == ""
        assert app.snapshot is not None and app.snapshot.status.unserved == {"noop": 1}


async def test_paused_console_does_not_call_its_own_pending_types_unserved(
    store: SQLiteStore, gate: Gate, tmp_path: Path
) -> None:
    """Issue: with claiming paused (key p) the status line said "⚠ unserved" for every
    pending job, the ones the operator had paused included. They are held here, said
    as such; a type no live worker serves at all is still warned about."""
    start_process_helpers()
    settings = Settings(concurrency=4, types=["hold", "noop"], output_dir=tmp_path / "out", **FAST)
    eng = Engine(store, hold_registry(gate), settings)
    await eng.start()
    try:
        api = api_of(eng)
        app = console(api, eng)
        async with app.run_test(size=(80, 24)) as pilot:
            await app.refresh_now()
            await pilot.press("p")
            assert eng.paused
            held = await api.enqueue("noop", [{"path": "/n/1.pdf"}, {"path": "/n/2.pdf"}])
            orphan = await api.enqueue("sleep", [{"seconds": 1}])

            async def recorded_paused() -> bool:  # what every console reads of this engine
                return any(w.paused for w in await store.list_workers())

            await until(recorded_paused, what="the engine's record says paused")
            await app.refresh_now()
            assert app.snapshot is not None
            assert app.snapshot.status.unserved == {"sleep": 1}
            assert app.snapshot.status.held == {"noop": 2}
            text = app.main.query_one(StatusLine).plain  # 80 columns: the warning first
            assert "PAUSED" in text and "unserved sleep×1" in text and "noop" not in text, text
            wide = render_status(app.snapshot.status, {}, 120).plain
            assert "claiming PAUSED, 2 held" in wide and "unserved sleep×1" in wide, wide
            table = app.main.query_one("#jobs", KeyedTable)  # each row says why it waits
            assert [str(table.get_cell(j, "error")) for j in held.job_ids] == [HELD] * 2
            assert str(table.get_cell(orphan.job_ids[0], "error")) == waiting_for("sleep")
            assert await api.count_jobs(JobFilter(batch_id=held.batch_id)) == {"pending": 2}
            await pilot.press("p")  # resume: the held jobs run, the orphan still waits
            await until(
                lambda: _counts(api, held.batch_id, {"completed": 2}), what="held jobs done"
            )
            await app.refresh_now()
            assert app.snapshot.status.unserved == {"sleep": 1}
            assert app.snapshot.status.held == {}
            assert str(table.get_cell(orphan.job_ids[0], "error")) == waiting_for("sleep")
            assert await api.count_jobs(JobFilter(batch_id=orphan.batch_id)) == {"pending": 1}
    finally:
        await eng.stop(grace=0)
