"""The rows of the main screen's tables: which columns, and the cells of a batch or a
job as the theme colours them and the columns' widths allow.

Each builder also tells the table what its content needs (the widest status, count
and error code: never cut) and wants (the longest name and message: room on wide
terminals), so the table can lay out its columns (``jobtui.tui.widgets.columns``).
"""

from __future__ import annotations

from collections.abc import Container, Mapping, Sequence
from datetime import datetime
from typing import Any

from rich.text import Text

from jobtui.engine.api import waiting_for
from jobtui.engine.models import BatchSummary, Job, JobStatus
from jobtui.tui.durations import human_duration
from jobtui.tui.widgets.cells import (
    STATUS_VARIABLE,
    ago,
    batch_counts,
    batch_eta,
    batch_state,
    colour,
    fit_bar,
    job_duration,
    job_file,
    job_fraction,
    short_id,
    status_text,
)
from jobtui.tui.widgets.columns import Column
from jobtui.tui.widgets.tables import KeyedTable

Row = tuple[str, tuple[Any, ...]]

ALL_BATCHES = "__all__"  # the key of the "All jobs" row

# Columns by importance: higher priorities are narrowed, then dropped, first; the
# status, the counts and the error code are never cut (fit); names and messages take
# the room of wide terminals (grow). See jobtui.tui.widgets.columns.
BATCH_COLUMNS = [
    Column("Batch", "name", 20, 10, grow=3),
    Column("Created", "created", 8, priority=3),
    Column("Id", "id", 8, priority=4),
    Column("Jobs", "jobs", 6, fit=True),
    Column("Progress", "progress", 17, 9, priority=5),
    Column("ETA", "eta", 6, 5, priority=2),
    Column("Status", "status", 11, fit=True),
]
JOB_COLUMNS = [
    Column("Status", "status", 12, fit=True),
    Column("Type", "type", 14, priority=5),
    Column("File", "file", 24, 18, grow=3),
    Column("Progress", "progress", 15, 4, priority=3),
    Column("Try", "attempts", 4, priority=6),
    Column("Time", "duration", 8, 6, priority=4),
    Column("Error", "error", 18, 6, grow=2, fit=True),
]


#: The Error cell of a pending job that only this console's pause keeps waiting.
HELD = "held"  # as the status line counts them ("PAUSED, 40 held"); fits 80 columns


def error_cell(
    job: Job, v: Mapping[str, str], unserved: Container[str] = (), held: Container[str] = ()
) -> Text | str:
    """The error code in full, then as much of the message as the column shows; for a
    pending job of a type no live worker serves, what it waits for; for one that
    claiming paused here holds (``held``: those types), that."""
    if job.error is None:
        if job.status is JobStatus.PENDING and job.job_type in unserved:
            return Text(waiting_for(job.job_type), style=colour(v, "warning"))
        if job.status is JobStatus.PENDING and job.job_type in held:
            return Text(HELD, style=colour(v, "foreground-muted"))
        return ""
    text = Text(job.error.code, style=colour(v, "error"))
    if job.error.message:
        text.append(" " + job.error.message.splitlines()[0], style=colour(v, "foreground-muted"))
    return text


class BatchRows:
    """Builds the batches table's rows; a finished batch's cells are built once and
    reused (with 50 batches listed, most are history that never changes; only its
    age moves, and that in minutes)."""

    def __init__(self) -> None:
        self._finished: dict[str, tuple[object, tuple[Any, ...]]] = {}

    def forget(self) -> None:
        self._finished.clear()

    def build(
        self,
        counts: Mapping[str, int],
        batches: Sequence[BatchSummary],
        now: datetime,
        v: Mapping[str, str],
        table: KeyedTable,
    ) -> list[Row]:
        bar = table.column_width("progress")
        total = sum(counts.values())
        done = sum(counts.get(s, 0) for s in ("completed", "failed", "cancelled"))
        everything = (
            Text("All jobs", style="bold"),
            "",
            "",
            batch_counts(counts, v),
            fit_bar(done / total if total else 0.0, v, bar),
            "",
            "",
        )
        rows: list[Row] = [(ALL_BATCHES, everything)]
        rows += [(b.batch.batch_id, self.cells(b, now, v, bar)) for b in batches]
        table.set_content(
            needs={
                "jobs": max(len(r[1][3]) for r in rows),
                "status": max(len(r[1][6]) for r in rows),
            },
            wants={"name": max(len(r[1][0]) for r in rows)},
        )
        return rows

    def cells(
        self, b: BatchSummary, now: datetime, v: Mapping[str, str], bar: int
    ) -> tuple[Any, ...]:
        created = ago(b.batch.created_at, now)
        key = (b.batch.name, tuple(sorted(b.counts.items())), bar, created)
        cached = self._finished.get(b.batch.batch_id)
        if b.finished and cached is not None and cached[0] == key:
            return cached[1]
        state = batch_state(b)
        bar_var = {"completed": "success", "with failures": "error"}.get(state, "primary")
        if state == "cancelled":
            bar_var = STATUS_VARIABLE["cancelled"]
        cells = tuple(
            Text(x) if isinstance(x, str) else x  # as the table keeps them
            for x in (
                b.batch.name or short_id(b.batch.batch_id),
                created,
                short_id(b.batch.batch_id),
                batch_counts(b.counts, v),
                fit_bar(b.done / b.total if b.total else 0.0, v, bar, variable=bar_var),
                batch_eta(b, now),
                status_text(state, v),
            )
        )
        if b.finished:
            self._finished[b.batch.batch_id] = (key, cells)
        return cells


def job_rows(
    jobs: Sequence[Job],
    now: datetime,
    v: Mapping[str, str],
    table: KeyedTable,
    unserved: Container[str] = (),
    held: Container[str] = (),
) -> list[Row]:
    """The jobs table's rows for one page of jobs (``unserved``: types no live worker
    serves, ``held``: types whose claiming is paused here; their pending jobs say so
    in the Error column)."""
    bar = table.column_width("progress")
    rows: list[Row] = []
    for job in jobs:
        done = job.status == JobStatus.COMPLETED
        cells = (
            status_text(job.status.value, v),
            job.job_type,
            job_file(job),
            fit_bar(job_fraction(job), v, bar, variable="success" if done else "primary"),
            f"{job.attempts}/{job.max_attempts}",
            human_duration(job_duration(job, now)),
            error_cell(job, v, unserved, held),
        )
        rows.append((job.job_id, cells))
    table.set_content(
        needs={
            "status": max((len(r[1][0]) for r in rows), default=0),
            "error": max((len(j.error.code) for j in jobs if j.error), default=0),
        },
        wants={
            "file": max((len(r[1][2]) for r in rows), default=0),
            "error": max((len(r[1][6]) for r in rows), default=0),
        },
    )
    return rows
