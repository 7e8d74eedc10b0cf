"""What ``jobtui run`` draws on stderr: a live rich line on a terminal, plain lines
otherwise, nothing with --json."""

from __future__ import annotations

import io

from jobtui.tui import run_progress
from jobtui.tui.durations import human_duration
from jobtui.tui.run_progress import RunProgress, RunState


def test_state_line_says_counts_rate_eta_failures_and_waits() -> None:
    s = RunState(total=10, done=4, failed=1, running=3, elsewhere=1, pages=80)
    line = s.line(elapsed=8.0)
    assert line == (
        "4/10 files, 10.0 pages/s, about 12s left, 1 failed, "
        "waiting for 1 running in another process"
    )
    assert RunState(total=2, done=2).line(1.0) == "2/2 files"


def test_live_mode_draws_with_rich_and_clears_at_the_end() -> None:
    buf = io.StringIO()
    p = RunProgress("live", stream=buf)
    p.update(RunState(total=4, done=1, pages=3))
    p.update(RunState(total=4, done=3, failed=1))
    drawn = buf.getvalue()
    assert "3/4 files" in drawn and "1 failed" in drawn
    p.close()


def test_plain_mode_prints_a_line_now_and_then(monkeypatch: object) -> None:
    buf = io.StringIO()
    clock = [100.0]
    monkeypatch.setattr(run_progress.time, "monotonic", lambda: clock[0])  # type: ignore[attr-defined]
    p = RunProgress("plain", stream=buf)
    p.update(RunState(total=4, done=0))
    assert buf.getvalue() == ""  # not yet: one line every PLAIN_EVERY seconds
    clock[0] += run_progress.PLAIN_EVERY
    p.update(RunState(total=4, done=2))
    clock[0] += 1
    p.update(RunState(total=4, done=3))
    p.close()
    assert buf.getvalue().splitlines() == [
        "jobtui: 2/4 files, about 10s left",
        "jobtui: 3/4 files, about 3.7s left",
    ]


def test_a_run_with_work_ends_with_its_count_even_if_done_at_the_first_look() -> None:
    """The first document is claimed as soon as it is hashed, so small jobs may all be
    done before the first look: a run that had work still ends with its count, and one
    with none (every file done earlier) still says nothing."""
    for work, expected in ((True, ["jobtui: 2/2 files"]), (False, []), (None, [])):
        buf = io.StringIO()
        p = RunProgress("plain", stream=buf)
        if work is not None:
            p.expect(work)
        p.update(RunState(total=2, done=2))
        p.close()
        assert buf.getvalue().splitlines() == expected, work


def test_off_mode_prints_nothing() -> None:
    buf = io.StringIO()
    p = RunProgress("off", stream=buf)
    p.update(RunState(total=4, done=2))
    p.close()
    assert buf.getvalue() == ""


def test_one_way_to_write_a_duration() -> None:
    """The console's cells and ``jobtui run`` share ``human_duration``: tenths for
    short jobs, then whole seconds rounded (never "60s"), minutes, hours."""
    got = [human_duration(x) for x in (None, -3, 0.3, 9.97, 42.4, 59.6, 187, 3599.6, 7500)]
    assert got == ["—", "0.0s", "0.3s", "10s", "42s", "1m00s", "3m07s", "1h00m", "2h05m"]
