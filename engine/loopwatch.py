"""Notices an event loop that stops turning, and says which job blocked it.

A handler that blocks the loop (``time.sleep``, a CPU loop, a synchronous library call
in an ``async def``) freezes every job of the process: heartbeats stop (leases expire,
the jobs run again elsewhere), cancels and shutdown wait. A thread watches a timestamp
the loop refreshes; when it is older than ``threshold`` seconds, the thread reads the
task the loop is running (``asyncio.current_task(loop)`` is a dictionary lookup, safe
from another thread) and reports it once per stall through ``report``. Plain ``def``
handlers run in a thread and cannot block the loop; CPU work belongs in ``ctx.run_cpu``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
import time
from collections.abc import Callable

log = logging.getLogger(__name__)

#: Seconds without a turn of the loop that count as "blocked" (default).
BLOCKED_AFTER_S = 1.0


class LoopWatch:
    """``report(task, seconds)`` is called from the watching thread, once per stall."""

    def __init__(
        self,
        report: Callable[[asyncio.Task[object] | None, float], None],
        threshold: float = BLOCKED_AFTER_S,
    ) -> None:
        self.report = report
        self.threshold = threshold
        self.stalls = 0
        self._last = time.monotonic()
        self._stop = threading.Event()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._tick: asyncio.Task[None] | None = None
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._last = time.monotonic()
        self._tick = self._loop.create_task(self._ticks(), name="jobtui-loopwatch")
        self._thread = threading.Thread(target=self._watch, name="jobtui-loopwatch", daemon=True)
        self._thread.start()

    async def stop(self) -> None:
        self._stop.set()
        if self._tick is not None:
            self._tick.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._tick

    async def _ticks(self) -> None:
        while True:
            self._last = time.monotonic()
            await asyncio.sleep(self.threshold / 4)

    def _watch(self) -> None:
        reported_for = 0.0
        while not self._stop.wait(self.threshold / 4):
            last = self._last
            stalled = time.monotonic() - last
            if stalled < self.threshold or reported_for == last:
                continue
            reported_for = last  # once per stall
            self.stalls += 1
            task = asyncio.current_task(self._loop) if self._loop is not None else None
            try:
                self.report(task, stalled)
            except Exception:  # noqa: BLE001 - a watcher must not die of its report
                log.exception("loop watch report failed")
