"""How values look in the console's cells: statuses, progress bars, durations, ETAs.

Colours come from the running theme's variables (``$success``, ``$error``...), so a
theme switch recolours everything; nothing here names a colour of its own.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from datetime import datetime, timedelta

from rich.text import Text
from textual.color import Color, ColorParseError

from jobtui.engine.models import BatchSummary, Job, JobStatus
from jobtui.tui.durations import human_duration

# status -> theme variable that colours it
STATUS_VARIABLE = {
    "pending": "foreground-muted",
    "processing": "primary",
    "running": "primary",
    "completed": "success",
    "failed": "error",
    "cancelled": "secondary",  # its own colour: not a failure, not done work
    "finished with errors": "warning",
    "with failures": "error",
}

STATUS_ICON = {
    "pending": "·",
    "processing": "▶",
    "running": "▶",
    "completed": "✔",
    "failed": "✖",
    "cancelled": "⊘",
    "finished with errors": "!",
    "with failures": "✖",
}

# count of a batch's jobs per state, in the order shown, with their icons
COUNT_STATES = ("completed", "failed", "cancelled", "processing", "pending")


def colour(variables: Mapping[str, str], name: str) -> str:
    """A theme variable as a colour Rich can draw. Textual writes translucent ones
    (``$foreground-muted`` is ``#RRGGBBAA``) that Rich cannot parse, so the cell would
    lose its colour: they are laid over ``$background`` here, as Textual would."""
    value = variables.get(name) or variables.get("foreground", "")
    if (value.startswith("#") and len(value) == 9) or value.endswith("%"):
        try:
            return (Color.parse(variables.get("background", "#000000")) + Color.parse(value)).hex
        except ColorParseError:
            return variables.get("foreground", "")
    return value


def status_text(status: str, variables: Mapping[str, str]) -> Text:
    icon = STATUS_ICON.get(status, "?")
    return Text(
        f"{icon} {status}", style=colour(variables, STATUS_VARIABLE.get(status, "foreground"))
    )


def progress_bar(
    fraction: float, variables: Mapping[str, str], width: int = 12, variable: str = "primary"
) -> Text:
    fraction = max(0.0, min(1.0, fraction))
    full = round(fraction * width)
    text = Text()
    text.append("█" * full, style=colour(variables, variable))
    text.append("░" * (width - full), style=colour(variables, "foreground-darken-3"))
    text.append(f" {fraction * 100:3.0f}%")
    return text


def job_fraction(job: Job) -> float:
    if job.status == JobStatus.COMPLETED:
        return 1.0
    if job.progress is None:
        return 0.0
    return job.progress.percent / 100.0


def job_duration(job: Job, now: datetime) -> float | None:
    if job.started_at is None:
        return None
    end = job.completed_at if job.status.terminal and job.completed_at else now
    if job.status == JobStatus.PENDING:
        return None
    return (end - job.started_at).total_seconds()


def job_file(job: Job) -> str:
    path = job.path
    return os.path.basename(path.rstrip("/")) or path if path else job.job_id[:12]


def batch_state(summary: BatchSummary) -> str:
    """How a batch reads: cancelled jobs are not failures, failures are not "done"."""
    c = summary.counts
    if not summary.finished:
        return "running" if c.get("processing", 0) else "pending"
    if c.get("failed", 0):
        return "with failures"
    if c.get("cancelled", 0):
        return "cancelled"
    return "completed"


def batch_counts(counts: Mapping[str, int], variables: Mapping[str, str]) -> Text:
    """``total ✔done ✖failed ⊘cancelled ▶running ·pending``, zeros left out, each in
    its state's colour."""
    text = Text(str(sum(counts.values())))
    for state in COUNT_STATES:
        n = counts.get(state, 0)
        if n:
            text.append(" ")
            text.append(f"{STATUS_ICON[state]}{n}", style=colour(variables, STATUS_VARIABLE[state]))
    return text


ETA_MIN_COMPLETED = 2  # completed jobs before a pace is worth projecting
ETA_MIN_SECONDS = 5.0  # seconds of work before a pace is worth projecting


def batch_eta(summary: BatchSummary, now: datetime) -> str:
    """Time left at the pace of *completed* work so far, since the batch's first start.

    Work is counted in the unit the batch's jobs report (pages: a 2,400-page PDF is
    not one job's worth of a 1-page one) when they all report one; otherwise in jobs.
    Cancelled and failed jobs are not progress (a cancelled half made the old
    estimate absurd); "—" until the pace means something."""
    if summary.finished:
        return "done"
    start = summary.first_started_at
    elapsed = (now - start).total_seconds() if start is not None else 0.0
    left = units_left(summary) or jobs_left(summary)
    if elapsed < ETA_MIN_SECONDS or left is None:
        return "—"
    remaining, done = left
    return human_duration(remaining * elapsed / done)


def units_left(summary: BatchSummary) -> tuple[float, float] | None:
    """``(units left, units done)`` when the batch's work is measured in one unit.

    Left: what the jobs with a known total still hold, plus, for every job whose
    total is not known yet (pending, or running but not reporting yet), the average
    of the known totals. None (count jobs instead) when no job reports a unit, jobs
    report different units, a completed job reported none, or no unit is done yet."""
    if len(summary.units) != 1:
        return None
    (tally,) = summary.units.values()
    c = summary.counts
    completed_unknown = c.get("completed", 0) - (tally.jobs - tally.processing)
    if completed_unknown > 0 or tally.done <= 0 or tally.jobs <= 0:
        return None
    unknown = c.get("pending", 0) + max(0, c.get("processing", 0) - tally.processing)
    remaining = max(0.0, tally.total - tally.done) + unknown * tally.total / tally.jobs
    return remaining, tally.done


def jobs_left(summary: BatchSummary) -> tuple[float, float] | None:
    """``(jobs left, jobs completed)``; None until ``ETA_MIN_COMPLETED`` completed."""
    c = summary.counts
    completed = c.get("completed", 0)
    if completed < ETA_MIN_COMPLETED:
        return None
    return c.get("pending", 0) + c.get("processing", 0), completed


def ago(then: datetime | None, now: datetime) -> str:
    """A short relative time: ``12s ago``, ``4m ago``, ``3h ago``, ``2d ago``."""
    if then is None:
        return "—"
    s = max(0.0, (now - then).total_seconds())
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if s >= size:
            return f"{int(s // size)}{unit} ago"
    return f"{int(s)}s ago"


def fit_bar(
    fraction: float, variables: Mapping[str, str], width: int, variable: str = "primary"
) -> Text:
    """A progress bar filling ``width`` cells (bar and percentage), or only the
    percentage when the column is narrow."""
    if width >= 9:
        return progress_bar(fraction, variables, width=width - 5, variable=variable)
    return Text(f"{max(0.0, min(1.0, fraction)) * 100:3.0f}%")


def age(then: datetime | None, now: datetime) -> str:
    if then is None:
        return "—"
    return human_duration((now - then).total_seconds()) + " ago"


def clock(ts: datetime) -> str:
    return ts.astimezone().strftime("%H:%M:%S") if ts.tzinfo else ts.strftime("%H:%M:%S")


def short_id(value: str | None) -> str:
    return value[:8] if value else "—"


def counts_total(counts: Mapping[str, int]) -> int:
    return sum(counts.values())


def as_timedelta(seconds: float) -> timedelta:
    return timedelta(seconds=seconds)
