"""Fenced finishes, gathered: the engine's writes of how attempts end.

While one write is in flight the next ones gather, so a busy engine finishes many
jobs per round trip (one transaction on SQLite) and an idle one at once. A store that
is briefly away (failover, a restart, a locked file) is retried for ``STORE_RETRY_S``.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from functools import partial
from typing import TypeVar

from jobtui.engine.models import Outcome, utcnow
from jobtui.engine.store.base import Store

log = logging.getLogger(__name__)
T = TypeVar("T")

# Transient store failures are retried for about this long before a write gives up.
STORE_RETRY_S = 30.0


def short(exc: BaseException) -> str:
    """One line for the log: driver errors carry a whole topology description."""
    text = str(exc).splitlines()[0] if str(exc) else ""
    return f"{type(exc).__name__}: {text[:160]}"


async def retrying(op: Callable[[], Awaitable[T]], within: float = STORE_RETRY_S) -> T:
    """Await ``op()``, retrying with backoff on any error for ``within`` seconds."""
    deadline = time.monotonic() + within
    delay = 0.2
    while True:
        try:
            return await op()
        except Exception as exc:
            if time.monotonic() > deadline:
                raise
            log.warning("store write failed (%s); retrying in %.1fs", short(exc), delay)
            await asyncio.sleep(delay)
            delay = min(delay * 2, 5.0)


class Finisher:
    def __init__(self, store: Store) -> None:
        self._store = store
        self._queue: list[tuple[str, str, Outcome, asyncio.Future[bool]]] = []
        self._wake = asyncio.Event()

    async def finish(self, job_id: str, token: str, outcome: Outcome) -> bool:
        """Queue a fenced finish and wait for it; False when the lease was lost."""
        fut: asyncio.Future[bool] = asyncio.get_running_loop().create_future()
        self._queue.append((job_id, token, outcome, fut))
        self._wake.set()
        return await fut

    async def _finish_batch(self, batch: list[tuple[str, str, Outcome]]) -> list[bool]:
        return await self._store.finish_many(batch, now=utcnow())

    async def run(self) -> None:
        while True:
            await self._wake.wait()
            self._wake.clear()
            items, self._queue = self._queue, []
            if not items:
                continue
            batch = [(j, t, o) for j, t, o, _ in items]
            try:
                results = await retrying(partial(self._finish_batch, batch))
            except Exception as exc:  # noqa: BLE001 - reported to each waiting job
                for *_, fut in items:
                    if not fut.done():
                        fut.set_exception(exc)
                continue
            for (*_, fut), ok in zip(items, results, strict=True):
                if not fut.done():
                    fut.set_result(ok)
