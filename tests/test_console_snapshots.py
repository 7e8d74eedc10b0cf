"""Snapshot tests of the console (pytest-textual-snapshot): main screen, job detail and
the enqueue dialog, each in the dark and the light theme.

The data is fixed (ids, timestamps, a frozen clock for durations, ETAs and heartbeat
ages, UTC for log times, a fixed store description), so the SVGs only change when
the console's look does. Update them with ``pytest --snapshot-update`` and look at
the report before committing.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from textual.pilot import Pilot
from textual.widgets import Input

from jobtui.engine.api import OperatorAPI
from jobtui.engine.registry import default_registry
from jobtui.tui.app import JobtuiApp
from jobtui.tui.screens.detail import DetailScreen
from jobtui.tui.screens.enqueue import EnqueueScreen
from jobtui.tui.widgets.tables import KeyedTable
from tests.test_console_data import (
    FAILED_JOB,
    RUNNING_JOB,
    LabelledSQLiteStore,
    frozen_clock,
    load_demo,
    make_pdfs,
    until,
)

SIZE = (120, 40)
THEMES = ["jobtui-dark", "jobtui-light"]
INBOX = Path("/tmp/jobtui-snapshot-inbox/scans 2026")  # shown in the dialog: a fixed path


@pytest.fixture
def demo_app(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[JobtuiApp]:
    monkeypatch.setenv("JOBTUI_CONFIG_DIR", str(tmp_path / "config"))
    monkeypatch.setenv("TZ", "UTC")
    time.tzset()
    store = LabelledSQLiteStore(tmp_path / "jobs.db")

    async def setup() -> None:
        await store.open()
        await load_demo(store)

    asyncio.run(setup())
    app = JobtuiApp(
        api=OperatorAPI(store, default_registry()),
        engine=None,
        refresh_interval=30,
        clock=frozen_clock,
    )
    yield app
    asyncio.run(store.close())
    monkeypatch.delenv("TZ")
    time.tzset()


async def _main_ready(pilot: Pilot[int], theme: str) -> JobtuiApp:
    app = pilot.app
    assert isinstance(app, JobtuiApp)
    app.theme = theme
    await app.refresh_now()
    app.main.select_batch("invoices")
    await app.refresh_now()
    app.main.query_one("#jobs", KeyedTable).select_key(RUNNING_JOB)
    await app.refresh_now()
    await pilot.pause()
    return app


@pytest.mark.parametrize("theme", THEMES)
def test_main_screen(demo_app: JobtuiApp, snap_compare, theme: str) -> None:  # type: ignore[no-untyped-def]
    """Batch "invoices" selected, its running job highlighted, that job's log below."""

    async def run_before(pilot: Pilot[int]) -> None:
        await _main_ready(pilot, theme)

    assert snap_compare(demo_app, terminal_size=SIZE, run_before=run_before)


@pytest.mark.parametrize("theme", THEMES)
def test_detail_screen(demo_app: JobtuiApp, snap_compare, theme: str) -> None:  # type: ignore[no-untyped-def]
    """The failed job: error with details, parameters, attempts, its full log."""

    async def run_before(pilot: Pilot[int]) -> None:
        app = await _main_ready(pilot, theme)
        app.main.query_one("#jobs", KeyedTable).select_key(FAILED_JOB)
        await app.refresh_now()
        await pilot.press("enter")
        screen = app.screen
        assert isinstance(screen, DetailScreen)
        await until(lambda: screen.detail is not None, what="detail")
        await pilot.pause()

    assert snap_compare(demo_app, terminal_size=SIZE, run_before=run_before)


@pytest.mark.parametrize("theme", THEMES)
def test_enqueue_dialog(demo_app: JobtuiApp, snap_compare, theme: str) -> None:  # type: ignore[no-untyped-def]
    """Opened by a paste of a folder; it found 3 PDFs before anything is enqueued."""
    if not INBOX.is_dir():
        make_pdfs(INBOX, 3)

    async def run_before(pilot: Pilot[int]) -> None:
        app = await _main_ready(pilot, theme)
        app.open_enqueue([str(INBOX)])
        screen = app.screen
        assert isinstance(screen, EnqueueScreen)

        def ready() -> bool:
            return screen.scan is not None and screen.scan.files == 3

        await until(ready, what="scan")
        for field in screen.query(Input):
            field.cursor_blink = False
        await pilot.pause()

    assert snap_compare(demo_app, terminal_size=SIZE, run_before=run_before)
