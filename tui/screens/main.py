"""The main screen: status line, batches, jobs of the selected batch, log tail, keys.

The screen owns what the operator looks at (selected batch, filter, page of jobs,
selected job); the app's one refresh loop asks it for that ``ViewRequest``, fetches,
and hands back a ``ConsoleSnapshot`` to render. Keys that do not apply to the
current selection are greyed out in the footer (``check_action`` returns None).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, ClassVar

from textual import on
from textual.app import ComposeResult
from textual.binding import BindingType
from textual.containers import Vertical
from textual.screen import Screen
from textual.widgets import DataTable, Footer

from jobtui.engine.api import JobCursor
from jobtui.engine.models import BatchSummary, Job, JobFilter, JobStatus
from jobtui.tui.screens.dialogs import ConfirmScreen, FilterScreen, FilterSpec
from jobtui.tui.screens.main_keys import MAIN_BINDINGS
from jobtui.tui.screens.rows import (
    ALL_BATCHES,
    BATCH_COLUMNS,
    JOB_COLUMNS,
    BatchRows,
    job_rows,
)
from jobtui.tui.widgets.cells import job_file
from jobtui.tui.widgets.logtail import NO_JOBS_HINT, LogTail
from jobtui.tui.widgets.status import StatusLine
from jobtui.tui.widgets.tables import JobsTable, KeyedTable

if TYPE_CHECKING:
    from jobtui.tui.app import ConsoleSnapshot, JobtuiApp, ViewRequest

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
    BINDINGS: ClassVar[list[BindingType]] = MAIN_BINDINGS

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
        self._batch_rows = BatchRows()

    @property
    def jobtui(self) -> JobtuiApp:
        return self.app  # type: ignore[return-value]

    def compose(self) -> ComposeResult:
        yield StatusLine("connecting…", id="status")
        with Vertical(id="tables"):
            yield KeyedTable(BATCH_COLUMNS, id="batches")
            yield JobsTable(JOB_COLUMNS, id="jobs")
            yield LogTail(id="log")
        yield Footer(compact=True)

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
        """As many jobs as the table shows: its inner height less the header row."""
        height = self.query_one("#jobs", JobsTable).scrollable_content_region.height
        return max(3, height - 1) if height else 20

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
            empty = snap.page is not None and not any(snap.counts.values())
            log.show(None, "", [], NO_JOBS_HINT if empty else ())
        self.update_keys()

    def _show_batches(self, snap: ConsoleSnapshot, v: dict[str, str]) -> None:
        assert snap.batches is not None
        self.batches = {b.batch.batch_id: b for b in snap.batches}
        table = self.query_one("#batches", KeyedTable)
        rows = self._batch_rows.build(snap.counts, snap.batches, self.jobtui.now(), v, table)
        table.sync(rows)
        if self.batch_id is not None and self.batch_id not in self.batches:
            self.batch_id = None  # the batch vanished (too old for the list): show all
            self.cursors = [None]
        if table.selected_key != (self.batch_id or ALL_BATCHES):
            table.select_key(self.batch_id or ALL_BATCHES)

    def _show_jobs(self, snap: ConsoleSnapshot, v: dict[str, str]) -> None:
        assert snap.page is not None
        self.jobs = {j.job_id: j for j in snap.page.jobs}
        self.next_cursor = snap.page.next_cursor
        table = self.query_one("#jobs", JobsTable)
        rows = job_rows(
            snap.page.jobs, self.jobtui.now(), v, table, snap.status.unserved, snap.status.held
        )
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
        self._show_output(snap)

    def _show_output(self, snap: ConsoleSnapshot) -> None:
        """Where the selected job's outputs go: the folder chosen when it was enqueued,
        else this console's engine's, else each worker's own."""
        job = self.selected_job
        out = (job.output_dir if job is not None else None) or snap.status.output_dir
        self.query_one("#jobs", JobsTable).border_subtitle = (
            f"output: {out}" if out else "output: each worker's own folder"
        )

    def rerender(self) -> None:
        """Theme changed: every coloured cell is rebuilt from the last snapshot."""
        self._batch_rows.forget()
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

    @on(JobsTable.Resized)
    def _jobs_resized(self, event: JobsTable.Resized) -> None:
        # The page follows the table's height (the terminal, or the batches table above
        # it growing with its rows): fetch again when the page would differ.
        request = self.snapshot.request if self.snapshot is not None else None
        if request is None or request.page_size != self.page_size():
            self.jobtui.request_refresh()

    @on(KeyedTable.LayoutChanged)
    def _layout_changed(self, event: KeyedTable.LayoutChanged) -> None:
        # Cells drawn for the old widths (progress bars) are drawn again for the new.
        if self.snapshot is not None:
            self.show_snapshot(self.snapshot)

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

        self.app.push_screen(HelpScreen())

    def action_quit(self) -> None:
        self.jobtui.request_quit()
