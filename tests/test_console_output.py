"""The output folder: shown (status line, under the jobs table) and chosen in the
enqueue dialog; the worker writes there, and refuses a folder outside its input
roots when it has some."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from pydantic import BaseModel
from textual.widgets import Input, Select

from jobtui.engine.api import OperatorAPI
from jobtui.engine.config import Settings
from jobtui.engine.context import JobContext
from jobtui.engine.models import JobFilter, JobStatus
from jobtui.engine.registry import FileTypes, Registry
from jobtui.engine.store.sqlite import SQLiteStore
from jobtui.engine.worker import Engine
from jobtui.tui.app import JobtuiApp
from jobtui.tui.console import start_process_helpers
from jobtui.tui.screens.enqueue import EnqueueScreen
from jobtui.tui.widgets.status import StatusInfo, render_status
from jobtui.tui.widgets.tables import KeyedTable
from tests.test_console import FAST
from tests.test_console_data import until

pytestmark = pytest.mark.usefixtures("console_config_dir")


@pytest.fixture
def store(sqlite_store: SQLiteStore) -> SQLiteStore:
    return sqlite_store


class Note(BaseModel):
    path: str
    sha256: str | None = None


def copy_registry() -> Registry:
    """``note.copy``: takes ``.note`` files and writes a copy into its output folder."""
    reg = Registry()

    @reg.handler("note.copy", params=Note, files=FileTypes(frozenset({".note"})))
    async def copy(ctx: JobContext, params: Note) -> dict[str, Any]:
        out = Path(ctx.output_dir)
        out.mkdir(parents=True, exist_ok=True)
        target = out / (Path(params.path).name + ".copy")
        target.write_text(Path(params.path).read_text())
        return {"output_path": str(target)}

    return reg


async def test_output_folder_chosen_in_the_dialog_is_where_the_worker_writes(
    store: SQLiteStore, tmp_path: Path
) -> None:
    inbox = tmp_path / "in"
    inbox.mkdir()
    for i in range(2):
        (inbox / f"n{i}.note").write_text(f"note {i}")
    chosen = tmp_path / "chosen out"
    start_process_helpers()
    settings = Settings(output_dir=tmp_path / "default-out", **FAST)
    engine = Engine(store, copy_registry(), settings)
    api = OperatorAPI(store, engine.registry)
    await engine.start()
    try:
        app = JobtuiApp(api=api, engine=engine, settings=settings, refresh_interval=30)
        async with app.run_test(size=(120, 40)) as pilot:
            await app.refresh_now()
            table = app.main.query_one("#jobs", KeyedTable)
            assert str(table.border_subtitle) == f"output: {tmp_path / 'default-out'}"
            app.open_enqueue([str(inbox)])
            await pilot.pause()
            screen = app.screen
            assert isinstance(screen, EnqueueScreen)
            field = screen.query_one("#enqueue-output", Input)
            assert str(tmp_path / "default-out") in str(field.placeholder)
            await until(lambda: screen.scan is not None and screen.scan.files == 2, what="scan")
            await until(lambda: screen.query_one("#enqueue-type", Select).query("SelectOverlay"))
            field.value = f"'{chosen}'"  # as a drop would spell it
            await pilot.click("#enqueue-ok")

            async def done() -> bool:
                counts = await api.count_jobs(JobFilter(job_type=["note.copy"]))
                return counts.get("completed", 0) == 2

            await until(done, what="both copied")
            assert sorted(p.name for p in chosen.iterdir()) == ["n0.note.copy", "n1.note.copy"]
            assert not (tmp_path / "default-out").exists()
            jobs = await api.all_jobs(JobFilter(job_type=["note.copy"]))
            assert {j.output_dir for j in jobs} == {str(chosen)}
            await app.refresh_now()
            table.select_key(jobs[0].job_id)
            await app.refresh_now()
            assert str(table.border_subtitle) == f"output: {chosen}"
    finally:
        await engine.stop(grace=0)


async def test_a_worker_with_input_roots_refuses_an_output_folder_outside_them(
    store: SQLiteStore, tmp_path: Path
) -> None:
    inbox = tmp_path / "in"
    inbox.mkdir()
    (inbox / "a.note").write_text("a")
    settings = Settings(output_dir=tmp_path / "out", input_roots=[inbox], **FAST)
    engine = Engine(store, copy_registry(), settings)
    api = OperatorAPI(store, engine.registry)
    outside = tmp_path / "elsewhere"
    inside = inbox / "results"
    bad = await api.enqueue_paths([str(inbox / "a.note")], output_dir=str(outside))
    await engine.start()
    try:

        async def status_of(batch: str) -> JobStatus | None:
            jobs = await api.all_jobs(JobFilter(batch_id=batch))
            return jobs[0].status if jobs and jobs[0].status.terminal else None

        assert await until(lambda: status_of(bad.batch_id), what="refused") == JobStatus.FAILED
        job = (await api.all_jobs(JobFilter(batch_id=bad.batch_id)))[0]
        assert job.error is not None and job.error.code == "PATH_NOT_ALLOWED"
        assert not outside.exists()
        good = await api.enqueue_paths([str(inbox / "a.note")], output_dir=str(inside), force=True)
        assert await until(lambda: status_of(good.batch_id), what="ran") == JobStatus.COMPLETED
        assert (inside / "a.note.copy").read_text() == "a"
    finally:
        await engine.stop(grace=0)


def test_status_line_names_the_output_folder_when_there_is_room() -> None:
    info = StatusInfo(store="sqlite:x.db", connected=True, running_here=0, output_dir="/srv/out")
    assert "out /srv/out" in render_status(info, {}, 200).plain
    assert "/srv/out" not in render_status(info, {}, 60).plain  # the first to go
