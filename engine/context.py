"""What a handler gets: its job, progress and log reporting, cancellation, CPU work.

Progress writes are throttled to one per second per job (the latest value is
written at most a second late) and made by a background task: a handler never waits
on the store for them, and a store that is briefly away (a failover, a restart) only
delays them: a failed write is retried with backoff, keeping only the latest value,
and never ends the attempt. Log lines are buffered and written in bulk by the
engine's log writer. CPU-bound work goes to the engine's process pool
through ``run_cpu``; cancelling the job kills the process running it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from jobtui.engine.errors import JobCancelled
from jobtui.engine.finisher import short
from jobtui.engine.inputs import InputFile, open_input, roots_of
from jobtui.engine.models import Job, LogEntry, Progress

if TYPE_CHECKING:
    from jobtui.engine.logsink import LogSink
    from jobtui.engine.procpool import ProcessPool
    from jobtui.engine.store.base import Store

log = logging.getLogger(__name__)

PROGRESS_MIN_INTERVAL = 1.0  # seconds between progress writes of one job
PROGRESS_RETRY_MAX = 5.0  # longest wait between tries while the store is away
PROGRESS_FLUSH_S = 5.0  # how long the end of an attempt waits for its last progress write


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
        self._inputs: list[InputFile] = []
        self.cancel_event = asyncio.Event()
        self._store = store
        self._token = token
        self._logs = logs
        self._pool = pool
        self._last_write = 0.0
        self._pending: Progress | None = None
        self._writer: asyncio.Task[None] | None = None
        self._write_now = asyncio.Event()  # the attempt ends: skip the once-a-second wait
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
        self,
        percent: float,
        step: str | None = None,
        message: str | None = None,
        *,
        done: float | None = None,
        total: float | None = None,
        unit: str | None = None,
    ) -> None:
        """Report progress; written at most once a second, the last value always.

        ``done`` of ``total`` ``unit`` (e.g. 12 of 2,400 "pages"): the work in a unit
        of the job type's choosing, which the console's batch ETA weighs jobs by. Give
        all three or none; report ``done == total`` when the work is done.

        Returns at once: the write is made by a background task (see the module doc).
        """
        if (unit is None) != (total is None) or (unit is None) != (done is None):
            raise ValueError("progress: give done, total and unit together, or none")
        self._pending = Progress(
            percent=round(max(0.0, min(100.0, percent)), 2),
            step=step,
            message=message,
            done=done,
            total=total,
            unit=unit,
        )
        if self._writer is None or self._writer.done():
            if time.monotonic() - self._last_write >= PROGRESS_MIN_INTERVAL:
                self.progress_writes += 1  # counted as issued (the handler goes on)
            self._writer = asyncio.get_running_loop().create_task(
                self._write_loop(), name=f"progress-{self.job_id}"
            )

    async def _write_loop(self) -> None:
        """Write the latest pending value, at most once a second, until none is left."""
        retry = 0.2
        while self._pending is not None and not self.lease_lost:
            wait = self._last_write + PROGRESS_MIN_INTERVAL - time.monotonic()
            if wait > 0:
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(wait):
                        await self._write_now.wait()
                self.progress_writes += 1
            progress, self._pending = self._pending, None
            if progress is None:
                return
            self._last_write = time.monotonic()
            try:
                await self._store.set_progress(self.job_id, self._token, progress)
                retry = 0.2
            except Exception as exc:  # noqa: BLE001 - store away: the attempt goes on
                log.warning(
                    "progress of %s not written (%s); retrying in %.1fs",
                    self.job_id,
                    short(exc),
                    retry,
                )
                if self._pending is None:
                    self._pending = progress  # newer values replace it, never older ones
                await asyncio.sleep(retry)
                retry = min(retry * 2, PROGRESS_RETRY_MAX)
                self._last_write = 0.0

    async def flush_progress(self) -> None:
        """At the end of an attempt: write the last value now (not after the rest of
        its once-a-second gap), if the store answers soon. A finished writer left
        nothing to write: ``progress`` starts one for every new value."""
        if self._writer is None or self._writer.done():
            return
        self._write_now.set()
        # timeout(), not wait_for(): on 3.11 wait_for can swallow a cancel
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(PROGRESS_FLUSH_S):
                await asyncio.shield(self._writer)

    def log(self, message: str, level: str = "info") -> None:
        """Add a line to this job's log (written in bulk, shortly)."""
        self._seq += 1
        self._logs.add(LogEntry(job_id=self.job_id, level=level, message=message, seq=self._seq))

    def open_input(self, path: str) -> InputFile:
        """Open a job's input file, checked against the input roots as opened
        (``PATH_NOT_ALLOWED`` otherwise); read ``.read_path``, name outputs after
        ``.path``. It stays open (pinned) until the attempt ends."""
        f = open_input(
            path,
            roots_of(self.settings),
            refuse_hard_links=bool(self.settings.get("input_refuse_hard_links")),
        )
        self._inputs.append(f)
        return f

    async def run_cpu(self, fn: Callable[..., Any], *args: Any) -> Any:
        """Run ``fn(*args)`` in a warm worker process; cancel kills that process."""
        return await self._pool().run(fn, *args)

    def close(self) -> None:
        """Stop writing progress and close the inputs (the attempt is over)."""
        if self._writer is not None and not self._writer.done():
            self._writer.cancel()
        self._writer = None
        self._pending = None
        for f in self._inputs:
            f.close()
        self._inputs.clear()
