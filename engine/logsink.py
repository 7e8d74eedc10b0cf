"""Buffers job log lines and writes them in bulk, so logging costs no round trip each."""

from __future__ import annotations

import asyncio
import contextlib
import logging

from jobtui.engine.models import LogEntry
from jobtui.engine.store.base import Store

log = logging.getLogger(__name__)


class LogSink:
    def __init__(self, store: Store, interval: float = 0.5, max_buffer: int = 500) -> None:
        self._store = store
        self._interval = interval
        self._max = max_buffer
        self._buf: list[LogEntry] = []
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    def add(self, entry: LogEntry) -> None:
        self._buf.append(entry)
        if len(self._buf) >= self._max:
            self._wake.set()

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="jobtui-logsink")

    async def _run(self) -> None:
        while True:
            # timeout(), not wait_for(): on 3.11 wait_for can swallow a cancel
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(self._interval):
                    await self._wake.wait()
            self._wake.clear()
            await self.flush()

    async def flush(self) -> None:
        if not self._buf:
            return
        batch, self._buf = self._buf, []
        try:
            await self._store.append_logs(batch)
        except Exception:  # noqa: BLE001 - a store outage must not kill the engine
            log.warning("could not write %d log lines; keeping them for the next try", len(batch))
            self._buf[:0] = batch[-5000:]

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            try:
                await self._task
            except asyncio.CancelledError:
                pass
        await self.flush()
