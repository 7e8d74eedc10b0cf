"""The seed's batch counters at an engine's stop: ``BatchRecounter.flush`` waits for a
recount already under way (its batches are no longer marked), and a pass cut short by
the stop leaves its batches marked for the flush. Under load in CI, the stop once left
the seed's ``event_batches`` saying 0 completed for a batch with one completed job:
the flush found nothing marked while the loop's pass was in flight, and the stop then
cancelled that pass."""

from __future__ import annotations

import asyncio
from datetime import datetime
from typing import Any

from jobtui.engine.batchcounts import BatchRecounter
from jobtui.engine.models import Job, JobStatus, Outcome
from tests.util import wait_for


class GatedStore:
    """Only what BatchRecounter uses; each recount waits for ``gate``."""

    def __init__(self) -> None:
        self.gate = asyncio.Event()
        self.calls: list[list[str]] = []
        self.written: list[list[str]] = []

    async def recount_batches(self, ids: list[str], *, now: datetime) -> None:
        self.calls.append(list(ids))
        await self.gate.wait()
        self.written.append(list(ids))


def _end(rc: BatchRecounter, batch_id: str) -> None:
    job = Job(job_type="x", parameters={}, batch_id=batch_id)
    rc.on_terminal(job, Outcome(status=JobStatus.COMPLETED))


async def _recounting(store: GatedStore, n: int) -> None:
    async def started() -> bool:
        return len(store.calls) >= n

    await wait_for(started, timeout=10, what="a recount to start")


async def test_flush_waits_for_the_recount_in_flight() -> None:
    store = GatedStore()
    rc = BatchRecounter(store, min_interval=0)  # type: ignore[arg-type]
    task: Any = rc.start()
    try:
        _end(rc, "b1")
        await _recounting(store, 1)
        flush = asyncio.ensure_future(rc.flush())
        for _ in range(20):  # loop turns: a flush with nothing marked is done in one
            await asyncio.sleep(0)
        assert not flush.done()
        store.gate.set()
        await flush
        assert store.written == [["b1"]] and rc.recounts == 1
    finally:
        task.cancel()


async def test_a_pass_cancelled_by_the_stop_is_counted_by_the_flush() -> None:
    store = GatedStore()
    rc = BatchRecounter(store, min_interval=0)  # type: ignore[arg-type]
    task: Any = rc.start()
    _end(rc, "b1")
    await _recounting(store, 1)
    task.cancel()  # as Engine.stop cancels its tasks
    await asyncio.gather(task, return_exceptions=True)
    assert store.written == []
    store.gate.set()
    await rc.flush()
    assert store.written == [["b1"]] and rc.recounts == 1
