"""Finishes that wait a little for each other (``Finisher``'s ``linger``).

Documents of a folder end a few milliseconds apart; written one by one, each costs a
transaction and a claim of its own. A group waits up to ``linger`` for ``gather()``
finishes, then is written in one store call. What must hold: a lone finish (or one
while stopping) is written at once, a group is written as soon as it is complete,
and one that never completes is written when the linger runs out, never lost.
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

from jobtui.engine.finisher import Finisher
from jobtui.engine.models import Job, JobStatus, Outcome
from jobtui.engine.store.base import Store

T0 = datetime(2031, 5, 4, 12, 0, 0, tzinfo=UTC)
DONE = Outcome(status=JobStatus.COMPLETED)
FOREVER = 3600.0  # a linger no test may wait out


class Counting:
    """Records the size of each store call the finisher makes."""

    def __init__(self, store: Store) -> None:
        self.calls: list[int] = []
        original = store.finish_many

        async def finish_many(items, **kw):  # type: ignore[no-untyped-def]
            self.calls.append(len(items))
            return await original(items, **kw)

        store.finish_many = finish_many  # type: ignore[method-assign]


async def claimed(store: Store, n: int) -> list[tuple[str, str]]:
    await store.insert_jobs([Job(job_type="a") for _ in range(n)])
    jobs = await store.claim(
        worker_id="w", slots={"a": n}, limit=n, lease_seconds=30, timeouts={}, now=T0
    )
    return [(j.job_id, j.lease.token) for j in jobs if j.lease is not None]


async def test_a_lone_finish_does_not_wait(store: Store) -> None:
    counting = Counting(store)
    fin = Finisher(store, "w", linger=FOREVER, gather=lambda: 1)
    task = asyncio.create_task(fin.run())
    try:
        ((job_id, token),) = await claimed(store, 1)
        assert await asyncio.wait_for(fin.finish(job_id, token, DONE), 10)
        assert counting.calls == [1]
    finally:
        task.cancel()


async def test_a_group_is_written_once_complete(store: Store) -> None:
    """Three finishes arriving apart, gather() = 3: one store call for all three,
    made when the third arrives (the linger is never waited out)."""
    counting = Counting(store)
    fin = Finisher(store, "w", linger=FOREVER, gather=lambda: 3)
    task = asyncio.create_task(fin.run())
    try:
        jobs = await claimed(store, 3)
        first = [asyncio.ensure_future(fin.finish(j, t, DONE)) for j, t in jobs[:2]]
        for _ in range(20):  # the finisher has every chance to write them alone
            await asyncio.sleep(0)
        assert counting.calls == [] and not any(f.done() for f in first)
        last = await asyncio.wait_for(fin.finish(*jobs[2], DONE), 10)
        assert last and all(await asyncio.gather(*first))
        assert counting.calls == [3]
        assert await store.count_jobs() == {"completed": 3}
    finally:
        task.cancel()


async def test_an_incomplete_group_is_written_when_the_linger_ends(store: Store) -> None:
    """Two finishes of the three asked for: written together once the linger is
    over, not held until a third comes."""
    counting = Counting(store)
    fin = Finisher(store, "w", linger=0.05, gather=lambda: 3)
    task = asyncio.create_task(fin.run())
    try:
        jobs = await claimed(store, 2)
        oks = await asyncio.wait_for(asyncio.gather(*(fin.finish(j, t, DONE) for j, t in jobs)), 10)
        assert oks == [True, True]
        assert counting.calls == [2]
    finally:
        task.cancel()


async def test_the_wait_ends_when_gather_says_one(store: Store) -> None:
    """The engine asks for one finish once it stops: a group waiting for more is
    written at the next finish, whatever the linger."""
    counting = Counting(store)
    want = [3]
    fin = Finisher(store, "w", linger=FOREVER, gather=lambda: want[0])
    task = asyncio.create_task(fin.run())
    try:
        jobs = await claimed(store, 2)
        first = asyncio.ensure_future(fin.finish(*jobs[0], DONE))
        for _ in range(20):  # the finisher is waiting for a group of three
            await asyncio.sleep(0)
        assert counting.calls == [] and not first.done()
        want[0] = 1  # stopping
        assert await asyncio.wait_for(fin.finish(*jobs[1], DONE), 10)
        assert await first
        assert sum(counting.calls) == 2
    finally:
        task.cancel()
