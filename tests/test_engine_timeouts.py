"""Job timeouts, enforced by the engine's one deadline timer (not a timer per job), on
SQLite and mongomock: each job ends ``failed`` / ``TIMEOUT`` at its own deadline, a job
that returns in time is left alone, and a deadline that passes before the job's task
began still ends it (its handler never runs)."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from jobtui.engine.config import Settings
from jobtui.engine.context import JobContext
from jobtui.engine.models import ErrorCode, Job, JobStatus
from jobtui.engine.store.base import Store
from jobtui.engine.worker import Engine
from tests.test_engine import (  # noqa: F401
    FAST,
    Gate,
    _no_jobs_running,
    gate,
    job,
    status_is,
    store,
    test_registry,
)
from tests.util import api_of, wait_for


def _registry(g: Gate) -> Any:
    reg = test_registry(g)

    @reg.handler("stuck", timeout=0.3, max_attempts=3)
    async def stuck(ctx: JobContext, params: Any) -> None:
        g.calls.append(ctx.job_id)
        await asyncio.Event().wait()  # never set: only the deadline ends it

    @reg.handler("patient", timeout=30)
    async def patient(ctx: JobContext, params: Any) -> dict[str, Any]:
        g.calls.append(ctx.job_id)
        await g.release.wait()
        return {"waited": True}

    @reg.handler("flaky_net", timeout=30, max_attempts=2, backoff_base=0.01)
    async def flaky_net(ctx: JobContext, params: Any) -> dict[str, Any]:
        g.calls.append(ctx.job_id)
        if g.calls.count(ctx.job_id) == 1:
            raise TimeoutError("the server did not answer in 5 s")  # its own, not ours
        return {"second": True}

    @reg.handler("quick", timeout=0.3)
    async def quick(ctx: JobContext, params: Any) -> dict[str, Any]:
        await asyncio.sleep(0)
        return {"quick": True}

    return reg


async def test_each_job_times_out_at_its_own_deadline(
    store: Store,  # noqa: F811
    gate: Gate,  # noqa: F811
) -> None:
    """A later, nearer deadline re-arms the timer; the far one is not cut short, and a
    job that returned before its deadline keeps its result."""
    # No watchdog here: it would also end an overdue job (from the store's timeout_at),
    # and this is about the engine's own timer.
    eng = Engine(store, _registry(gate), Settings(concurrency=4, **FAST), run_watchdog=False)
    await eng.start()
    try:
        api = api_of(eng)
        patient = (await api.enqueue("patient", [{}])).job_ids[0]
        await wait_for(lambda: _called(gate, patient), what="the patient job running")
        quick = (await api.enqueue("quick", [{}])).job_ids[0]
        stuck = (await api.enqueue("stuck", [{}])).job_ids[0]
        await wait_for(lambda: status_is(store, stuck, JobStatus.FAILED), what="stuck timed out")
        j = await job(store, stuck)
        assert j.error is not None and j.error.code == ErrorCode.TIMEOUT
        assert j.error.message == "ran longer than 0.3s" and j.attempts == 1  # not retried
        assert (await job(store, quick)).results == {"quick": True}
        assert await status_is(store, patient, JobStatus.PROCESSING)  # its deadline is far
        assert list(eng.running) == [patient]
        gate.release.set()
        await wait_for(lambda: status_is(store, patient, JobStatus.COMPLETED), what="patient")
        await wait_for(lambda: _logged(eng, stuck, "timed out after 0.3s"), what="its log line")
    finally:
        gate.release.set()
        await eng.stop(grace=0)


async def test_a_deadline_passed_before_the_task_began_ends_the_job(
    store: Store,  # noqa: F811
    gate: Gate,  # noqa: F811
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The deadline timer can run between a claim and the first step of the job's task
    (a tiny timeout on a busy loop): the job still ends TIMEOUT, its slot is freed."""
    eng = Engine(store, _registry(gate), Settings(concurrency=2, **FAST), run_watchdog=False)
    started = eng._start_job

    def start_then_expire(j: Job) -> None:
        loop = asyncio.get_running_loop()

        def expire() -> None:  # runs before the new task's first step
            eng._jobs[j.job_id].deadline = loop.time() - 1.0  # as if long overdue
            eng._check_deadlines()

        loop.call_soon(expire)
        started(j)

    monkeypatch.setattr(eng, "_start_job", start_then_expire)
    res = await api_of(eng).enqueue("patient", [{}])
    await eng.start()
    try:
        want = JobStatus.FAILED
        await wait_for(lambda: status_is(store, res.job_ids[0], want), what="timed out")
        assert gate.calls == []  # the handler never ran
        await wait_for(lambda: _no_jobs_running(eng), what="its slot freed")
    finally:
        gate.release.set()
        await eng.stop(grace=0)
    j = await job(store, res.job_ids[0])
    assert j.error is not None and j.error.code == ErrorCode.TIMEOUT and j.lease is None


async def test_a_handlers_own_timeout_error_is_an_error_it_retries(
    store: Store,  # noqa: F811
    gate: Gate,  # noqa: F811
) -> None:
    """A TimeoutError raised inside the handler (a network call's) is no job timeout:
    it was once reported TIMEOUT "ran longer than 30s", not retried, after 0 s."""
    eng = Engine(store, _registry(gate), Settings(concurrency=2, **FAST), run_watchdog=False)
    await eng.start()
    try:
        (job_id,) = (await api_of(eng).enqueue("flaky_net", [{}])).job_ids
        await wait_for(lambda: _ended(store, job_id), what="the job ended")
    finally:
        await eng.stop(grace=0)
    j = await job(store, job_id)
    assert j.results == {"second": True} and j.attempts == 2 and gate.calls == [job_id] * 2
    log = [e.message for e in await api_of(eng).tail_logs(job_id)]
    assert any("TimeoutError: the server did not answer in 5 s" in m for m in log), log
    assert not any("timed out" in m for m in log), log


async def _ended(st: Store, job_id: str) -> bool:
    j = await st.get_job(job_id)
    return j is not None and j.status in (JobStatus.COMPLETED, JobStatus.FAILED)


async def _called(g: Gate, job_id: str) -> bool:
    return job_id in g.calls


async def _logged(eng: Engine, job_id: str, line: str) -> bool:
    return line in [e.message for e in await api_of(eng).tail_logs(job_id)]
