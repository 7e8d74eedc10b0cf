"""Job detail: parameters, result, error with details, attempts, full log, output paths.

It re-reads the job once a second while the job is not terminal (one fetch at a
time: the next one starts after the last one rendered). The full log is read once;
each refresh then reads only the last ``LOG_TAIL`` lines and appends those newer than
the last line shown (a job with 100,000 lines is not re-read every second). Secret
parameters are redacted (``OperatorAPI.shown_parameters``).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import Iterator
from datetime import datetime
from typing import TYPE_CHECKING, Any, ClassVar

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import VerticalScroll
from textual.css.query import NoMatches
from textual.screen import Screen
from textual.widgets import Footer, Log, Static

from jobtui.engine.api import JobDetail
from jobtui.tui.durations import human_duration
from jobtui.tui.widgets.cells import clock, colour, job_duration, status_text
from jobtui.tui.widgets.logtail import log_line

if TYPE_CHECKING:
    from jobtui.engine.models import LogEntry
    from jobtui.tui.app import JobtuiApp

FULL_LOG_LINES = 100_000  # read once, when the screen opens
LOG_TAIL = 500  # read on each refresh; more new lines than this in one second: read all

OUTPUT_KEYS = (
    "output",
    "outputs",
    "output_path",
    "output_paths",
    "output_dir",
    "files",
    "path",
    "paths",
    "markdown",
    "images",
    "transcript",
)


def pretty(value: Any) -> str:
    if value in (None, {}, []):
        return "—"
    return json.dumps(value, indent=2, ensure_ascii=False, default=str, sort_keys=True)


def output_paths(results: dict[str, Any] | None) -> list[str]:
    """Paths named in a job's results (keys like ``output``, ``markdown``, ``images``)."""

    def walk(value: Any) -> Iterator[str]:
        if isinstance(value, str) and (
            "/" in value or value.endswith((".md", ".txt", ".png", ".json"))
        ):
            yield value
        elif isinstance(value, list):
            for item in value:
                yield from walk(item)
        elif isinstance(value, dict):
            for item in value.values():
                yield from walk(item)

    found: list[str] = []
    for key, value in (results or {}).items():
        if key in OUTPUT_KEYS or key.endswith(("_path", "_paths", "_dir", "_file", "_files")):
            found.extend(p for p in walk(value) if p not in found)
    return found


class DetailScreen(Screen[None]):
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape,q", "app.pop_screen", "Back", id="detail-back", tooltip="Back to the jobs"),
    ]

    def __init__(self, job_id: str) -> None:
        super().__init__()
        self.job_id = job_id
        self.detail: JobDetail | None = None
        self.fetches = 0
        self._log_loaded = False  # the full log was read once
        self._last_line: tuple[datetime, int] | None = None  # (ts, seq) of the last line shown
        self.log_limits: list[int] = []  # log lines asked for per fetch (tests read it)

    @property
    def jobtui(self) -> JobtuiApp:
        return self.app  # type: ignore[return-value]

    def compose(self) -> ComposeResult:
        with VerticalScroll(id="detail-body"):
            yield Static("Loading…", id="detail-head")
            yield Static("", id="detail-error", classes="section")
            yield Static("", id="detail-parameters", classes="section")
            yield Static("", id="detail-results", classes="section")
            yield Static("", id="detail-outputs", classes="section")
        yield Log(id="detail-log", max_lines=100_000)
        yield Footer()

    def on_mount(self) -> None:
        self.query_one("#detail-log", Log).border_title = "Full log"
        self.run_worker(self._follow(), exclusive=True, group="detail")

    async def _follow(self) -> None:
        while True:
            limit = LOG_TAIL if self._log_loaded else FULL_LOG_LINES
            self.log_limits.append(limit)
            try:
                detail = await self.jobtui.api.job_detail(self.job_id, log_limit=limit)
                if detail is not None and limit < FULL_LOG_LINES and self._gap(detail.logs):
                    self.log_limits.append(FULL_LOG_LINES)
                    self._log_loaded = False  # more new lines than the tail holds: read all
                    detail = await self.jobtui.api.job_detail(self.job_id, log_limit=FULL_LOG_LINES)
            except Exception as exc:  # noqa: BLE001 - the store went away; say so, try again
                failed: Exception | None = exc
                detail = None
            else:
                failed = None
            if not self.is_attached:
                return  # closed while the fetch was under way
            try:
                if failed is not None:
                    self.query_one("#detail-head", Static).update(f"Cannot read job: {failed}")
                else:
                    self.show(detail)
            except NoMatches:
                return  # being torn down
            self.fetches += 1
            if detail is not None and detail.job.status.terminal:
                return
            await asyncio.sleep(self.jobtui.refresh_interval)

    def show(self, detail: JobDetail | None) -> None:
        if detail is None:
            self.query_one("#detail-head", Static).update(f"Job {self.job_id} not found")
            return
        self.detail = detail
        job = detail.job
        v = self.app.get_css_variables()
        now = self.jobtui.now()
        head = Text()
        head.append(f"Job {job.job_id}  ", style="bold")
        head.append_text(status_text(job.status.value, v))
        head.append(
            f"\ntype {job.job_type}   attempts {job.attempts}/{job.max_attempts}"
            f"   duration {human_duration(job_duration(job, now))}"
        )
        head.append(f"\nfile {job.path or '—'}")
        head.append(f"\nbatch {job.batch_id or '—'}   worker {job.worker_id or '—'}")
        times = [f"created {clock(job.created_at)}"]
        if job.started_at:
            times.append(f"started {clock(job.started_at)}")
        if job.completed_at:
            times.append(f"finished {clock(job.completed_at)}")
        head.append("\n" + "   ".join(times))
        if job.progress and not job.status.terminal:
            step = f" {job.progress.step}" if job.progress.step else ""
            head.append(f"\nprogress {job.progress.percent:.0f}%{step}")
        if job.cancel_requested and not job.status.terminal:
            head.append("\ncancel requested", style=colour(v, "warning"))
        self.query_one("#detail-head", Static).update(head)

        error = self.query_one("#detail-error", Static)
        if job.error:
            text = Text()
            text.append("Error  ", style="bold")
            text.append(job.error.code, style=f"bold {colour(v, 'error')}")
            text.append(f"  {job.error.message}")
            if job.error.details:
                text.append("\n" + pretty(self.jobtui.api.shown(job.error.details)))
            error.update(text)
            error.display = True
        else:
            error.display = False
        self.query_one("#detail-parameters", Static).update(
            Text("Parameters\n", style="bold") + Text(pretty(self.jobtui.api.shown_parameters(job)))
        )
        self.query_one("#detail-results", Static).update(
            Text("Result\n", style="bold") + Text(pretty(self.jobtui.api.shown(job.results)))
        )
        outputs = output_paths(job.results)
        self.query_one("#detail-outputs", Static).update(
            Text("Output paths\n", style="bold") + Text("\n".join(outputs) if outputs else "—")
        )
        self._append_log(detail.logs)

    def _gap(self, tail: list[LogEntry]) -> bool:
        """Whether lines may be missing between what is shown and this tail."""
        return (
            self._last_line is not None
            and len(tail) >= LOG_TAIL
            and (tail[0].ts, tail[0].seq) > self._last_line
        )

    def _append_log(self, entries: list[LogEntry]) -> None:
        log = self.query_one("#detail-log", Log)
        last = self._last_line
        if not self._log_loaded:
            log.clear()
            fresh = entries
            self._log_loaded = True
        else:
            fresh = [e for e in entries if last is None or (e.ts, e.seq) > last]
        if fresh:
            with contextlib.suppress(Exception):
                log.write_lines([log_line(e) for e in fresh])
            self._last_line = (fresh[-1].ts, fresh[-1].seq)
        log.border_title = f"Full log ({log.line_count} lines)"
