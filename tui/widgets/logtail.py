"""The live log tail of the selected job: appends only the new lines.

Like Toolong, it keeps following the end unless the operator scrolled up; then it
says how many new lines wait below.
"""

from __future__ import annotations

from collections.abc import Sequence

from textual.widgets import Log

from jobtui.engine.models import LogEntry
from jobtui.tui.widgets.cells import clock

#: Shown in the log panel while the store holds no job at all: what to do first.
NO_JOBS_HINT = (
    "No jobs yet: press e to enqueue a folder or files, or paste (drop) a folder",
    "into this window. ? lists every key.",
)


def log_line(entry: LogEntry) -> str:
    level = "" if entry.level == "info" else f"{entry.level.upper()} "
    return f"{clock(entry.ts)} {level}{entry.message}"


class LogTail(Log):
    def __init__(self, **kwargs: object) -> None:
        super().__init__(max_lines=2000, auto_scroll=True, **kwargs)  # type: ignore[arg-type]
        self.job_id: str | None = None
        self._last: tuple[object, int] | None = None
        self._waiting = 0
        self.base_title = "Log"
        self._hint: Sequence[str] = ()

    def show(
        self,
        job_id: str | None,
        title: str,
        entries: Sequence[LogEntry],
        hint: Sequence[str] = (),
    ) -> None:
        """The job's new log lines; with no job selected, ``hint`` (or nothing)."""
        if job_id != self.job_id or (job_id is None and hint != self._hint):
            self.clear()
            self.job_id = job_id
            self._last = None
            self._waiting = 0
            self._hint = hint if job_id is None else ()
            if self._hint:
                self.write_lines(self._hint, scroll_end=False)  # its first line in view
        fresh = [e for e in entries if self._last is None or (e.ts, e.seq) > self._last]
        if fresh:
            following = self.is_vertical_scroll_end or self.max_scroll_y == 0
            self.auto_scroll = following
            self.write_lines([log_line(e) for e in fresh])
            self._last = (fresh[-1].ts, fresh[-1].seq)
            self._waiting = 0 if following else self._waiting + len(fresh)
        if self.is_vertical_scroll_end:
            self._waiting = 0
        more = f" — {self._waiting} new lines below" if self._waiting else ""
        self.border_title = f"Log: {title}{more}" if job_id else "Log (select a job)"
