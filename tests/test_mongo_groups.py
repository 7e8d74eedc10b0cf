"""MongoDB claims and finishes in groups, still atomic and fenced per job.

A bulk write reports only how many of its updates matched; these tests prove that
the store and the engine still know exactly which jobs of a group were finished and
which had lost their lease in between (another worker took it, a watchdog recovered
it), that engines claiming in rounds never take one job twice, on mongomock and on
the nx-27017 wire server, and count the commands a no-op job costs through the whole
engine (PyMongo command monitoring: real traffic, no timing).
"""

from __future__ import annotations

import asyncio
import uuid
from collections import Counter
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from pymongo import monitoring

from jobtui.engine.config import Settings
from jobtui.engine.context import JobContext
from jobtui.engine.models import ErrorCode, Job, JobError, JobStatus, Outcome
from jobtui.engine.registry import default_registry
from jobtui.engine.store.base import ClaimScope
from jobtui.engine.store.mongo import MongoStore
from jobtui.engine.worker import Engine
from tests.util import api_of, wait_for

T0 = datetime(2031, 5, 4, 12, 0, 0, tzinfo=UTC)
MIN = timedelta(minutes=1)
DONE = Outcome(status=JobStatus.COMPLETED, results={"ok": True})


class Commands(monitoring.CommandListener):
    """Every command a client sends: name and body."""

    def __init__(self) -> None:
        self.sent: list[tuple[str, dict[str, Any]]] = []

    def started(self, event: monitoring.CommandStartedEvent) -> None:
        self.sent.append((event.command_name, dict(event.command)))

    def succeeded(self, event: monitoring.CommandSucceededEvent) -> None:
        pass

    def failed(self, event: monitoring.CommandFailedEvent) -> None:
        pass

    def names(self) -> Counter[str]:
        return Counter(name for name, _ in self.sent)


@pytest.fixture
def store(mongo_store: MongoStore) -> MongoStore:
    return mongo_store


async def claim(store: MongoStore, n: int, worker: str, now: datetime = T0, **kw: Any) -> list[Job]:
    return await store.claim(
        worker_id=worker, slots={"a": n}, limit=n, lease_seconds=30, timeouts={}, now=now, **kw
    )


def token(job: Job) -> str:
    assert job.lease is not None
    return job.lease.token


async def steal(store: MongoStore, job: Job, thief: str, now: datetime) -> Job:
    """What happens to a worker that stalls: its lease expires, a watchdog puts the job
    back, another worker claims it."""
    back = Outcome(
        status=JobStatus.PENDING,
        error=JobError(code=ErrorCode.LEASE_EXPIRED, message="lease expired"),
    )
    assert await store.finish(job.job_id, token(job), back, now=now, only_if_overdue=True)
    (taken,) = await claim(
        store, 1, thief, now=now, scope=ClaimScope(job_ids=frozenset([job.job_id]))
    )
    return taken


async def test_group_finish_leaves_a_job_whose_lease_was_taken(store: MongoStore) -> None:
    await store.insert_jobs([Job(job_type="a") for _ in range(3)])
    first, victim, last = await claim(store, 3, "w1")
    taken = await steal(store, victim, "w2", now=T0 + MIN)
    items = [(j.job_id, token(j), DONE) for j in (first, victim, last)]
    assert await store.finish_many(items, now=T0 + 2 * MIN, worker_id="w1") == [True, False, True]
    for j in (first, last):
        done = await store.get_job(j.job_id)
        assert done and done.status is JobStatus.COMPLETED and done.results == {"ok": True}
    kept = await store.get_job(victim.job_id)
    assert kept and kept.status is JobStatus.PROCESSING and kept.results is None
    assert kept.lease and kept.lease.token == token(taken) and kept.worker_id == "w2"


async def test_the_new_owner_finishing_in_the_same_millisecond_is_not_ours(
    store: MongoStore,
) -> None:
    """Same stamp, same outcome: only who claimed the job tells the writes apart."""
    await store.insert_jobs([Job(job_type="a") for _ in range(2)])
    mine, victim = await claim(store, 2, "w1")
    taken = await steal(store, victim, "w2", now=T0 + MIN)
    when = T0 + 2 * MIN
    assert await store.finish_many([(victim.job_id, token(taken), DONE)], now=when, worker_id="w2")
    items = [(mine.job_id, token(mine), DONE), (victim.job_id, token(victim), DONE)]
    assert await store.finish_many(items, now=when, worker_id="w1") == [True, False]


async def test_a_watchdog_in_the_same_millisecond_is_not_ours(store: MongoStore) -> None:
    """The watchdog keeps ``worker_id``; its outcome (status, error code) differs."""
    await store.insert_jobs([Job(job_type="a") for _ in range(2)])
    mine, victim = await claim(store, 2, "w1")
    when = T0 + MIN
    expired = Outcome(
        status=JobStatus.FAILED,
        error=JobError(code=ErrorCode.LEASE_EXPIRED, message="lease expired"),
    )
    assert await store.finish(victim.job_id, token(victim), expired, now=when, only_if_overdue=True)
    failed = Outcome(status=JobStatus.FAILED, error=JobError(code="HANDLER_ERROR", message="x"))
    items = [(mine.job_id, token(mine), failed), (victim.job_id, token(victim), failed)]
    assert await store.finish_many(items, now=when, worker_id="w1") == [True, False]
    gone = await store.get_job(victim.job_id)
    assert gone and gone.error and gone.error.code == ErrorCode.LEASE_EXPIRED


async def test_a_retry_of_the_same_group_knows_what_the_first_try_finished(
    store: MongoStore,
) -> None:
    """A failover can hide whether a write applied; the engine retries the group with
    the same ``now``, and the jobs the first try finished are not reported lost."""
    await store.insert_jobs([Job(job_type="a") for _ in range(3)])
    got = await claim(store, 3, "w1")
    items = [(j.job_id, token(j), DONE) for j in got]
    when = T0 + MIN + timedelta(microseconds=123_456)  # BSON keeps milliseconds
    assert await store.finish_many(items[:2], now=when, worker_id="w1") == [True, True]
    assert await store.finish_many(items, now=when, worker_id="w1") == [True, True, True]
    assert await store.finish_many(items[:1], now=when + MIN, worker_id="w1") == [False]


async def test_a_group_is_one_bulk_write(nx_uri: str) -> None:
    commands = Commands()
    db = f"jobtui_test_{uuid.uuid4().hex[:12]}"
    store = MongoStore(nx_uri, database=db, event_listeners=[commands])
    await store.open()
    try:
        await store.insert_jobs([Job(job_type="a") for _ in range(5)])
        got = await claim(store, 5, "w1")
        victim = await steal(store, got[2], "w2", now=T0 + MIN)
        assert victim.job_id == got[2].job_id
        commands.sent.clear()
        items = [(j.job_id, token(j), DONE) for j in got]
        assert await store.finish_many(items, now=T0 + 2 * MIN, worker_id="w1") == [
            True,
            True,
            False,
            True,
            True,
        ]
        # One update carrying the five fenced updates, one find to learn which applied.
        assert [(n, len(c.get("updates", []))) for n, c in commands.sent] == [
            ("update", 5),
            ("find", 0),
        ]
    finally:
        await store._client.drop_database(db)
        await store.close()


async def test_claim_rounds_never_take_a_job_twice(nx_uri: str) -> None:
    """Two clients nominate the same best jobs at once; each job goes to one of them,
    with the token that client holds, and every job is taken."""
    db = f"jobtui_test_{uuid.uuid4().hex[:12]}"
    one, two = MongoStore(nx_uri, database=db), MongoStore(nx_uri, database=db)
    await one.open()
    await two.open()
    try:
        await one.insert_jobs([Job(job_type="a") for _ in range(40)])
        rounds = await asyncio.gather(
            *(
                claim(s, 5, f"{name}-{i}")
                for i in range(6)
                for name, s in (("one", one), ("two", two))
            )
        )
        got = [j for r in rounds for j in r]
        assert len(got) == len({j.job_id for j in got}) == 40
        for j in got:
            stored = await one.get_job(j.job_id)
            assert stored and stored.lease and stored.lease.token == token(j)
            assert stored.attempts == 1 and stored.worker_id == j.worker_id
    finally:
        await one._client.drop_database(db)
        await one.close()
        await two.close()


async def test_a_claim_round_respects_slots_per_type(store: MongoStore) -> None:
    await store.insert_jobs(
        [Job(job_type="a") for _ in range(4)] + [Job(job_type="b") for _ in range(4)]
    )
    got = await store.claim(
        worker_id="w1",
        slots={"a": 1, "b": 3},
        limit=10,
        lease_seconds=30,
        timeouts={"a": 60, "b": None},
        now=T0,
    )
    assert sorted(j.job_type for j in got) == ["a", "b", "b", "b"]
    for j in got:
        stored = await store.get_job(j.job_id)
        assert stored and stored.timeout_at == (
            T0 + timedelta(seconds=60) if j.job_type == "a" else None
        )


# -- through the engine ----------------------------------------------------------------


async def test_engine_reports_exactly_the_job_whose_lease_was_lost(store: MongoStore) -> None:
    """Jobs that end together are finished in one group; one of them lost its lease to
    another worker meanwhile: it keeps the other worker's attempt, the rest complete,
    and only that one says its result was discarded."""
    reg = default_registry()
    started: set[str] = set()
    release = asyncio.Event()
    victim: dict[str, str] = {}

    @reg.handler("together", concurrency=4)
    async def together(ctx: JobContext, params: Any) -> dict[str, Any]:
        started.add(ctx.job_id)
        await release.wait()
        return {"ok": True}

    engine = Engine(
        store,
        reg,
        Settings(concurrency=4, poll_interval=0.05, heartbeat_interval=30, lease_seconds=30),
        run_watchdog=False,
    )
    res = await api_of(engine).enqueue("together", [{} for _ in range(4)])
    await engine.start()
    try:
        await wait_for(lambda: _true(len(started) == 4), what="four jobs running")
        running = engine.running
        victim_id = sorted(running)[1]
        job = running[victim_id]
        assert job.lease is not None
        back = Outcome(status=JobStatus.PENDING)
        assert await store.finish(victim_id, job.lease.token, back, now=job.lease.expires_at)
        (taken,) = await store.claim(
            worker_id="thief",
            slots={"together": 1},
            limit=1,
            lease_seconds=300,
            timeouts={},
            now=job.lease.expires_at,
            scope=ClaimScope(job_ids=frozenset([victim_id])),
        )
        victim["token"] = token(taken)
        release.set()

        async def others_done() -> bool:
            counts = await store.count_jobs()
            return counts == {"completed": 3, "processing": 1}

        await wait_for(others_done, what="the three others completed")
        await wait_for(lambda: _true(not engine.running), what="engine idle")
        await engine.logs.flush()
        kept = await store.get_job(victim_id)
        assert kept and kept.status is JobStatus.PROCESSING and kept.worker_id == "thief"
        assert kept.lease and kept.lease.token == victim["token"] and kept.results is None
        for job_id in res.job_ids:
            lines = [e.message for e in await store.tail_logs(job_id)]
            lost = any("result discarded" in m for m in lines)
            assert lost == (job_id == victim_id), (job_id, lines)
    finally:
        await engine.stop(grace=0)


async def _true(value: bool) -> bool:
    return value


async def test_no_op_jobs_cost_at_most_two_commands_each(nx_uri: str) -> None:
    """Counted by command monitoring over the whole run (claims, finishes, heartbeats,
    batch counters, wake-ups): bounded generously, what the bench measures exactly."""
    commands = Commands()
    db = f"jobtui_test_{uuid.uuid4().hex[:12]}"
    store = MongoStore(nx_uri, database=db, event_listeners=[commands])
    await store.open()
    n = 200
    engine = Engine(
        store,
        default_registry(),
        Settings(concurrency=16, poll_interval=1.0, heartbeat_interval=1.0),
    )
    try:
        res = await api_of(engine).enqueue("noop", [{} for _ in range(n)])
        commands.sent.clear()
        await engine.start()
        await engine.wait_batch(res.batch_id, poll=0.5)
        await engine.stop(grace=0)
        counts = commands.names()
        assert await store.count_jobs() == {"completed": n}
        assert sum(counts.values()) <= 2.0 * n, counts
    finally:
        await engine.stop(grace=0)
        await store._client.drop_database(db)
        await store.close()


async def test_a_group_that_keeps_failing_is_finished_one_by_one() -> None:
    """One finish the store refuses (say, a result too large) fails its own job only;
    every try of the group and of its parts passes the same ``now``."""
    from jobtui.engine.finisher import Finisher

    class Refuses:
        def __init__(self) -> None:
            self.calls: list[tuple[list[str], datetime]] = []

        async def finish_many(
            self, items: list[tuple[str, str, Outcome]], *, now: datetime, worker_id: str | None
        ) -> list[bool]:
            self.calls.append(([j for j, _, _ in items], now))
            if "bad" in [j for j, _, _ in items]:
                raise ValueError("document too large")
            return [j != "lost" for j, _, _ in items]

    store = Refuses()
    finisher = Finisher(store, "w1", retry_for=0)  # type: ignore[arg-type]
    task = asyncio.create_task(finisher.run())
    try:
        results = await asyncio.gather(
            *(finisher.finish(j, "t", DONE) for j in ("a", "bad", "lost", "b")),
            return_exceptions=True,
        )
    finally:
        task.cancel()
    assert results[0] is True and results[2] is False and results[3] is True
    assert isinstance(results[1], ValueError)
    assert [ids for ids, _ in store.calls][-4:] == [["a"], ["bad"], ["lost"], ["b"]]
    assert len({now for _, now in store.calls}) == 1
