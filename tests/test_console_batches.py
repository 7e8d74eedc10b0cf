"""Batches told apart and read honestly: name, created, short id, counts per state,
cancelled as its own state and colour, an ETA from completed work only."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest
from rich.text import Text

from jobtui.engine.api import OperatorAPI
from jobtui.engine.models import Batch, BatchSummary, Job, JobStatus
from jobtui.engine.registry import default_registry
from jobtui.engine.store.sqlite import SQLiteStore
from jobtui.tui.app import JobtuiApp
from jobtui.tui.cli import build_parser
from jobtui.tui.widgets.cells import batch_counts, batch_eta, batch_state, colour
from jobtui.tui.widgets.tables import KeyedTable
from tests.test_console_data import NOW, T0, frozen_clock


def summary(started_min_ago: float | None = 10, **counts: int) -> BatchSummary:
    return BatchSummary(
        batch=Batch(batch_id="b" * 32, name="pdfs", created_at=T0),
        counts=counts,
        first_started_at=NOW - timedelta(minutes=started_min_ago) if started_min_ago else None,
    )


def test_eta_counts_only_completed_work() -> None:
    # 10 completed in 10 minutes, 20 left: 20 more minutes
    assert batch_eta(summary(completed=10, pending=15, processing=5), NOW) == "20m00s"
    # 30 cancelled do not make it look nearly done (they are not work done)
    assert batch_eta(summary(completed=10, cancelled=30, pending=20), NOW) == "20m00s"
    # nor do failures count as progress
    assert batch_eta(summary(completed=10, failed=40, pending=20), NOW) == "20m00s"


def test_eta_says_dash_until_it_has_enough() -> None:
    assert batch_eta(summary(None, pending=5), NOW) == "—"  # nothing started
    assert batch_eta(summary(completed=1, pending=5), NOW) == "—"  # one is no pace
    assert batch_eta(summary(1 / 60, completed=3, pending=5), NOW) == "—"  # 1 s of work
    assert batch_eta(summary(cancelled=4, pending=5), NOW) == "—"
    assert batch_eta(summary(completed=3, cancelled=2), NOW) == "done"


def test_cancelled_is_its_own_state_and_colour() -> None:
    v = {"success": "#00ff00", "error": "#ff0000", "secondary": "#9a7cff", "warning": "#ffff00"}
    assert batch_state(summary(completed=3, cancelled=2)) == "cancelled"
    assert batch_state(summary(completed=3, failed=1, cancelled=2)) == "with failures"
    assert batch_state(summary(completed=3)) == "completed"
    assert batch_state(summary(completed=3, processing=1)) == "running"
    text = batch_counts({"completed": 3, "cancelled": 2, "pending": 1}, v)
    assert text.plain == "6 ✔3 ⊘2 ·1"  # failed and running left out: none
    cancelled_style = next(s.style for s in text.spans if text.plain[s.start] == "⊘")
    assert cancelled_style == colour(v, "secondary") != colour(v, "warning")


async def test_batch_rows_tell_same_named_batches_apart(tmp_path: Path) -> None:
    store = SQLiteStore(tmp_path / "jobs.db")
    await store.open()
    try:
        for i, minutes in enumerate((50, 30, 5)):
            batch = Batch(
                batch_id=f"{i}" * 32, name="pdfs", created_at=NOW - timedelta(minutes=minutes)
            )
            await store.create_batch(batch)
            jobs = [
                Job(batch_id=batch.batch_id, job_type="noop", status=JobStatus.COMPLETED),
                Job(batch_id=batch.batch_id, job_type="noop", status=JobStatus.CANCELLED),
            ]
            await store.insert_jobs(jobs)
        app = JobtuiApp(
            api=OperatorAPI(store, default_registry()), refresh_interval=30, clock=frozen_clock
        )
        async with app.run_test(size=(80, 24)):
            await app.refresh_now()
            table = app.main.query_one("#batches", KeyedTable)
            rows = {
                str(r.key.value): [str(c) for c in table.get_row(r.key)] for r in table.ordered_rows
            }
            shown = {k: v for k, v in rows.items() if k != "__all__"}
            assert len({tuple(v) for v in shown.values()}) == 3  # no two rows alike
            for batch_id, cells in shown.items():
                assert cells[0] == "pdfs"
                assert batch_id[:8] in cells  # the short id
                assert "2 ✔1 ⊘1" in cells
                assert "⊘ cancelled" in cells  # not "finished with errors", not failed
            assert {c for cells in shown.values() for c in cells if c.endswith(" ago")} == {
                "50m ago",
                "30m ago",
                "5m ago",
            }
            status = table.get_cell("0" * 32, "status")
            assert isinstance(status, Text)
            assert str(status.style) == colour(app.get_css_variables(), "secondary")
    finally:
        await store.close()


@pytest.mark.parametrize(("argv", "watch"), [(["--watch"], True), ([], False)])
def test_jobtui_watch_flag(argv: list[str], watch: bool) -> None:
    args = build_parser().parse_args(argv)
    assert args.command is None and args.watch is watch
