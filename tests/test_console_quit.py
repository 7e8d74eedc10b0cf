"""Quitting never strands jobs, and a watch-only console claims nothing.

- A quit while running jobs are being finished asks before it abandons anything,
  says what will happen, and hands them back at once (pending, attempt refunded).
- Whatever ends the app while it finishes, ``Engine.stop(grace=0)`` (what
  ``run_console`` does last) hands the jobs back without waiting for the grace.
- A closed terminal is SIGHUP to a real ``run_console`` process in a pty.
- While the quit question is open, no new job starts here (the operator's own pause
  is kept apart: "Don't quit" restores it exactly), and the count it shows follows
  the jobs still running.
- ``--watch`` / ``claim: false``: no engine, nothing claimed, WATCH-ONLY shown; key
  ``W`` (with a confirmation) starts and stops claiming.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import pty
import signal
import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from textual.widgets import Button, Label

from jobtui.engine.api import OperatorAPI
from jobtui.engine.config import Settings
from jobtui.engine.models import JobFilter, JobStatus
from jobtui.engine.store.sqlite import SQLiteStore
from jobtui.engine.worker import Engine
from jobtui.tui.app import JobtuiApp
from jobtui.tui.console import start_process_helpers
from jobtui.tui.screens.dialogs import ConfirmScreen, QuitScreen
from jobtui.tui.screens.main import MainScreen
from jobtui.tui.widgets.status import StatusLine
from tests.test_console import FAST, Gate, hold_registry
from tests.test_console_data import until
from tests.util import api_of

ROOT = Path(__file__).resolve().parents[1]
SIZE = (80, 24)
GRACE = 120.0  # long: a quit that waited for it would time the test out


pytestmark = pytest.mark.usefixtures("console_config_dir")


@pytest.fixture
def store(sqlite_store: SQLiteStore) -> SQLiteStore:
    return sqlite_store


@pytest.fixture
def gate() -> Gate:
    return Gate()


def settings(tmp_path: Path, **kw: Any) -> Settings:
    return Settings(concurrency=4, output_dir=tmp_path / "out", shutdown_grace=GRACE, **FAST, **kw)


@pytest.fixture
async def engine(store: SQLiteStore, gate: Gate, tmp_path: Path) -> AsyncIterator[Engine]:
    start_process_helpers()
    eng = Engine(store, hold_registry(gate), settings(tmp_path))
    await eng.start()
    yield eng
    gate.release.set()
    await eng.stop(grace=0)


async def two_running(engine: Engine, gate: Gate) -> list[str]:
    res = await api_of(engine).enqueue("hold", [{"path": "/h/1.pdf"}, {"path": "/h/2.pdf"}])
    await until(lambda: gate.inside == 2, what="two jobs running")
    return res.job_ids


async def assert_handed_back(api: OperatorAPI, job_ids: list[str]) -> None:
    for job_id in job_ids:
        detail = await api.job_detail(job_id)
        assert detail is not None
        j = detail.job
        assert j.status == JobStatus.PENDING, (j.status, [e.message for e in detail.logs])
        assert j.attempts == 0 and j.lease is None  # the attempt was refunded
        assert any("handed back" in e.message for e in detail.logs), [
            e.message for e in detail.logs
        ]


def status_text(app: JobtuiApp) -> str:
    return app.main.query_one(StatusLine).plain


def console(engine: Engine) -> JobtuiApp:
    """The console over ``engine``, as ``jobtui`` starts it."""
    return JobtuiApp(api=api_of(engine), engine=engine, settings=engine.settings)


async def ask_to_quit(app: JobtuiApp, pilot: Any) -> QuitScreen:
    """Press q with jobs running here: the quit question."""
    await pilot.press("q")
    screen = app.screen
    assert isinstance(screen, QuitScreen)
    return screen


async def start_finishing(app: JobtuiApp, pilot: Any) -> None:
    await app.refresh_now()
    await ask_to_quit(app, pilot)
    await pilot.click("#finish")
    await until(lambda: app.finishing_until is not None, what="finishing")
    await app.refresh_now()
    assert "FINISHING" in status_text(app)


async def test_second_quit_while_finishing_asks_then_hands_back_at_once(
    store: SQLiteStore, engine: Engine, gate: Gate
) -> None:
    job_ids = await two_running(engine, gate)
    app = console(engine)
    started = time.monotonic()
    async with app.run_test(size=SIZE) as pilot:
        await start_finishing(app, pilot)
        await pilot.press("q")
        screen = app.screen
        assert isinstance(screen, ConfirmScreen)
        # It says what will happen, and "Keep finishing" has the focus.
        said = f"{screen.question} {screen.explain}"
        assert "Still finishing 2 job(s)" in said and "back to the queue" in said
        assert "not counted" in said
        assert screen.focused is not None and screen.focused.id == "no"
        await pilot.press("q")  # a third q while the question is open changes nothing
        assert isinstance(app.screen, ConfirmScreen)
        await pilot.press("enter")  # keep finishing
        await pilot.pause()
        assert isinstance(app.screen, MainScreen) and app.return_code is None
        assert gate.inside == 2  # still running
        await pilot.press("q")
        assert isinstance(app.screen, ConfirmScreen)
        await pilot.click("#yes")
        await until(lambda: app.return_code is not None, what="exit", timeout=30)
    assert time.monotonic() - started < GRACE / 2  # did not wait for the grace
    await assert_handed_back(api_of(engine), job_ids)


async def test_app_ending_otherwise_while_finishing_still_hands_back(
    store: SQLiteStore, engine: Engine, gate: Gate
) -> None:
    """ctrl+c, a crash, a closed driver: the app ends while its finish worker waits.
    The engine's stop goes on by itself, and run_console's stop(0) cuts it short."""
    job_ids = await two_running(engine, gate)
    app = console(engine)
    async with app.run_test(size=SIZE) as pilot:
        await start_finishing(app, pilot)
        app.exit(0)  # not through our quit: the finishing worker is cancelled
    assert gate.inside == 2  # the worker's cancellation did not stop the engine's stop
    await asyncio.wait_for(engine.stop(grace=0), 30)  # what run_console does last
    await assert_handed_back(api_of(engine), job_ids)


async def test_hand_back_choice_on_first_quit(
    store: SQLiteStore, engine: Engine, gate: Gate
) -> None:
    job_ids = await two_running(engine, gate)
    app = console(engine)
    async with app.run_test(size=SIZE) as pilot:
        await app.refresh_now()
        screen = await ask_to_quit(app, pilot)
        explain = str(screen.query_one("#explain").render())
        assert "not counted" in explain and "back to the queue" in explain
        await pilot.click("#handback")
        await until(lambda: app.return_code is not None, what="exit", timeout=30)
    await assert_handed_back(api_of(engine), job_ids)


# -- the quit question holds claiming -----------------------------------------------------------


async def beats(store: SQLiteStore, engine: Engine, times: int = 2) -> None:
    """Wait until the engine's heartbeat has gone round ``times`` more times (its worker
    record shows as many newer beats): by then a claim loop woken by an enqueue has
    looked several times (poll_interval is half the heartbeat's)."""
    seen: set[object] = set()

    async def newer() -> bool:
        mine = [w for w in await store.list_workers() if w.worker_id == engine.worker_id]
        seen.update(w.heartbeat_at for w in mine)
        return len(seen) > times

    await until(newer, what=f"{times} heartbeats")


def question(screen: QuitScreen) -> str:
    return str(screen.query_one("#question", Label).render())


async def test_quit_question_holds_claiming_until_dont_quit(
    store: SQLiteStore, engine: Engine, gate: Gate
) -> None:
    """Issue: the console kept claiming while its quit question was open, so the count
    it showed went stale and "Hand them back" handed back work started after the ask."""
    await two_running(engine, gate)
    api = api_of(engine)
    app = console(engine)
    async with app.run_test(size=SIZE) as pilot:
        await app.refresh_now()
        screen = await ask_to_quit(app, pilot)
        later = await api.enqueue("hold", [{"path": "/h/3.pdf"}, {"path": "/h/4.pdf"}])
        await beats(store, engine)
        assert gate.inside == 2 and len(engine.running) == 2  # two slots free, none taken
        assert await api.count_jobs(JobFilter(batch_id=later.batch_id)) == {"pending": 2}
        await app.refresh_now()
        assert "2 job(s) are running" in question(screen)
        # The hold is not the operator's pause: the status line behind does not flip.
        assert "PAUSED" not in status_text(app)
        await pilot.press("ctrl+q")  # asking again while the question is open: one question
        assert app.screen is screen and len(app.screen_stack) == 2
        await pilot.press("escape")  # Don't quit: claiming goes on
        assert isinstance(app.screen, MainScreen) and app.return_code is None
        await until(lambda: gate.inside == 4, what="the held jobs claimed after Don't quit")
        assert not engine.paused
        await app.refresh_now()
        assert "PAUSED" not in status_text(app)


async def test_dont_quit_keeps_the_operators_own_pause(
    store: SQLiteStore, engine: Engine, gate: Gate
) -> None:
    await two_running(engine, gate)
    api = api_of(engine)
    app = console(engine)
    async with app.run_test(size=SIZE) as pilot:
        await app.refresh_now()
        await pilot.press("p")
        assert engine.paused
        await app.refresh_now()
        assert "PAUSED" in status_text(app)
        await ask_to_quit(app, pilot)
        await app.refresh_now()
        assert "PAUSED" in status_text(app)  # still the operator's pause, shown as before
        await pilot.click("#stay")
        assert isinstance(app.screen, MainScreen)
        assert engine.paused  # Don't quit did not resume what the operator paused
        later = await api.enqueue("hold", [{"path": "/h/3.pdf"}])
        await beats(store, engine)
        assert await api.count_jobs(JobFilter(batch_id=later.batch_id)) == {"pending": 1}
        await app.refresh_now()
        assert "PAUSED" in status_text(app)
        await pilot.press("p")
        await until(lambda: gate.inside == 3, what="claimed after the operator resumed")


@contextlib.asynccontextmanager
async def quit_question(
    engine: Engine, gate: Gate
) -> AsyncIterator[tuple[list[str], JobtuiApp, Any, QuitScreen]]:
    """Two jobs running here, the console open over them, q pressed: their ids, the
    app, its pilot and the question."""
    job_ids = await two_running(engine, gate)
    app = console(engine)
    async with app.run_test(size=SIZE) as pilot:
        await app.refresh_now()
        yield job_ids, app, pilot, await ask_to_quit(app, pilot)


async def test_quit_question_count_follows_the_jobs_still_running(
    store: SQLiteStore, engine: Engine, gate: Gate
) -> None:
    """Running jobs go on while the question is open; one that ends leaves the count,
    and "Hand them back" hands back the ones still running."""
    api = api_of(engine)
    async with quit_question(engine, gate) as (job_ids, app, pilot, screen):
        assert "2 job(s) are running" in question(screen)
        await api.cancel_job(job_ids[0])
        await until(lambda: gate.inside == 1, what="the cancelled job stopped")
        await until(lambda: len(engine.running) == 1, what="the cancelled job left")
        await app.refresh_now()
        assert "1 job(s) are running" in question(screen)
        await pilot.click("#handback")
        await until(lambda: app.return_code is not None, what="exit", timeout=30)
    await assert_handed_back(api, job_ids[1:])


async def test_quit_question_offers_a_plain_quit_once_nothing_runs(
    store: SQLiteStore, engine: Engine, gate: Gate
) -> None:
    """The jobs end while the question is open: nothing is left to finish or hand back,
    so it offers "Quit", which exits at once (not after the grace) and changes none
    of them."""
    api = api_of(engine)
    async with quit_question(engine, gate) as (job_ids, app, pilot, screen):
        assert screen.query_one("#handback").display
        gate.release.set()
        await until(lambda: not engine.running, what="both jobs ended")
        await app.refresh_now()
        assert "No job runs in this process any more" in question(screen)
        assert str(screen.query_one("#finish", Button).label) == "Quit"
        assert not screen.query_one("#handback").display
        await pilot.pause()  # the dialog's new layout
        assert await pilot.click("#finish")
        await until(lambda: app.return_code is not None, what="exit", timeout=30)
        assert app.return_code == 0 and app.finishing_until is None
    for job_id in job_ids:
        detail = await api.job_detail(job_id)
        assert detail is not None
        assert detail.job.status == JobStatus.COMPLETED and detail.job.attempts == 1


# -- watch-only -------------------------------------------------------------------------------


async def test_watch_only_claims_nothing_and_says_so(store: SQLiteStore, tmp_path: Path) -> None:
    """A console with no engine (``jobtui --watch``) and its key W: claiming starts only
    after the confirmation, and stops again (its running jobs handed back)."""
    gate = Gate()
    registry = hold_registry(gate)
    api = OperatorAPI(store, registry)
    res = await api.enqueue("hold", [{"path": f"/w/{i}.pdf"} for i in range(3)])
    made: list[Engine] = []

    def factory() -> Engine:
        made.append(Engine(store, registry, settings(tmp_path)))
        return made[-1]

    start_process_helpers()
    app = JobtuiApp(api=api, engine=None, settings=settings(tmp_path), engine_factory=factory)
    async with app.run_test(size=SIZE) as pilot:
        await app.refresh_now()
        assert "WATCH-ONLY" in status_text(app)
        assert app.main.check_action("pause", ()) is None
        await app.refresh_now()
        counts = await api.count_jobs(JobFilter(batch_id=res.batch_id))
        assert counts == {"pending": 3} and not await store.list_workers()
        # W asks; No (focused) keeps watching
        await pilot.press("W")
        assert isinstance(app.screen, ConfirmScreen)
        await pilot.press("enter")
        await pilot.pause()
        assert app.engine is None and not made
        # W, yes: this console claims
        await pilot.press("W")
        await pilot.click("#yes")
        await until(lambda: gate.inside == 3, what="claimed after the switch")
        await app.refresh_now()
        assert "WATCH-ONLY" not in status_text(app)
        assert "running 3" in status_text(app)
        # W again: watch only; the running jobs go back to the queue at once
        await pilot.press("W")
        screen = app.screen
        assert isinstance(screen, ConfirmScreen) and "3 job(s)" in screen.explain
        await pilot.click("#yes")
        await until(lambda: app.engine is None, what="watch only again")
        await app.refresh_now()
        assert "WATCH-ONLY" in status_text(app)
    await assert_handed_back(api, res.job_ids)
    assert not await store.list_workers()  # the stopped engine unregistered


# -- a closed terminal: SIGHUP to a real console process ---------------------------------------

CHILD = """
import asyncio, sys
from pathlib import Path
from pydantic import BaseModel
from jobtui.engine.config import Settings
from jobtui.engine.registry import Registry
from jobtui.tui.console import run_console

class Params(BaseModel):
    path: str | None = None

reg = Registry()

@reg.handler("hold", params=Params)
async def hold(ctx, params):
    await asyncio.sleep(3600)

work = Path(sys.argv[1])
settings = Settings(
    store=work / "jobs.db", output_dir=work / "out", shutdown_grace=600,
    poll_interval=0.05, heartbeat_interval=0.1, watchdog_interval=0.2,
)
sys.exit(asyncio.run(run_console(settings, registry=reg)))
"""


async def test_closed_terminal_sighup_hands_running_jobs_back(tmp_path: Path) -> None:
    store = SQLiteStore(tmp_path / "jobs.db")
    await store.open()
    try:
        api = OperatorAPI(store)
        res = await api.enqueue("hold", [{"path": "/t/1.pdf"}, {"path": "/t/2.pdf"}])
        script = tmp_path / "child.py"
        script.write_text(textwrap.dedent(CHILD))
        master, slave = pty.openpty()
        env = {
            **os.environ,
            "PYTHONPATH": str(ROOT),
            "TERM": "xterm-256color",
            "COLUMNS": "80",
            "LINES": "24",
            "JOBTUI_CONFIG_DIR": str(tmp_path / "config"),
        }
        proc = subprocess.Popen(
            [sys.executable, str(script), str(tmp_path)],
            stdin=slave,
            stdout=slave,
            stderr=slave,
            env=env,
            start_new_session=True,
            cwd=tmp_path,
        )
        os.close(slave)
        screen = bytearray()
        reader = threading.Thread(target=_drain, args=(master, screen), daemon=True)
        reader.start()
        try:

            async def both_running() -> bool:
                counts = await api.count_jobs(JobFilter(batch_id=res.batch_id))
                return counts.get("processing", 0) == 2

            await until(both_running, timeout=60, what="the console claimed both jobs")
            os.close(master)  # the terminal goes away...
            master = -1
            proc.send_signal(signal.SIGHUP)  # ...and its process gets SIGHUP
            t0 = time.monotonic()
            rc = await asyncio.to_thread(proc.wait, 60)
            assert time.monotonic() - t0 < 30  # not the 600 s grace
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
            if master >= 0:
                os.close(master)
        assert rc == 0, bytes(screen[-2000:]).decode(errors="replace")
        await assert_handed_back(api, res.job_ids)
    finally:
        await store.close()


def _drain(fd: int, into: bytearray) -> None:
    """Read the pty as a terminal would (a full pty buffer would block the app)."""
    while True:
        try:
            chunk = os.read(fd, 65536)
        except OSError:
            return
        if not chunk:
            return
        into.extend(chunk)
