"""What a handler gets: its job, progress and log reporting, cancellation, CPU work.

Progress writes are throttled to one per second per job (the latest value is
written at most a second late, never lost). Log lines are buffered and written in
bulk by the engine's log writer. CPU-bound work goes to the engine's process pool
through ``run_cpu``; cancelling the job kills the process running it.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from jobtui.engine.errors import JobCancelled
from jobtui.engine.models import Job, LogEntry, Progress

if TYPE_CHECKING:
    from jobtui.engine.logsink import LogSink
    from jobtui.engine.procpool import ProcessPool
    from jobtui.engine.store.base import Store

PROGRESS_MIN_INTERVAL = 1.0  # seconds between progress writes of one job


class JobContext:
    """Handed to every handler call as its first argument."""

    def __init__(
        self,
        job: Job,
        *,
        store: Store,
        token: str,
        logs: LogSink,
        pool: Callable[[], ProcessPool],
        output_dir: Path,
        settings: dict[str, Any] | None = None,
    ) -> None:
        self.job = job
        self.output_dir = output_dir
        self.settings = settings or {}
        self.cancel_event = asyncio.Event()
        self._store = store
        self._token = token
        self._logs = logs
        self._pool = pool
        self._last_write = 0.0
        self._pending: Progress | None = None
        self._flush_handle: asyncio.TimerHandle | None = None
        self._seq = 0
        self.progress_writes = 0
        self.lease_lost = False  # set by the engine: this attempt may write nothing more

    @property
    def job_id(self) -> str:
        return self.job.job_id

    @property
    def attempt(self) -> int:
        return self.job.attempts

    @property
    def cancelled(self) -> bool:
        return self.cancel_event.is_set()

    def check_cancelled(self) -> None:
        """Raise ``JobCancelled`` if an operator cancelled this job."""
        if self.cancel_event.is_set():
            raise JobCancelled(self.job_id)

    async def progress(
        self, percent: float, step: str | None = None, message: str | None = None
    ) -> None:
        """Report progress; written at most once a second, the last value always."""
        self._pending = Progress(
            percent=round(max(0.0, min(100.0, percent)), 2), step=step, message=message
        )
        wait = self._last_write + PROGRESS_MIN_INTERVAL - time.monotonic()
        if wait <= 0:
            await self._write_progress()
        elif self._flush_handle is None:
            loop = asyncio.get_running_loop()
            self._flush_handle = loop.call_later(
                wait, lambda: loop.create_task(self._write_progress())
            )

    async def _write_progress(self) -> None:
        self._flush_handle = None
        progress, self._pending = self._pending, None
        if progress is None:
            return
        self._last_write = time.monotonic()
        self.progress_writes += 1
        await self._store.set_progress(self.job_id, self._token, progress)

    def log(self, message: str, level: str = "info") -> None:
        """Add a line to this job's log (written in bulk, shortly)."""
        self._seq += 1
        self._logs.add(LogEntry(job_id=self.job_id, level=level, message=message, seq=self._seq))

    async def run_cpu(self, fn: Callable[..., Any], *args: Any) -> Any:
        """Run ``fn(*args)`` in a warm worker process; cancel kills that process."""
        return await self._pool().run(fn, *args)

    def close(self) -> None:
        """Drop a scheduled progress write (the attempt is over)."""
        if self._flush_handle is not None:
            self._flush_handle.cancel()
            self._flush_handle = None
