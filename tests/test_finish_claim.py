"""A finish and the claim for the slot it frees, in one store call.

The engine's finisher asks for the next jobs together with the finishes that free
their slots (``Store.finish_then_claim``): on SQLite one transaction instead of two.
What must hold: the finishes stay fenced, a claim never takes more than the freed
slots (the store never shows more jobs processing than the concurrency), its failure
leaves the finishes standing, and a stop while it is under way hands its jobs back.
"""

from __future__ import annotations

import asyncio
import contextlib
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from jobtui.engine.api import OperatorAPI
from jobtui.engine.config import Settings
from jobtui.engine.models import Job, JobStatus, Outcome
from jobtui.engine.registry import default_registry
from jobtui.engine.store.base import ClaimRequest, Store
from jobtui.engine.store.sqlite import SQLiteStore
from jobtui.engine.worker import Engine
from tests.util import wait_for

T0 = datetime(2031, 5, 4, 12, 0, 0, tzinfo=UTC)
DONE = Outcome(status=JobStatus.COMPLETED, results={"n": 1})


def request(n: int, now: datetime = T0) -> ClaimRequest:
    return ClaimRequest("w1", {"a": n}, n, 30.0, {}, now)


async def test_finishes_then_claims_in_one_call(store: Store) -> None:
    await store.insert_jobs([Job(job_type="a") for _ in range(5)])
    a, b = await store.claim(
        worker_id="w1", slots={"a": 2}, limit=2, lease_seconds=30, timeouts={}, now=T0
    )
    assert a.lease is not None
    items = [(a.job_id, a.lease.token, DONE), (b.job_id, "stale-token", DONE)]
    oks, jobs = await store.finish_then_claim(
        items, request(2, T0 + timedelta(seconds=1)), now=T0, worker_id="w1"
    )
    assert oks == [True, False]  # fenced per item, as finish_many
    assert isinstance(jobs, list) and len(jobs) == 2
    assert not {a.job_id, b.job_id} & {j.job_id for j in jobs}
    assert all(j.status is JobStatus.PROCESSING and j.attempts == 1 for j in jobs)
    assert await store.count_jobs() == {"completed": 1, "processing": 3, "pending": 1}
    done = await store.get_job(a.job_id)
    assert done is not None and done.results == {"n": 1}
    # Nothing to claim (no slot): the finishes alone.
    last = jobs[0]
    assert last.lease is not None
    none = ClaimRequest("w1", {"a": 0}, 0, 30.0, {}, T0)
    assert await store.finish_then_claim(
        [(last.job_id, last.lease.token, DONE)], none, now=T0, worker_id="w1"
    ) == ([True], [])


async def test_a_failing_claim_leaves_the_finishes_standing(tmp_path: Path) -> None:
    """A real SQLite error in the claim (a trigger refuses it): returned, not raised;
    the finish in the same transaction is committed, nothing is claimed."""
    store = SQLiteStore(tmp_path / "jobs.db")
    await store.open()
    try:
        await store.insert_jobs([Job(job_type="a") for _ in range(3)])
        (a,) = await store.claim(
            worker_id="w1", slots={"a": 1}, limit=1, lease_seconds=30, timeouts={}, now=T0
        )
        assert a.lease is not None
        refuse = (
            "CREATE TEMP TRIGGER no_claims BEFORE UPDATE OF status ON jobs"
            " WHEN NEW.status = 'processing' BEGIN SELECT RAISE(ABORT, 'claims refused'); END"
        )
        await store._t.write(lambda: store._t.db.execute(refuse))
        oks, err = await store.finish_then_claim(
            [(a.job_id, a.lease.token, DONE)], request(2), now=T0, worker_id="w1"
        )
        assert oks == [True]
        assert isinstance(err, Exception) and "claims refused" in str(err)
        assert await store.count_jobs() == {"completed": 1, "pending": 2}
    finally:
        await store.close()


class WatchedStore(SQLiteStore):
    """Counts the engine's claims by path and checks, after each one, that no more
    jobs are processing than the engine may run."""

    def __init__(self, path: Path, limit: int) -> None:
        super().__init__(path)
        self.limit = limit
        self.claims = 0
        self.with_finishes = 0  # finish_then_claim calls that took jobs
        self.most_processing = 0
        self.after_claim: asyncio.Event | None = None  # set: pause before answering

    async def _check(self) -> None:
        processing = (await self.count_jobs()).get("processing", 0)
        self.most_processing = max(self.most_processing, processing)

    async def claim(self, **kw: Any) -> list[Job]:  # type: ignore[override]
        jobs = await super().claim(**kw)
        self.claims += 1
        await self._check()
        return jobs

    async def finish_then_claim(self, *args: Any, **kw: Any) -> Any:
        done, jobs = await super().finish_then_claim(*args, **kw)
        if isinstance(jobs, list) and jobs:
            self.with_finishes += 1
            if self.after_claim is not None:
                self.after_claim.set()
                await asyncio.sleep(0.3)  # the answer is on its way back to the loop
        await self._check()
        return done, jobs


async def test_the_engine_claims_freed_slots_with_its_finishes(tmp_path: Path) -> None:
    store = WatchedStore(tmp_path / "jobs.db", limit=2)
    await store.open()
    engine = Engine(store, default_registry(), Settings(concurrency=2, poll_interval=0.05))
    try:
        api = OperatorAPI(store, engine.registry)
        res = await api.enqueue("sleep", [{"seconds": 0.02} for _ in range(12)])
        await engine.start()
        await asyncio.wait_for(engine.wait_batch(res.batch_id), 30)
        assert await store.count_jobs() == {"completed": 12}
        assert store.with_finishes > 0  # the finisher claimed for the slots it freed
        assert store.most_processing <= 2
        assert all(j.attempts == 1 for j in await api.all_jobs())
    finally:
        await engine.stop(grace=5)
        await store.close()


async def quick_then_two_long(engine: Engine) -> tuple[Any, Any]:
    """Queued for a one-slot engine: a quick job first (its finish claims the next),
    then two long ones; the two enqueue results."""
    api = OperatorAPI(engine.store, engine.registry)
    first = await api.enqueue("sleep", [{"seconds": 0.02}], priority=5)
    rest = await api.enqueue("sleep", [{"seconds": 60}, {"seconds": 60}])
    return first, rest


async def test_stop_while_the_finishers_claim_is_under_way_hands_its_jobs_back(
    tmp_path: Path,
) -> None:
    store = WatchedStore(tmp_path / "jobs.db", limit=1)
    store.after_claim = asyncio.Event()
    await store.open()
    engine = Engine(store, default_registry(), Settings(concurrency=1, poll_interval=0.05))
    try:
        first, rest = await quick_then_two_long(engine)
        await engine.start()
        await asyncio.wait_for(store.after_claim.wait(), 30)
        await engine.stop(grace=0)
        assert (await store.get_job(first.job_ids[0])).status is JobStatus.COMPLETED  # type: ignore[union-attr]
        for job_id in rest.job_ids:
            j = await store.get_job(job_id)
            assert j is not None and j.status is JobStatus.PENDING and j.attempts == 0
    finally:
        with contextlib.suppress(Exception):
            await engine.stop(grace=0)
        await store.close()


async def test_the_claim_loop_waits_while_the_finisher_claims(tmp_path: Path) -> None:
    """With slots free and work queued, the claim loop does not claim while the
    finisher's claim is under way (the slots would be counted twice)."""
    store = WatchedStore(tmp_path / "jobs.db", limit=3)
    await store.open()
    engine = Engine(store, default_registry(), Settings(concurrency=3, poll_interval=0.05))
    try:
        api = OperatorAPI(store, engine.registry)
        res = await api.enqueue("sleep", [{"seconds": 0.01} for _ in range(30)])
        await engine.start()
        await asyncio.wait_for(engine.wait_batch(res.batch_id), 30)
        await wait_for(lambda: _true(not engine.running), 10, what="engine idle")
        assert store.most_processing <= 3
        assert await store.count_jobs() == {"completed": 30}
    finally:
        await engine.stop(grace=5)
        await store.close()


async def _true(value: bool) -> bool:
    return value


async def test_jobs_the_finishers_claim_takes_as_the_engine_pauses_go_back(
    tmp_path: Path,
) -> None:
    """``pause``: nothing new starts, also from a claim made with finishes."""
    took, release = asyncio.Event(), asyncio.Event()

    class Held(SQLiteStore):
        async def finish_then_claim(self, *args: Any, **kw: Any) -> Any:
            done, jobs = await super().finish_then_claim(*args, **kw)
            if isinstance(jobs, list) and jobs and not release.is_set():
                took.set()
                await release.wait()
            return done, jobs

    store = Held(tmp_path / "jobs.db")
    await store.open()
    engine = Engine(store, default_registry(), Settings(concurrency=1, poll_interval=0.05))
    try:
        first, rest = await quick_then_two_long(engine)
        await engine.start()
        await asyncio.wait_for(took.wait(), 30)
        engine.pause()
        release.set()
        done = await store.get_job(first.job_ids[0])
        assert done is not None and done.status is JobStatus.COMPLETED

        async def handed_back() -> bool:
            jobs = [await store.get_job(j) for j in rest.job_ids]
            return all(j is not None and j.status is JobStatus.PENDING for j in jobs)

        await wait_for(handed_back, 10, what="the finisher's claim handed back")
        assert not set(rest.job_ids) & set(engine.running)  # never started here
        await wait_for(lambda: _true(not engine.running), 10, what="the first job left")
        for job_id in rest.job_ids:
            j = await store.get_job(job_id)
            assert j is not None and j.attempts == 0
    finally:
        await engine.stop(grace=0)
        await store.close()
