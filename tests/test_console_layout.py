"""The console at 80×24, 120×40 and 200×50: columns by priority, a status bar that
never loses its flags, dialogs that fit and scroll. Pilot tests assert what must be
readable; the snapshots (``--snapshot-update``, then look at them) show the rest.

The data is the fixed demo (``test_console_data``) plus one job whose error has a
long code and a long message, as an image type reports a too-large scan.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from textual.pilot import Pilot
from textual.widgets import Button, Input

from jobtui.engine.api import OperatorAPI
from jobtui.engine.models import Job, JobError, JobStatus
from jobtui.engine.registry import default_registry
from jobtui.tui.app import JobtuiApp
from jobtui.tui.screens.dialogs import QuitScreen
from jobtui.tui.screens.enqueue import EnqueueScreen
from jobtui.tui.screens.help import HelpScreen
from jobtui.tui.widgets.columns import Column, layout
from jobtui.tui.widgets.status import StatusInfo, render_status
from jobtui.tui.widgets.tables import KeyedTable
from tests.test_console_data import (
    T0,
    LabelledSQLiteStore,
    frozen_clock,
    load_demo,
    make_pdfs,
    until,
)

SIZES = [(80, 24), (120, 40), (200, 50)]
LONG_JOB = "inv099" + "0" * 26
LONG_CODE = "IMAGE_TOO_LARGE"
LONG_MESSAGE = (
    "the scan is 30000 x 40000 pixels (1,200,000,000), more than the limit of "
    "178,956,970 pixels; scale it down or raise image_max_pixels for this job type"
)
INBOX = Path("/tmp/jobtui-snapshot-inbox/scans 2026")


def long_error_job() -> Job:
    return Job(
        job_id=LONG_JOB,
        job_type="pdf.transcribe",
        status=JobStatus.FAILED,
        parameters={"path": "/data/invoices/a-scan-with-a-rather-long-file-name-2026-11.pdf"},
        batch_id="invoices",
        created_at=T0,
        started_at=T0,
        completed_at=T0,
        attempts=1,
        error=JobError(code=LONG_CODE, message=LONG_MESSAGE),
    )


@pytest.fixture
def demo_app(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[JobtuiApp]:
    monkeypatch.setenv("JOBTUI_CONFIG_DIR", str(tmp_path / "config"))
    monkeypatch.setenv("TZ", "UTC")
    time.tzset()
    store = LabelledSQLiteStore(tmp_path / "jobs.db")

    async def setup() -> None:
        await store.open()
        await load_demo(store)
        await store.insert_jobs([long_error_job()])

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


async def ready(pilot: Pilot[int]) -> JobtuiApp:
    app = pilot.app
    assert isinstance(app, JobtuiApp)
    app.theme = "jobtui-dark"
    await app.refresh_now()
    app.main.select_batch("invoices")
    await app.refresh_now()
    app.main.query_one("#jobs", KeyedTable).select_key(LONG_JOB)
    await app.refresh_now()
    # The batches table grows with its rows (height auto); where it was scrolled when
    # the cursor moved depends on refresh timing. Either view is right; the snapshot
    # wants one: the top, where the selected batch is in view too.
    app.main.query_one("#batches", KeyedTable).scroll_to(y=0, animate=False)
    await pilot.pause()
    return app


# -- what must stay readable ---------------------------------------------------------------


@pytest.mark.parametrize("size", SIZES, ids=lambda s: f"{s[0]}x{s[1]}")
async def test_status_and_error_code_are_never_cut(
    demo_app: JobtuiApp, size: tuple[int, int]
) -> None:
    async with demo_app.run_test(size=size) as pilot:
        app = await ready(pilot)
        jobs = app.main.query_one("#jobs", KeyedTable)
        batches = app.main.query_one("#batches", KeyedTable)
        # every shown column fits the table: nothing scrolls off to the right
        for table in (jobs, batches):
            used = sum(w + 2 for w in table.widths.values())
            assert used <= table.available_width, (table.id, table.widths)
        assert jobs.column_width("status") >= len("▶ processing")
        assert jobs.column_width("error") >= len(LONG_CODE)
        assert jobs.column_width("file") >= 18
        for table, key in (
            (jobs, "status"),
            (jobs, "error"),
            (batches, "status"),
            (batches, "jobs"),
        ):
            for row in table.ordered_rows:
                cell = str(table.get_cell(row.key, key))
                if key == "error":
                    cell = cell.split(" ")[0]  # the code: the message may be cut
                assert len(cell) <= table.column_width(key), (key, cell)
        if size[0] >= 200:  # wide: the message and the name get the room
            assert jobs.column_width("error") >= 60
            assert jobs.column_width("file") >= len(
                "a-scan-with-a-rather-long-file-name-2026-11.pdf"
            )
        # the page fills the table: as many rows as it can show
        assert len(app.main.jobs) == min(7, jobs.scrollable_content_region.height - 1)


def test_columns_are_narrowed_then_dropped_by_priority() -> None:
    cols = [
        Column("Status", "status", 12, fit=True),
        Column("Type", "type", 14, priority=5),
        Column("File", "file", 24, 18, grow=3),
        Column("Try", "attempts", 4, priority=6),
        Column("Error", "error", 18, 6, grow=2, fit=True),
    ]
    wide = layout(cols, 200, needs={"error": 15}, wants={"file": 50, "error": 90})
    assert wide["file"] == 50 and wide["error"] > 18  # grown up to their content
    # first narrowed, least important first (File to its 18: every column still shows)
    assert layout(cols, 78, needs={"error": 15}) == {
        "status": 12,
        "type": 14,
        "file": 20,
        "attempts": 4,
        "error": 18,
    }
    # then dropped in the same order: Try before Type
    assert list(layout(cols, 70, needs={"error": 15})) == ["status", "type", "file", "error"]
    tighter = layout(cols, 60, needs={"error": 15})
    assert list(tighter) == ["status", "file", "error"]
    assert tighter["error"] >= 15 and tighter["status"] == 12
    narrowest = layout(cols, 20, needs={"error": 15})  # priority 0 stays, at its minimum
    assert narrowest == {"status": 12, "file": 18, "error": 15}


@pytest.mark.parametrize(
    ("info", "flag"),
    [
        (
            StatusInfo(
                store="mongodb://very-long-host-name.example.org:27017/jobs",
                connected=True,
                running_here=2,
                paused=True,
                queue_depth=123456,
                live_workers=12,
                unserved={"image.ocr": 3},
            ),
            "PAUSED",
        ),
        (
            StatusInfo(
                store="sqlite:/a/rather/long/path/to/the/jobs.db",
                connected=False,
                error="ServerSelectionTimeoutError",
                running_here=None,
            ),
            "DISCONNECTED",
        ),
        (
            StatusInfo(
                store="sqlite:/a/rather/long/path/to/the/jobs.db",
                connected=True,
                running_here=None,
                queue_depth=99,
            ),
            "WATCH-ONLY",
        ),
        (
            StatusInfo(store="sqlite:/x.db", connected=True, running_here=None, finishing=3),
            "FINISHING",
        ),
    ],
)
@pytest.mark.parametrize("width", [40, 78, 118, 198])
def test_status_bar_never_loses_its_flags(info: StatusInfo, flag: str, width: int) -> None:
    text = render_status(info, {}, width)
    assert flag in text.plain
    assert len(text.plain) <= width
    if not info.connected:
        assert "WATCH-ONLY" in text.plain  # both flags, even at 40 columns


async def test_enqueue_dialog_fits_80x24_with_its_count_and_buttons(
    demo_app: JobtuiApp,
) -> None:
    if not INBOX.is_dir():
        make_pdfs(INBOX, 3)
    async with demo_app.run_test(size=(80, 24)) as pilot:
        app = await ready(pilot)
        app.open_enqueue([str(INBOX)])
        screen = app.screen
        assert isinstance(screen, EnqueueScreen)
        await until(lambda: screen.scan is not None and screen.scan.files == 3, what="scan")
        await pilot.pause()
        inside = screen.query_one("#enqueue-dialog").content_region  # within its border
        assert screen.region.contains_region(screen.query_one("#enqueue-dialog").region)
        for widget in (screen.query_one("#enqueue-found"), *screen.query(Button)):
            assert inside.contains_region(widget.region), widget
            assert widget.region.height > 0
        assert "3" in str(screen.query_one("#enqueue-found").render())


async def test_help_lists_every_key_at_80x24_and_scrolls(demo_app: JobtuiApp) -> None:
    async with demo_app.run_test(size=(80, 24)) as pilot:
        await ready(pilot)
        await pilot.press("question_mark")
        screen = pilot.app.screen
        assert isinstance(screen, HelpScreen)
        body = screen.query_one("#help-dialog")
        assert pilot.app.screen.region.contains_region(body.region)
        assert body.max_scroll_y > 0  # more keys than lines: it scrolls


# -- snapshots ---------------------------------------------------------------------------------


@pytest.mark.parametrize("size", SIZES, ids=lambda s: f"{s[0]}x{s[1]}")
def test_main_layout(demo_app: JobtuiApp, snap_compare: Any, size: tuple[int, int]) -> None:
    """The long error selected: its code whole at 80 columns, its message at 200."""

    async def run_before(pilot: Pilot[int]) -> None:
        await ready(pilot)

    assert snap_compare(demo_app, terminal_size=size, run_before=run_before)


@pytest.mark.parametrize("dialog", ["enqueue", "quit", "help", "detail"])
def test_dialogs_at_80x24(demo_app: JobtuiApp, snap_compare: Any, dialog: str) -> None:
    if not INBOX.is_dir():
        make_pdfs(INBOX, 3)

    async def run_before(pilot: Pilot[int]) -> None:
        app = await ready(pilot)
        if dialog == "enqueue":
            app.open_enqueue([str(INBOX)])
            screen = app.screen
            assert isinstance(screen, EnqueueScreen)
            await until(lambda: screen.scan is not None and screen.scan.files == 3, what="scan")
            for field in screen.query(Input):
                field.cursor_blink = False
        elif dialog == "quit":
            app.push_screen(QuitScreen(3, 30))
        elif dialog == "help":
            await pilot.press("question_mark")
        else:
            await pilot.press("enter")
            screen = app.screen
            await until(lambda: getattr(screen, "detail", None) is not None, what="detail")
        await pilot.pause()

    assert snap_compare(demo_app, terminal_size=(80, 24), run_before=run_before)
