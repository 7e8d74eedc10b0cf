"""The main screen: status line, batches, jobs of the selected batch, log tail, keys.

The screen owns what the operator looks at (selected batch, filter, page of jobs,
selected job); the app's one refresh loop asks it for that ``ViewRequest``, fetches,
and hands back a ``ConsoleSnapshot`` to render. Keys that do not apply to the
current selection are greyed out in the footer (``check_action`` returns None).
"""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Any, ClassVar

from rich.text import Text
from textual import on
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Vertical
from textual.screen import Screen
from textual.widgets import DataTable, Footer

from jobtui.engine.models import BatchSummary, Job, JobFilter, JobStatus
from jobtui.engine.store.base import JobCursor
from jobtui.tui.screens.dialogs import ConfirmScreen, FilterScreen, FilterSpec
from jobtui.tui.widgets.cells import (
    batch_eta,
    colour,
    human_duration,
    job_duration,
    job_file,
    job_fraction,
    progress_bar,
    status_text,
)
from jobtui.tui.widgets.logtail import LogTail
from jobtui.tui.widgets.status import StatusLine
from jobtui.tui.widgets.tables import JobsTable, KeyedTable

if TYPE_CHECKING:
    from jobtui.tui.app import ConsoleSnapshot, JobtuiApp, ViewRequest

ALL_BATCHES = "__all__"

# widths: the cells of a 120-column terminal (each column also gets 2 cells of padding)
BATCH_COLUMNS = [
    ("Batch", "name", 28),
    ("Total", "total", 7),
    ("Done", "completed", 7),
    ("Failed", "failed", 7),
    ("Running", "running", 7),
    ("Progress", "progress", 17),
    ("ETA", "eta", 8),
    ("Status", "status", 20),
]
JOB_COLUMNS = [
    ("Status", "status", 12),
    ("Type", "type", 15),
    ("File", "file", 28),
    ("Progress", "progress", 15),
    ("Attempts", "attempts", 8),
    ("Duration", "duration", 8),
    ("Error", "error", 18),
]

RETRYABLE = {JobStatus.FAILED, JobStatus.CANCELLED}
CONDITIONAL_ACTIONS = (
    "retry_job",
    "cancel_job",
    "detail",
    "retry_failed",
    "cancel_batch",
    "pause",
    "switch_claiming",
    "clear_filter",
)


class MainScreen(Screen[None]):
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding(
            "e",
            "enqueue",
            "Enqueue",
            id="enqueue",
            tooltip="Enqueue a folder or PDF file (pasting a path does too)",
        ),
        Binding(
            "r",
            "retry_job",
            "Retry",
            id="retry-job",
            tooltip="Retry the selected failed or cancelled job",
        ),
        Binding(
            "R",
            "retry_failed",
            "Retry failed",
            key_display="R",
            id="retry-failed",
            tooltip="Retry every failed job of the selected batch",
        ),
        Binding(
            "c",
            "cancel_job",
            "Cancel",
            id="cancel-job",
            tooltip="Cancel the selected job (asks first)",
        ),
        Binding(
            "C",
            "cancel_batch",
            "Cancel batch",
            key_display="C",
            id="cancel-batch",
            tooltip="Cancel every unfinished job of the selected batch (asks first)",
        ),
        Binding(
            "enter",
            "detail",
            "Detail",
            id="detail",
            tooltip="Show the selected job: parameters, result, error, full log, outputs",
        ),
        Binding(
            "slash",
            "filter",
            "Filter",
            key_display="/",
            id="filter",
            tooltip="Filter jobs by text, status and type",
        ),
        Binding(
            "w",
            "workers",
            "Workers",
            id="workers",
            tooltip="Show every worker: host, pid, types, running, last heartbeat",
        ),
        Binding(
            "p",
            "pause",
            "Pause/Resume",
            id="pause",
            tooltip="Pause or resume claiming new jobs in this process",
        ),
        Binding(
            "W",
            "switch_claiming",
            "Claim on/off",
            key_display="W",
            id="switch-claiming",
            tooltip="Switch this console between claiming jobs and watch-only (asks first)",
        ),
        Binding(
            "question_mark", "help", "Help", key_display="?", id="help", tooltip="Show every key"
        ),
        Binding(
            "q", "quit", "Quit", id="quit", tooltip="Quit (asks what to do with jobs running here)"
        ),
        Binding(
            "escape",
            "clear_filter",
            "Clear filter",
            show=False,
            id="clear-filter",
            tooltip="Remove the job filter",
        ),
    ]

    def __init__(self) -> None:
        super().__init__()
        self.batch_id: str | None = None  # None: all jobs
        self.filter = FilterSpec()
        self.cursors: list[JobCursor | None] = [None]
        self.next_cursor: JobCursor | None = None
        self.jobs: dict[str, Job] = {}
        self.batches: dict[str, BatchSummary] = {}
        self.snapshot: ConsoleSnapshot | None = None
        self._key_state: tuple[bool | None, ...] = ()
        self._finished_cells: dict[str, tuple[object, tuple[Any, ...]]] = {}

    @property
    def jobtui(self) -> JobtuiApp:
        return self.app  # type: ignore[return-value]

    def compose(self) -> ComposeResult:
        yield StatusLine("connecting…", id="status")
        with Vertical(id="tables"):
            yield KeyedTable(BATCH_COLUMNS, id="batches")
            yield JobsTable(JOB_COLUMNS, id="jobs")
            yield LogTail(id="log")
        yield Footer()

    def on_mount(self) -> None:
        self.query_one("#batches", KeyedTable).border_title = "Batches"
        self.query_one("#jobs", JobsTable).border_title = "Jobs"
        self.query_one("#jobs", JobsTable).focus()
        self.jobtui.start_refreshing()

    # -- what to fetch -----------------------------------------------------------

    @property
    def selected_job(self) -> Job | None:
        key = self.query_one("#jobs", JobsTable).selected_key
        return self.jobs.get(key) if key else None

    @property
    def selected_batch(self) -> BatchSummary | None:
        return self.batches.get(self.batch_id) if self.batch_id else None

    def job_filter(self) -> JobFilter:
        return JobFilter(
            batch_id=self.batch_id,
            text=self.filter.text or None,
            status=[self.filter.status] if self.filter.status else None,
            job_type=[self.filter.job_type] if self.filter.job_type else None,
        )

    def page_size(self) -> int:
        height = self.query_one("#jobs", JobsTable).size.height
        return max(5, height - 3) if height else 20

    def view_request(self) -> ViewRequest:
        from jobtui.tui.app import ViewRequest

        job = self.selected_job
        return ViewRequest(
            flt=self.job_filter(),
            after=self.cursors[-1],
            page_size=self.page_size(),
            newest_first=self.batch_id is None,
            log_job=job,
        )

    # -- render --------------------------------------------------------------------

    def show_snapshot(self, snap: ConsoleSnapshot) -> None:
        self.snapshot = snap
        v = self.app.get_css_variables()
        self.query_one(StatusLine).show(snap.status, v)
        if snap.batches is not None:
            self._show_batches(snap, v)
        if snap.page is not None and snap.request is not None:
            if not snap.page.jobs and snap.request.after is not None and len(self.cursors) > 1:
                self.cursors = [None]  # the page emptied (filter, cancel...): back to page 1
                self.jobtui.request_refresh()
            self._show_jobs(snap, v)
        job = self.selected_job
        log = self.query_one(LogTail)
        if snap.log_job_id is not None and job is not None and job.job_id == snap.log_job_id:
            log.show(job.job_id, job_file(job), snap.logs)
        elif job is None:
            log.show(None, "", [])
        self.update_keys()

    def _show_batches(self, snap: ConsoleSnapshot, v: dict[str, str]) -> None:
        assert snap.batches is not None
        self.batches = {b.batch.batch_id: b for b in snap.batches}
        counts = snap.counts
        total = sum(counts.values())
        done = sum(counts.get(s, 0) for s in ("completed", "failed", "cancelled"))
        rows: list[tuple[str, tuple[Any, ...]]] = [
            (
                ALL_BATCHES,
                (
                    Text("All jobs", style="bold"),
                    str(total),
                    str(counts.get("completed", 0)),
                    str(counts.get("failed", 0)),
                    str(counts.get("processing", 0)),
                    progress_bar(done / total if total else 0.0, v),
                    "",
                    "",
                ),
            )
        ]
        now = self.jobtui.now()
        for b in snap.batches:
            rows.append((b.batch.batch_id, self._batch_cells(b, now, v)))
        table = self.query_one("#batches", KeyedTable)
        table.sync(rows)
        if self.batch_id is not None and self.batch_id not in self.batches:
            self.batch_id = None  # the batch vanished (too old for the list): show all
            self.cursors = [None]
        if table.selected_key != (self.batch_id or ALL_BATCHES):
            table.select_key(self.batch_id or ALL_BATCHES)

    def _batch_cells(self, b: BatchSummary, now: datetime, v: dict[str, str]) -> tuple[Any, ...]:
        """The cells of one batch row; a finished batch's are built once and reused
        (with 50 batches listed, most are history that never changes)."""
        key = (b.batch.name, tuple(sorted(b.counts.items())))
        cached = self._finished_cells.get(b.batch.batch_id)
        if b.finished and cached is not None and cached[0] == key:
            return cached[1]
        c = b.counts
        bar_var = "success" if b.status == "completed" else "warning" if b.finished else "primary"
        cells: tuple[Any, ...] = (
            b.batch.name or b.batch.batch_id[:8],
            str(b.total),
            str(c.get("completed", 0)),
            str(c.get("failed", 0)),
            str(c.get("processing", 0)),
            progress_bar(b.done / b.total if b.total else 0.0, v, variable=bar_var),
            batch_eta(b, now),
            status_text(b.status, v),
        )
        cells = tuple(
            Text(x) if isinstance(x, str) else x for x in cells
        )  # as the table keeps them
        if b.finished:
            self._finished_cells[b.batch.batch_id] = (key, cells)
        return cells

    def _show_jobs(self, snap: ConsoleSnapshot, v: dict[str, str]) -> None:
        assert snap.page is not None
        self.jobs = {j.job_id: j for j in snap.page.jobs}
        self.next_cursor = snap.page.next_cursor
        now = self.jobtui.now()
        rows = []
        for job in snap.page.jobs:
            rows.append(
                (
                    job.job_id,
                    (
                        status_text(job.status.value, v),
                        job.job_type,
                        job_file(job),
                        progress_bar(
                            job_fraction(job),
                            v,
                            width=10,
                            variable="success" if job.status == JobStatus.COMPLETED else "primary",
                        ),
                        f"{job.attempts}/{job.max_attempts}",
                        human_duration(job_duration(job, now)),
                        Text(job.error.code, style=colour(v, "error")) if job.error else "",
                    ),
                )
            )
        table = self.query_one("#jobs", JobsTable)
        table.sync(rows)
        scope = self.selected_batch.batch.name if self.selected_batch else "all batches"
        page = len(self.cursors)
        shown = len(rows)
        start = (page - 1) * snap.request.page_size if snap.request else 0
        of = f" of {snap.scope_total}" if snap.scope_total is not None else ""
        title = f"Jobs: {scope}"
        if self.filter.active:
            title += f"  filter {self.filter.describe()}"
        title += f"  ({start + 1 if shown else 0}–{start + shown}{of}, page {page})"
        table.border_title = title

    def rerender(self) -> None:
        """Theme changed: every coloured cell is rebuilt from the last snapshot."""
        self._finished_cells.clear()
        for table in self.query(KeyedTable):
            table.forget()
        if self.snapshot is not None:
            self.show_snapshot(self.snapshot)

    # -- selection -------------------------------------------------------------------

    @on(DataTable.RowHighlighted, "#batches")
    def _batch_highlighted(self, event: DataTable.RowHighlighted) -> None:
        # The cursor is the truth, not the event: a late event (posted after rows were
        # added) must not undo a selection made since.
        key = self.query_one("#batches", KeyedTable).selected_key
        batch_id = None if key in (None, ALL_BATCHES) else key
        if batch_id != self.batch_id:
            self.batch_id = batch_id
            self.cursors = [None]
            self.jobtui.request_refresh()
        self.update_keys()

    @on(DataTable.RowSelected, "#batches")
    def _batch_selected(self, event: DataTable.RowSelected) -> None:
        self.query_one("#jobs", JobsTable).focus()

    @on(DataTable.RowHighlighted, "#jobs")
    def _job_highlighted(self, event: DataTable.RowHighlighted) -> None:
        log = self.query_one(LogTail)
        if event.row_key.value != log.job_id:
            self.jobtui.request_refresh()
        self.update_keys()

    @on(DataTable.RowSelected, "#jobs")
    def _job_selected(self, event: DataTable.RowSelected) -> None:
        self.action_detail()

    @on(JobsTable.PageRequest)
    def _page(self, event: JobsTable.PageRequest) -> None:
        if event.step > 0 and self.next_cursor is not None:
            self.cursors.append(self.next_cursor)
        elif event.step < 0 and len(self.cursors) > 1:
            self.cursors.pop()
        else:
            return
        self.jobtui.request_refresh()

    def select_batch(self, batch_id: str) -> None:
        self.batch_id = batch_id
        self.cursors = [None]
        self.query_one("#batches", KeyedTable).select_key(batch_id)
        self.jobtui.request_refresh()

    # -- which keys apply --------------------------------------------------------------

    def update_keys(self) -> None:
        """Refresh the footer only when a key's state changed (it rebuilds itself)."""
        state = tuple(self.check_action(a, ()) for a in CONDITIONAL_ACTIONS)
        if state != self._key_state:
            self._key_state = state
            self.refresh_bindings()

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        job = self.selected_job
        batch = self.selected_batch
        if action == "retry_job":
            return True if job is not None and job.status in RETRYABLE else None
        if action == "cancel_job":
            return True if job is not None and not job.status.terminal else None
        if action == "detail":
            return True if job is not None else None
        if action == "retry_failed":
            return True if batch is not None and batch.counts.get("failed", 0) else None
        if action == "cancel_batch":
            return True if batch is not None and not batch.finished else None
        if action == "pause":
            return True if self.jobtui.live_engine is not None else None
        if action == "switch_claiming":
            return True if self.jobtui.can_switch_claiming else None
        if action == "clear_filter":
            return True if self.filter.active else None
        return True

    # -- actions ---------------------------------------------------------------------

    def action_enqueue(self) -> None:
        self.jobtui.open_enqueue([])

    async def action_retry_job(self) -> None:
        job = self.selected_job
        if job is None or job.status not in RETRYABLE:
            return
        n = await self.jobtui.call_api("retry", self.jobtui.api.retry_job(job.job_id))
        if n is not None:
            self.notify(f"Retrying {job_file(job)}" if n else "Nothing to retry")

    async def action_retry_failed(self) -> None:
        batch = self.selected_batch
        if batch is None:
            return
        n = await self.jobtui.call_api(
            "retry failed", self.jobtui.api.retry_failed(batch.batch.batch_id)
        )
        if n is not None:
            self.notify(f"Retrying {n} failed job(s) of {batch.batch.name}")

    def action_cancel_job(self) -> None:
        job = self.selected_job
        if job is None or job.status.terminal:
            return

        async def answered(yes: bool | None) -> None:
            if yes:
                n = await self.jobtui.call_api("cancel", self.jobtui.api.cancel_job(job.job_id))
                if n is not None:
                    self.notify(f"Cancelled {job_file(job)}" if n else "Job already finished")

        self.app.push_screen(
            ConfirmScreen(f"Cancel job {job_file(job)} ({job.status.value})?", yes="Cancel job"),
            answered,
        )

    def action_cancel_batch(self) -> None:
        batch = self.selected_batch
        if batch is None or batch.finished:
            return
        left = batch.total - batch.done

        async def answered(yes: bool | None) -> None:
            if yes:
                n = await self.jobtui.call_api(
                    "cancel batch", self.jobtui.api.cancel_batch(batch.batch.batch_id)
                )
                if n is not None:
                    self.notify(f"Cancelled {n} job(s) of {batch.batch.name}")

        self.app.push_screen(
            ConfirmScreen(
                f"Cancel batch {batch.batch.name}: {left} unfinished job(s)?", yes="Cancel batch"
            ),
            answered,
        )

    def action_detail(self) -> None:
        from jobtui.tui.screens.detail import DetailScreen

        job = self.selected_job
        if job is not None:
            self.app.push_screen(DetailScreen(job.job_id))

    def action_filter(self) -> None:
        def chosen(spec: FilterSpec | None) -> None:
            if spec is not None:
                self.set_filter(spec)

        types = sorted(
            set(self.jobtui.api.registry.names()) | {j.job_type for j in self.jobs.values()}
        )
        self.app.push_screen(FilterScreen(self.filter, types), chosen)

    def set_filter(self, spec: FilterSpec) -> None:
        self.filter = spec
        self.cursors = [None]
        self.jobtui.request_refresh()
        self.update_keys()

    def action_clear_filter(self) -> None:
        if self.filter.active:
            self.set_filter(FilterSpec())

    def action_workers(self) -> None:
        from jobtui.tui.screens.workers import WorkersScreen

        self.app.push_screen(WorkersScreen())

    def action_pause(self) -> None:
        self.jobtui.toggle_pause()

    def action_switch_claiming(self) -> None:
        self.jobtui.ask_switch_claiming()

    def action_help(self) -> None:
        from jobtui.tui.screens.help import HelpScreen

        self.app.push_screen(HelpScreen([b for b in self.BINDINGS if isinstance(b, Binding)]))

    def action_quit(self) -> None:
        self.jobtui.request_quit()
