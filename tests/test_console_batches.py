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


def paged(
    summary: BatchSummary, *rows: tuple[str, str, int, float | None, float | None]
) -> BatchSummary:
    """``summary`` with unit tallies folded in as a store does: one row per
    (status, unit) with its job count and summed done and total."""
    for status, unit, jobs, done, total in rows:
        summary.add_units(status, unit, jobs, done, total)
    return summary


def test_eta_weighs_jobs_by_the_pages_they_hold() -> None:
    """One 1,000-page PDF among ten 10-page ones: ten small ones done in the first
    5 minutes and the big one a tenth through after 10, so 200 pages in 10 minutes.
    Counting jobs says one job left at a minute a job; counting pages says 900
    pages left at 20 pages a minute."""
    s = summary(completed=10, processing=1)
    assert batch_eta(s, NOW) == "1m00s"  # jobs: 1 left x 10 min / 10 completed
    paged(s, ("completed", "pages", 10, 100, 100), ("processing", "pages", 1, 100, 1000))
    assert batch_eta(s, NOW) == "45m00s"  # pages: 900 left x 10 min / 200 done
    # The big one first: one job completed is too few for a pace in jobs...
    s = summary(completed=1, processing=1, pending=9)
    assert batch_eta(s, NOW) == "—"
    # ...but 1,005 pages are: the big one, and a small one running at 5/10; the nine
    # pending ones' totals are not known, each counts as the known average (1010 / 2)
    paged(s, ("completed", "pages", 1, None, 1000), ("processing", "pages", 1, 5, 10))
    assert batch_eta(s, NOW) == "45m16s"  # (5 + 9 x 505) pages x 10 min / 1005 done


def test_eta_estimates_jobs_not_reporting_yet_at_the_average_known_total() -> None:
    # 2 running: one reports 50/100 pages, the other has not said yet (still probing)
    s = paged(
        summary(completed=2, processing=2, pending=1),
        ("completed", "pages", 2, None, 100),
        ("processing", "pages", 1, 50, 100),
    )
    # known: 3 jobs, 200 pages (avg 66.7); left: 50 + 2 x 66.7 = 183.3; done 150 in 10 min
    assert batch_eta(s, NOW) == "12m13s"


def test_eta_counts_jobs_when_units_do_not_measure_the_whole_batch() -> None:
    jobs_eta = batch_eta(summary(completed=10, pending=15, processing=5), NOW)
    assert jobs_eta == "20m00s"
    # pages and seconds of recording cannot be added: jobs it is
    mixed = paged(
        summary(completed=10, pending=15, processing=5),
        ("completed", "pages", 5, None, 500),
        ("completed", "s", 5, None, 3600),
    )
    assert batch_eta(mixed, NOW) == jobs_eta
    # a completed job of a type that reports no unit: its work is not in the pages
    partial = paged(
        summary(completed=10, pending=15, processing=5), ("completed", "pages", 9, None, 900)
    )
    assert batch_eta(partial, NOW) == jobs_eta


def test_page_eta_says_dash_until_it_has_enough() -> None:
    # nothing done yet, only totals known: no pace
    s = paged(summary(processing=1, pending=5), ("processing", "pages", 1, 0, 2400))
    assert batch_eta(s, NOW) == "—"
    # pages done, but only 1 s since the first start
    s = paged(summary(1 / 60, processing=1, pending=5), ("processing", "pages", 1, 64, 2400))
    assert batch_eta(s, NOW) == "—"
    # pages done for 10 minutes: a pace, although no job completed yet (counting jobs
    # would still say "—")
    s = paged(summary(processing=1, pending=5), ("processing", "pages", 1, 600, 2400))
    assert batch_eta(s, NOW) == "3h50m"  # (1800 + 5 x 2400) x 10 min / 600
    s = paged(summary(completed=3, cancelled=2), ("completed", "pages", 3, None, 9))
    assert batch_eta(s, NOW) == "done"


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
