"""Keeps the counters in stored batch documents true for the seed's readers.

The seed's dashboard reads ``event_batches`` (``total_jobs``, ``completed_jobs``,
``failed_jobs``, ``pending_jobs``, ``processing_jobs``, ``status``, ``completed_at``).
jobtui never increments them: whenever a job this engine ran (or its watchdog
recovered) ends, its batch is marked, and a loop recounts marked batches from their
jobs (``Store.recount_batches``). Recounts are coalesced: while one runs, more jobs of
the batch may end; the next pass counts them all, at most every ``min_interval``
seconds per engine, so a batch of 100,000 fast jobs is not counted 100,000 times. A
pass that took long waits ten times as long before the next one: counting a
100,000-job batch on SQLite took 30-130 ms here (a covering index scan, inside a
write transaction), so recounts cost the store at most about a tenth of its time.
The last job of a batch always leads to a recount after it ended, so the final
counters are exact; ``flush`` (at engine stop) recounts what is still marked.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable

from jobtui.engine.finisher import retrying, short
from jobtui.engine.models import Job, Outcome, utcnow
from jobtui.engine.store.base import Store

log = logging.getLogger(__name__)


class BatchRecounter:
    def __init__(
        self,
        store: Store,
        *,
        min_interval: float = 0.25,
        on_recounted: Callable[[], None] | None = None,
    ) -> None:
        self.store = store
        self.min_interval = min_interval
        #: called after each recount (the webhooks then look for finished batches)
        self.on_recounted = on_recounted
        self._dirty: set[str] = set()
        self._wake = asyncio.Event()
        # One recount at a time: ``flush`` waits for the loop's pass in flight, whose
        # batches are no longer marked (and would be lost if the engine then cancelled
        # that pass as it stops).
        self._one = asyncio.Lock()
        self._task: asyncio.Task[None] | None = None
        self.recounts = 0

    def on_terminal(self, job: Job, outcome: Outcome) -> None:
        """Terminal hook (synchronous, O(1)): mark the job's batch for a recount."""
        if job.batch_id:
            self._dirty.add(job.batch_id)
            self._wake.set()

    async def _recount_dirty(self) -> None:
        async with self._one:
            await self._recount_marked()

    async def _recount_marked(self) -> None:
        ids, self._dirty = sorted(self._dirty), set()
        if not ids:
            return
        try:
            await retrying(lambda: self.store.recount_batches(ids, now=utcnow()))
        except asyncio.CancelledError:  # stopped mid-pass: a later flush counts them
            self._dirty.update(ids)
            raise
        except Exception as exc:  # noqa: BLE001 - the next job end marks them again
            log.warning("batch counters of %d batch(es) not written: %s", len(ids), short(exc))
        else:
            self.recounts += 1
            if self.on_recounted is not None:
                self.on_recounted()

    async def run(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            await self._wake.wait()
            self._wake.clear()
            started = loop.time()
            await self._recount_dirty()
            await asyncio.sleep(max(self.min_interval, 10 * (loop.time() - started)))

    def start(self) -> asyncio.Task[None]:
        self._task = asyncio.create_task(self.run(), name="jobtui-batch-counts")
        return self._task

    async def flush(self) -> None:
        """Recount every marked batch now, after a recount already under way (engine
        stop; tests)."""
        await self._recount_dirty()
