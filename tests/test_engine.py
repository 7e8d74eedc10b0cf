"""The engine's invariants (DESIGN.md 1-10), in one process, on SQLite and mongomock.

The cross-process proofs (SIGKILL, several workers, wire server) are in
``test_multiprocess.py``; the store's own atomicity and fencing in the contract suite.
"""

from __future__ import annotations

import asyncio
import subprocess
import sys
import time
from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from pydantic import BaseModel

from jobtui.engine.api import OperatorAPI
from jobtui.engine.config import Settings
from jobtui.engine.context import JobContext
from jobtui.engine.errors import JobFailed
from jobtui.engine.models import ErrorCode, Job, JobStatus, utcnow
from jobtui.engine.registry import Registry, default_registry
from jobtui.engine.store.base import Store
from jobtui.engine.worker import Engine
from tests.util import api_of, wait_for

FAST = {
    "poll_interval": 0.05,
    "heartbeat_interval": 0.1,
    "watchdog_interval": 0.1,
    "lease_seconds": 30,
}


async def _sqlite(tmp_path: Path) -> Store:
    from jobtui.engine.store.sqlite import SQLiteStore

    return SQLiteStore(tmp_path / "jobs.db")


async def _mongomock(tmp_path: Path) -> Store:
    from jobtui.engine.store.mongo import MongoStore

    return MongoStore.in_memory()


@pytest.fixture(params=["sqlite", "mongomock"])
async def store(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Store]:
    if request.param == "mongomock":
        pytest.importorskip("jobtui.engine.store.mongo")
    s = await {"sqlite": _sqlite, "mongomock": _mongomock}[request.param](tmp_path)
    await s.open()
    yield s
    await s.close()


class Gate:
    """Lets a test hold handlers inside their work and see how many are in there."""

    def __init__(self) -> None:
        self.inside = 0
        self.max_inside = 0
        self.release = asyncio.Event()
        self.calls: list[str] = []


def test_registry(gate: Gate) -> Registry:
    reg = default_registry()

    class HoldParams(BaseModel):
        n: int = 0

    @reg.handler("hold", params=HoldParams, max_attempts=3)
    async def hold(ctx: JobContext, params: HoldParams) -> dict[str, Any]:
        gate.calls.append(ctx.job_id)
        gate.inside += 1
        gate.max_inside = max(gate.max_inside, gate.inside)
        try:
            await gate.release.wait()
        finally:
            gate.inside -= 1
        return {"n": params.n}

    @reg.handler("limited", concurrency=1)
    async def limited(ctx: JobContext, params: Any) -> None:
        return await hold(ctx, HoldParams())

    @reg.handler("flaky", max_attempts=3, backoff_base=0.01, backoff_max=0.02)
    async def flaky(ctx: JobContext, params: Any) -> None:
        gate.calls.append(ctx.job_id)
        raise RuntimeError(f"boom {ctx.attempt}")

    @reg.handler("bad_input")
    async def bad_input(ctx: JobContext, params: Any) -> None:
        gate.calls.append(ctx.job_id)
        raise JobFailed("PDF_CORRUPT", "not readable")

    @reg.handler("slow", timeout=0.3)
    async def slow(ctx: JobContext, params: Any) -> None:
        await asyncio.sleep(30)

    @reg.handler("logs")
    async def logs(ctx: JobContext, params: Any) -> dict[str, Any]:
        for i in range(5):
            ctx.log(f"line {i}")
            await ctx.progress(20.0 * (i + 1), step=f"step {i}")
        return {"writes": ctx.progress_writes}

    return reg


test_registry.__test__ = False  # type: ignore[attr-defined]


@pytest.fixture
def gate() -> Gate:
    return Gate()


@pytest.fixture
async def engine(store: Store, gate: Gate, tmp_path: Path) -> AsyncIterator[Engine]:
    eng = Engine(store, test_registry(gate), Settings(concurrency=4, output_dir=tmp_path, **FAST))
    await eng.start()
    yield eng
    gate.release.set()
    await eng.stop(grace=5)


async def job(store: Store, job_id: str) -> Job:
    j = await store.get_job(job_id)
    assert j is not None
    return j


async def status_is(store: Store, job_id: str, *statuses: JobStatus) -> bool:
    return (await job(store, job_id)).status in statuses


async def test_noop_batch_completes_with_exact_counts(engine: Engine, store: Store) -> None:
    res = await api_of(engine).enqueue("noop", [{} for _ in range(40)])
    await asyncio.wait_for(engine.wait_batch(res.batch_id), 20)
    summary = await store.get_batch(res.batch_id)
    assert summary is not None and summary.finished
    assert summary.counts == {"completed": 40}
    assert all(j.attempts == 1 for j in await api_of(engine).all_jobs())


async def test_claims_only_free_slots_globally_and_per_type(
    engine: Engine, store: Store, gate: Gate
) -> None:
    """Invariant 1: concurrency 4 -> never more than 4 in processing; 'limited' -> 1."""
    await api_of(engine).enqueue("hold", [{} for _ in range(10)])
    await wait_for(lambda: _inside(gate, 4), what="4 running")
    counts = await store.count_jobs()
    assert counts.get("processing") == 4 and counts.get("pending") == 6
    gate.release.set()
    await wait_for(lambda: _count_is(store, "completed", 10), what="all done")
    assert gate.max_inside == 4

    gate.release.clear()
    gate.max_inside = 0
    await api_of(engine).enqueue("limited", [{} for _ in range(3)])
    await wait_for(lambda: _inside(gate, 1))
    counts = await store.count_jobs()
    assert counts.get("processing") == 1
    gate.release.set()
    await wait_for(lambda: _count_is(store, "completed", 13))
    assert gate.max_inside == 1


async def _inside(gate: Gate, n: int) -> bool:
    return gate.inside == n


async def _count_is(store: Store, status: str, n: int) -> bool:
    return (await store.count_jobs()).get(status, 0) == n


async def test_unknown_job_types_stay_pending_and_are_reported(
    engine: Engine, store: Store
) -> None:
    """Invariants 8 and 9: nothing unregistered runs; the console can say which types."""
    res = await api_of(engine).enqueue("os.system", [{"cmd": "rm -rf /"}])
    done = await api_of(engine).enqueue("noop", [{}])
    await asyncio.wait_for(engine.wait_batch(done.batch_id), 10)
    j = await job(store, res.job_ids[0])
    assert j.status is JobStatus.PENDING and j.attempts == 0
    assert await api_of(engine).unserved_types() == {"os.system": 1}


async def test_invalid_parameters_fail_once(engine: Engine, store: Store) -> None:
    res = await api_of(engine).enqueue("sleep", [{"seconds": "a while"}])
    await asyncio.wait_for(engine.wait_batch(res.batch_id), 10)
    j = await job(store, res.job_ids[0])
    assert j.status is JobStatus.FAILED and j.attempts == 1
    assert j.error is not None and j.error.code == ErrorCode.INVALID_PARAMETERS
    assert j.error.details and j.error.details["errors"][0]["loc"] == "seconds"


async def test_handler_exception_retries_with_backoff_then_fails(
    engine: Engine, store: Store, gate: Gate
) -> None:
    res = await api_of(engine).enqueue("flaky", [{}])
    await asyncio.wait_for(engine.wait_batch(res.batch_id), 10)
    j = await job(store, res.job_ids[0])
    assert j.status is JobStatus.FAILED and j.attempts == 3
    assert j.error is not None and j.error.code == ErrorCode.HANDLER_ERROR
    assert "boom 3" in j.error.message
    assert gate.calls == res.job_ids * 3
    lines = [e.message for e in await api_of(engine).tail_logs(j.job_id)]
    await wait_for(lambda: _has_log(engine, j.job_id, "retrying in"), what="retry log lines")
    del lines


async def _has_log(engine: Engine, job_id: str, text: str) -> bool:
    return any(text in e.message for e in await api_of(engine).tail_logs(job_id))


async def test_retry_sets_run_after_in_the_future(store: Store) -> None:
    """Backoff: the retry outcome keeps the job away until run_after."""
    reg = Registry()

    @reg.handler("once_flaky", max_attempts=2, backoff_base=60, backoff_max=60)
    async def once_flaky(ctx: JobContext, params: Any) -> None:
        raise RuntimeError("transient")

    eng = Engine(store, reg, Settings(concurrency=1, **FAST))
    await eng.start()
    try:
        res = await api_of(eng).enqueue("once_flaky", [{}])
        j = await wait_for(lambda: _pending_with_run_after(store, res.job_ids[0]))
        assert j.attempts == 1
        assert j.run_after is not None and j.run_after > utcnow() + timedelta(seconds=25)
        assert j.error is not None and "transient" in j.error.message
    finally:
        await eng.stop(grace=0)


async def _pending_with_run_after(store: Store, job_id: str) -> Job | None:
    j = await store.get_job(job_id)
    return j if j and j.status is JobStatus.PENDING and j.run_after else None


async def test_bad_input_is_not_retried(engine: Engine, store: Store, gate: Gate) -> None:
    res = await api_of(engine).enqueue("bad_input", [{}])
    await asyncio.wait_for(engine.wait_batch(res.batch_id), 10)
    j = await job(store, res.job_ids[0])
    assert (j.status, j.attempts, j.error.code if j.error else None) == (
        JobStatus.FAILED,
        1,
        "PDF_CORRUPT",
    )
    assert len(gate.calls) == 1


async def test_timeout_is_failed_with_code_timeout(engine: Engine, store: Store) -> None:
    res = await api_of(engine).enqueue("slow", [{}])
    await asyncio.wait_for(engine.wait_batch(res.batch_id), 10)
    j = await job(store, res.job_ids[0])
    assert j.status is JobStatus.FAILED and j.error is not None
    assert j.error.code == ErrorCode.TIMEOUT and j.attempts == 1


async def test_cancel_running_and_pending_jobs(engine: Engine, store: Store, gate: Gate) -> None:
    """Invariants 5 and 6: cancel reaches running work; cancelled is never retried."""
    res = await api_of(engine).enqueue("hold", [{} for _ in range(6)])
    await wait_for(lambda: _inside(gate, 4))
    t0 = time.monotonic()
    n = await api_of(engine).cancel_batch(res.batch_id)
    assert n == 6
    await asyncio.wait_for(engine.wait_batch(res.batch_id), 5)
    assert time.monotonic() - t0 < 2.0
    assert gate.inside == 0  # the handlers were stopped, not left running
    summary = await store.get_batch(res.batch_id)
    assert summary is not None and summary.counts == {"cancelled": 6}
    for j in await api_of(engine).all_jobs():
        assert j.error is not None and j.error.code == ErrorCode.CANCELLED
    # The watchdog and the claim loop leave cancelled jobs alone.
    await engine._watchdog.sweep()  # type: ignore[union-attr]
    assert (await store.count_jobs()) == {"cancelled": 6}


async def test_cancel_from_another_store_instance_within_2s(
    engine: Engine, store: Store, gate: Gate, tmp_path: Path
) -> None:
    """A cancel written by someone else reaches the worker through its heartbeat."""
    res = await api_of(engine).enqueue("hold", [{}])
    await wait_for(lambda: _inside(gate, 1))
    other = OperatorAPI(store)  # no engine attached: nobody pokes the worker
    t0 = time.monotonic()
    assert await other.cancel_job(res.job_ids[0]) == 1
    await wait_for(lambda: status_is(store, res.job_ids[0], JobStatus.CANCELLED), timeout=5)
    assert time.monotonic() - t0 < 2.0


async def test_old_worker_cannot_complete_after_takeover(
    store: Store, gate: Gate, tmp_path: Path
) -> None:
    """Invariant 2: a lease taken over fences out the old worker's writes."""
    slow_hb = Settings(
        concurrency=1,
        poll_interval=0.05,
        heartbeat_interval=3600,
        watchdog_interval=3600,
        lease_seconds=1.5,
    )
    old = Engine(store, test_registry(gate), slow_hb, run_watchdog=False)
    await old.start()
    res = await api_of(old).enqueue("hold", [{"n": 1}])
    await wait_for(lambda: _inside(gate, 1))
    old.pause()
    # The old worker's lease expires (its heartbeat is stalled); the watchdog of a
    # second engine requeues it and a new worker takes it.
    gate2 = Gate()
    gate2.release.set()
    new = Engine(
        store, test_registry(gate2), Settings(concurrency=1, **{**FAST, "lease_seconds": 30})
    )
    await new.start()
    try:
        await asyncio.wait_for(new.wait_batch(res.batch_id), 15)
        j = await job(store, res.job_ids[0])
        assert j.status is JobStatus.COMPLETED and j.attempts == 2
        assert j.worker_id == new.worker_id
        finished_at = j.completed_at
        gate.release.set()  # the old handler returns now; its finish must be refused
        await wait_for(lambda: _inside(gate, 0))
        await wait_for(lambda: _async_true(not old.running))
        j2 = await job(store, res.job_ids[0])
        assert j2.status is JobStatus.COMPLETED and j2.completed_at == finished_at
        assert j2.worker_id == new.worker_id and j2.attempts == 2
    finally:
        await new.stop(grace=0)
        await old.stop(grace=0)


async def _async_true(value: bool) -> bool:
    return value


async def test_heartbeat_keeps_a_long_job_its_lease(store: Store, gate: Gate) -> None:
    """Invariant 3: a job longer than its lease keeps it while the heartbeat runs."""
    eng = Engine(
        store,
        test_registry(gate),
        Settings(
            concurrency=1,
            poll_interval=0.05,
            heartbeat_interval=0.1,
            watchdog_interval=0.05,
            lease_seconds=0.6,
        ),
    )
    await eng.start()
    try:
        res = await api_of(eng).enqueue("hold", [{}])
        await wait_for(lambda: _inside(gate, 1))
        first = await job(store, res.job_ids[0])
        assert first.lease is not None
        # Three lease lengths pass with the watchdog sweeping every 50 ms.
        await wait_for(lambda: _lease_renewed_past(store, res.job_ids[0], first, 1.8), timeout=10)
        gate.release.set()
        await asyncio.wait_for(eng.wait_batch(res.batch_id), 10)
        j = await job(store, res.job_ids[0])
        assert j.status is JobStatus.COMPLETED and j.attempts == 1
        assert len(gate.calls) == 1
    finally:
        await eng.stop(grace=0)


async def _lease_renewed_past(store: Store, job_id: str, first: Job, seconds: float) -> bool:
    j = await job(store, job_id)
    assert j.status is JobStatus.PROCESSING and j.attempts == 1, j
    assert j.lease is not None and first.lease is not None
    assert j.lease.token == first.lease.token
    return (j.lease.expires_at - first.lease.expires_at).total_seconds() >= seconds


async def test_expired_lease_goes_back_to_pending_then_fails_when_attempts_run_out(
    store: Store,
) -> None:
    """Invariant 4: the watchdog requeues with backoff while attempts remain."""
    from jobtui.engine.watchdog import Watchdog

    reg = default_registry()
    api = OperatorAPI(store, reg)
    res = await api.enqueue("noop", [{}, {}])
    now = utcnow()
    claimed = await store.claim(
        worker_id="dead", slots={"noop": 2}, limit=2, lease_seconds=0.01, timeouts={}, now=now
    )
    assert len(claimed) == 2
    await store.retry_jobs(job_id=claimed[1].job_id, statuses=(), now=now)  # no-op
    wd = Watchdog(store, reg)
    await wait_for(lambda: _swept(wd, 2))
    jobs = {j.job_id: j for j in await api.all_jobs()}
    # noop has max_attempts=1: no attempts remain -> failed LEASE_EXPIRED
    for j in jobs.values():
        assert j.status is JobStatus.FAILED and j.error is not None
        assert j.error.code == ErrorCode.LEASE_EXPIRED
    # a type with attempts left goes back to pending, with backoff
    res2 = await api.enqueue("sleep", [{"seconds": 0}])
    await store.claim(
        worker_id="dead", slots={"sleep": 1}, limit=1, lease_seconds=0.01, timeouts={}, now=utcnow()
    )
    await wait_for(lambda: _swept(wd, 1))
    j = await job(store, res2.job_ids[0])
    assert j.status is JobStatus.PENDING and j.attempts == 1 and j.run_after is not None
    assert j.lease is None and j.error is not None and j.error.code == ErrorCode.LEASE_EXPIRED
    del res


async def _swept(wd: Any, n: int) -> bool:
    return await wd.sweep() == n


async def test_batch_counts_exact_through_retries_and_failures(
    engine: Engine, store: Store
) -> None:
    """Invariant 7: counts come from job states; a batch with failures is finished."""
    ok = await api_of(engine).enqueue("noop", [{} for _ in range(5)], batch_name="mixed")
    # Put failing jobs into the same batch.
    bad = [Job(job_type="flaky", batch_id=ok.batch_id, max_attempts=3) for _ in range(3)]
    await store.insert_jobs(bad)
    engine.wake()
    await asyncio.wait_for(engine.wait_batch(ok.batch_id), 15)
    summary = await store.get_batch(ok.batch_id)
    assert summary is not None and summary.finished and summary.status == "finished with errors"
    assert summary.counts == {"completed": 5, "failed": 3} and summary.total == 8
    assert await api_of(engine).retry_failed(ok.batch_id) == 3
    summary = await store.get_batch(ok.batch_id)
    assert summary is not None and not summary.finished
    assert summary.counts.get("completed") == 5 and summary.total == 8
    await asyncio.wait_for(engine.wait_batch(ok.batch_id), 15)
    summary = await store.get_batch(ok.batch_id)
    assert summary is not None and summary.counts == {"completed": 5, "failed": 3}


async def test_graceful_shutdown_hands_leases_back_without_burning_attempts(
    store: Store, gate: Gate
) -> None:
    """Invariant 10."""
    eng = Engine(store, test_registry(gate), Settings(concurrency=3, **FAST))
    await eng.start()
    res = await api_of(eng).enqueue("hold", [{} for _ in range(5)])
    await wait_for(lambda: _inside(gate, 3))
    await eng.stop(grace=0.2)
    assert gate.inside == 0
    jobs = await api_of(eng).all_jobs()
    assert {j.status for j in jobs} == {JobStatus.PENDING}
    assert all(j.attempts == 0 and j.lease is None for j in jobs)
    assert await store.list_workers() == []
    # Nothing was lost: a new engine finishes every job, each on its first counted attempt.
    gate.release.set()
    eng2 = Engine(store, test_registry(gate), Settings(concurrency=3, **FAST))
    await eng2.start()
    try:
        await asyncio.wait_for(eng2.wait_batch(res.batch_id), 10)
        assert {(j.status, j.attempts) for j in await api_of(eng2).all_jobs()} == {
            (JobStatus.COMPLETED, 1)
        }
    finally:
        await eng2.stop()


@pytest.mark.parametrize("interrupt", ["hand back", "cancel"])
async def test_a_job_interrupted_before_its_task_began_is_not_left_processing(
    store: Store, gate: Gate, monkeypatch: pytest.MonkeyPatch, interrupt: str
) -> None:
    """A closed terminal's SIGHUP can be handled between a claim and the first step of
    the job's task; a task cancelled then never runs its body. The job was left
    ``processing`` with nobody running it (the console's SIGHUP test, 2 runs in 12
    under load), and an operator's cancel leaked the slot the same way."""
    eng = Engine(store, test_registry(gate), Settings(concurrency=2, **FAST))
    started = eng._start_job
    interrupted = asyncio.Event()

    def start_then_interrupt(j: Job) -> None:
        # As when the signal's callback is already queued as the claim comes back: it
        # runs after this claim-loop step but before the new task's first step.
        act = eng.hand_back_now if interrupt == "hand back" else eng.cancel_running
        asyncio.get_running_loop().call_soon(lambda: (act(), interrupted.set()))
        started(j)

    monkeypatch.setattr(eng, "_start_job", start_then_interrupt)
    res = await OperatorAPI(store, eng.registry).enqueue("hold", [{}])
    await eng.start()
    try:
        want = JobStatus.PENDING if interrupt == "hand back" else JobStatus.CANCELLED
        await asyncio.wait_for(interrupted.wait(), 20)
        await wait_for(lambda: status_is(store, res.job_ids[0], want), what=want.value)
        assert gate.calls == []  # the handler never ran
        await wait_for(lambda: _no_jobs_running(eng), what="its slot freed")
    finally:
        gate.release.set()
        await eng.stop(grace=0)
    j = await job(store, res.job_ids[0])
    assert j.status == want and j.lease is None
    assert j.attempts == (0 if interrupt == "hand back" else 1)


async def _no_jobs_running(eng: Engine) -> bool:
    return not eng.running


async def test_shutdown_lets_running_jobs_finish_within_grace(store: Store, gate: Gate) -> None:
    eng = Engine(store, test_registry(gate), Settings(concurrency=2, **FAST))
    await eng.start()
    res = await api_of(eng).enqueue("hold", [{}, {}])
    await wait_for(lambda: _inside(gate, 2))
    stopping = asyncio.create_task(eng.stop(grace=10))
    await asyncio.sleep(0)  # let stop() begin: it must stop claiming, not cancel
    gate.release.set()
    await asyncio.wait_for(stopping, 10)
    assert (await store.count_jobs()) == {"completed": 2}
    del res


async def test_progress_is_throttled_and_logs_are_written(engine: Engine, store: Store) -> None:
    res = await api_of(engine).enqueue("logs", [{}])
    await asyncio.wait_for(engine.wait_batch(res.batch_id), 10)
    j = await job(store, res.job_ids[0])
    assert j.status is JobStatus.COMPLETED
    # five progress calls within a second: one immediate write, the rest throttled
    assert j.results == {"writes": 1}
    await wait_for(lambda: _log_count(engine, j.job_id, 5))
    lines = [e.message for e in await api_of(engine).tail_logs(j.job_id)]
    assert lines == [f"line {i}" for i in range(5)]


async def _log_count(engine: Engine, job_id: str, n: int) -> bool:
    return len(await api_of(engine).tail_logs(job_id)) == n


async def test_pause_stops_claiming(engine: Engine, store: Store) -> None:
    engine.pause()
    res = await api_of(engine).enqueue("noop", [{} for _ in range(3)])
    await engine._register_worker()
    assert (await store.count_jobs()) == {"pending": 3}
    engine.resume()
    await asyncio.wait_for(engine.wait_batch(res.batch_id), 10)
    assert (await store.count_jobs()) == {"completed": 3}


async def test_a_claim_under_way_when_paused_starts_nothing(tmp_path: Path) -> None:
    """``pause`` means no new job starts: jobs a claim took as the engine was paused
    (the console's quit question pauses it and counts what runs) go back to
    ``pending``, the attempt refunded, instead of starting behind the pause."""
    from jobtui.engine.store.sqlite import SQLiteStore

    committed, release = asyncio.Event(), asyncio.Event()

    class HeldClaims(SQLiteStore):
        async def claim(self, **kw: Any) -> list[Job]:  # type: ignore[override]
            jobs = await super().claim(**kw)
            if jobs and not release.is_set():
                committed.set()
                await release.wait()
            return jobs

    store = HeldClaims(tmp_path / "jobs.db")
    await store.open()
    engine = Engine(store, default_registry(), Settings(concurrency=4, poll_interval=0.05))
    try:
        api = OperatorAPI(store, engine.registry)
        res = await api.enqueue("sleep", [{"seconds": 60}, {"seconds": 60}])
        await engine.start()
        await asyncio.wait_for(committed.wait(), 30)
        assert await api.count_jobs() == {"processing": 2}  # taken, not yet started
        engine.pause()
        release.set()
        await wait_for(
            lambda: _counts_are(api, {"pending": 2}), 10, what="the claimed jobs handed back"
        )
        assert not engine.running
        for job_id in res.job_ids:
            detail = await api.job_detail(job_id)
            assert detail is not None and detail.job.attempts == 0
        await engine.logs.flush()
        detail = await api.job_detail(res.job_ids[0])
        assert detail is not None
        lines = [e.message for e in detail.logs]
        assert any("claimed as it was paused" in line for line in lines), lines
        engine.resume()
        await wait_for(lambda: _running(engine, 2), 10, what="claimed again on resume")
    finally:
        await engine.stop(grace=0)
        await store.close()


async def _counts_are(api: OperatorAPI, want: dict[str, int]) -> bool:
    return await api.count_jobs() == want


async def _running(engine: Engine, n: int) -> bool:
    return len(engine.running) == n


async def test_workers_collection_lists_this_engine(engine: Engine) -> None:
    workers = await api_of(engine).workers()
    assert [w.info.worker_id for w in workers] == [engine.worker_id]
    assert workers[0].alive and "noop" in workers[0].info.job_types


async def test_legacy_seed_documents_list_retry_cancel(store: Store) -> None:
    api = OperatorAPI(store, default_registry())
    legacy = {
        "job_id": "legacy-1",
        "status": "failed",
        "parameters": {
            "event": "FOSDEM",
            "session": "Keynote",
            "url": "https://x/y",
            "source_language": "en",
            "target_language": "de",
        },
        "error": {"code": "PROCESSING_ERROR", "message": "timeout", "details": {"x": 1}},
        "progress": {"step": "download", "percent": 40, "message": "…"},
        "logs": [
            {"timestamp": "2025-08-15T08:00:00", "level": "info", "message": "Job erstellt"},
            {"timestamp": "2025-08-15T08:00:05", "level": "error", "message": "Fehler"},
        ],
        "created_at": "2025-08-15T08:00:00",
        "batch_id": "legacy-batch",
        "webhook": {"url": "https://hook"},
        "user_id": "u1",
    }
    await store._insert_raw_job(legacy)  # type: ignore[attr-defined]
    await store._insert_raw_job(
        {
            **legacy,
            "job_id": "legacy-2",
            "status": "pending",  # type: ignore[attr-defined]
            "logs": [],
        }
    )
    jobs = {j.job_id: j for j in await api.all_jobs()}
    assert set(jobs) == {"legacy-1", "legacy-2"}
    assert jobs["legacy-1"].job_type == "session"
    detail = await api.job_detail("legacy-1")
    assert detail is not None
    assert [e.message for e in detail.logs] == ["Job erstellt", "Fehler"]
    assert await api.retry_job("legacy-1") == 1
    assert await api.cancel_job("legacy-2") == 1
    after = {j.job_id: j.status for j in await api.all_jobs()}
    assert after == {"legacy-1": JobStatus.PENDING, "legacy-2": JobStatus.CANCELLED}
    assert (await store.pending_job_types()) == {"session": 1}


def test_engine_never_imports_textual() -> None:
    """Every module under engine/ imports without textual or rich (headless workers)."""
    code = (
        "import sys, pkgutil, importlib, jobtui.engine as engine\n"
        "for m in pkgutil.walk_packages(engine.__path__, 'jobtui.engine.'):\n"
        "    importlib.import_module(m.name)\n"
        "bad=[m for m in sys.modules if m.split('.')[0] in ('textual','rich')]\n"
        "print(bad); sys.exit(1 if bad else 0)"
    )
    out = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        cwd=Path(__file__).resolve().parents[1],
    )
    assert out.returncode == 0, out.stdout + out.stderr


async def test_stop_while_a_claim_is_under_way_hands_its_jobs_back(tmp_path: Path) -> None:
    """The SQLite store commits a claim in its own thread before the engine's loop sees
    the result: a stop in that window (a SIGHUP to the console just after the claim)
    cancelled the claim loop and left the claimed jobs ``processing`` with nobody
    running them. They must go back to ``pending``, the attempt refunded."""
    from jobtui.engine.store.sqlite import SQLiteStore

    committed = asyncio.Event()

    class SlowClaimStore(SQLiteStore):
        async def claim(self, **kw: Any) -> list[Job]:  # type: ignore[override]
            jobs = await super().claim(**kw)
            if jobs:
                committed.set()
                await asyncio.sleep(0.5)  # the result is on its way back to the loop
            return jobs

    store = SlowClaimStore(tmp_path / "jobs.db")
    await store.open()
    try:
        api = OperatorAPI(store, default_registry())
        res = await api.enqueue("sleep", [{"seconds": 60}, {"seconds": 60}])
        engine = Engine(store, default_registry(), Settings(concurrency=4, poll_interval=0.05))
        await engine.start()
        await asyncio.wait_for(committed.wait(), 30)
        assert sum((await api.count_jobs()).values()) == 2
        await engine.stop(grace=0)
        for job_id in res.job_ids:
            detail = await api.job_detail(job_id)
            assert detail is not None
            assert detail.job.status == JobStatus.PENDING, detail.job.status
            assert detail.job.attempts == 0
    finally:
        await store.close()
