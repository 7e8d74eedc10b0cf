"""The store contract: DESIGN.md's invariants, proved on every backend.

Written only against the ``Store`` interface (plus the test hook
``_insert_raw_job``), so each backend in ``conftest.STORE_FACTORIES`` runs it
unchanged. Time is passed in explicitly (``now=``), in steps of minutes or hours, so
no test sleeps and second-granular servers (nx-27017 compares datetimes to the
second) agree with millisecond-granular ones.
"""

from __future__ import annotations

import asyncio
import socket
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from jobtui.engine.models import (
    Batch,
    ErrorCode,
    Job,
    JobError,
    JobFilter,
    JobStatus,
    LogEntry,
    Outcome,
    Progress,
    WorkerInfo,
)
from jobtui.engine.store.base import LeaseState, Store, StoreError, Wake
from jobtui.engine.store.mongo import MongoStore
from jobtui.engine.uri import redact_uri
from tests.conftest import STORE_FACTORIES

T0 = datetime(2031, 5, 4, 12, 0, 0, tzinfo=UTC)
MIN = timedelta(minutes=1)
HOUR = timedelta(hours=1)


def job(job_type: str = "a", **kw: Any) -> Job:
    return Job(job_type=job_type, **kw)


def close_to(a: datetime | None, b: datetime | None, tol: float = 1.0) -> bool:
    """Backends keep milliseconds (BSON) or better; compare with a tolerance."""
    assert a is not None and b is not None
    assert a.tzinfo is not None and b.tzinfo is not None
    return abs((a - b).total_seconds()) < tol


async def claim(
    store: Store,
    slots: dict[str, int],
    *,
    limit: int = 100,
    now: datetime = T0,
    worker: str = "w1",
    lease: float = 30.0,
    timeouts: dict[str, float | None] | None = None,
) -> list[Job]:
    return await store.claim(
        worker_id=worker,
        slots=slots,
        limit=limit,
        lease_seconds=lease,
        timeouts=timeouts or {},
        now=now,
    )


def token(j: Job) -> str:
    """The lease token of a claimed job."""
    assert j.lease is not None, f"{j.job_id} holds no lease"
    return j.lease.token


async def status_of(store: Store, job_id: str) -> JobStatus:
    j = await store.get_job(job_id)
    assert j is not None, job_id
    return j.status


def done(status: JobStatus = JobStatus.COMPLETED, **kw: Any) -> Outcome:
    return Outcome(status=status, **kw)


# -- claim ---------------------------------------------------------------------


async def test_claim_is_atomic_under_concurrency(store: Store) -> None:
    res = await store.insert_jobs([job() for _ in range(10)])
    assert len(res.inserted) == 10
    batches = await asyncio.gather(
        *(claim(store, {"a": 1}, limit=1, worker=f"w{i}") for i in range(20))
    )
    ids = [j.job_id for b in batches for j in b]
    assert len(ids) == len(set(ids)) == 10
    assert set(ids) == set(res.inserted)
    assert await store.count_jobs() == {"processing": 10}
    for b in batches:
        for j in b:
            stored = await store.get_job(j.job_id)
            assert stored and stored.attempts == 1 and stored.lease
            assert token(stored) == token(j)


async def test_claim_respects_slots_limit_and_unknown_types(store: Store) -> None:
    await store.insert_jobs([job("a") for _ in range(5)] + [job("b") for _ in range(5)])
    await store.insert_jobs([job("zzz"), job("c")])
    got = await claim(store, {"a": 2, "b": 1, "c": 0})
    assert sorted(j.job_type for j in got) == ["a", "a", "b"]
    got = await claim(store, {"a": 5, "b": 5}, limit=4)
    assert len(got) == 4 and {j.job_type for j in got} <= {"a", "b"}
    assert await claim(store, {"nothing": 3}) == []
    rest = await claim(store, {"a": 10, "b": 10})
    assert len(rest) == 3
    assert await claim(store, {"a": 10, "b": 10}) == []
    pending = await store.list_jobs(JobFilter(status=[JobStatus.PENDING]))
    assert sorted(j.job_type for j in pending) == ["c", "zzz"]  # unknown types stay pending
    assert await store.pending_job_types() == {"c": 1, "zzz": 1}


async def test_claim_respects_run_after_and_cancel_requested(store: Store) -> None:
    later = job(run_after=T0 + HOUR)
    doomed = job(cancel_requested=True)
    await store.insert_jobs([later, doomed])
    assert await claim(store, {"a": 5}, now=T0) == []
    got = await claim(store, {"a": 5}, now=T0 + 2 * HOUR)
    assert [j.job_id for j in got] == [later.job_id]


async def test_claim_order_priority_then_age(store: Store) -> None:
    jobs = [
        job(priority=0, created_at=T0),
        job(priority=5, created_at=T0 + 2 * MIN),
        job(priority=1, created_at=T0 + 3 * MIN),
        job(priority=5, created_at=T0 + MIN),
    ]
    await store.insert_jobs(jobs)
    order = []
    for _ in range(4):
        got = await claim(store, {"a": 1}, limit=1)
        order.append(got[0].job_id)
    assert order == [jobs[3].job_id, jobs[1].job_id, jobs[2].job_id, jobs[0].job_id]


async def test_claim_writes_lease_attempts_and_timeouts(store: Store) -> None:
    a, b = job("a"), job("b")
    await store.insert_jobs([a, b])
    got = {
        j.job_type: j
        for j in await claim(
            store, {"a": 1, "b": 1}, worker="wx", lease=30, timeouts={"a": 600, "b": None}
        )
    }
    ja, jb = got["a"], got["b"]
    assert ja.status == JobStatus.PROCESSING and ja.attempts == 1 and ja.worker_id == "wx"
    assert (
        ja.lease
        and ja.lease.owner == "wx"
        and close_to(ja.lease.expires_at, T0 + timedelta(seconds=30))
    )
    assert close_to(ja.started_at, T0)
    assert token(ja) != token(jb)
    stored_a, stored_b = await store.get_job(a.job_id), await store.get_job(b.job_id)
    assert stored_a and close_to(stored_a.timeout_at, T0 + timedelta(seconds=600))
    assert stored_b and stored_b.timeout_at is None
    # a retry comes back with attempts + 1
    assert await store.finish(a.job_id, token(ja), done(JobStatus.PENDING), now=T0)
    again = await claim(store, {"a": 1}, now=T0 + MIN)
    assert again[0].attempts == 2 and token(again[0]) != token(ja)


# -- heartbeat, fencing, watchdog -------------------------------------------------


async def test_heartbeat_renews_and_reports(store: Store) -> None:
    await store.insert_jobs([job() for _ in range(4)])
    got = await claim(store, {"a": 4})
    leases = {j.job_id: token(j) for j in got}
    held, cancelled, finished, stolen = got
    assert await store.cancel_jobs(job_id=cancelled.job_id, now=T0) == 1
    assert await store.finish(finished.job_id, leases[finished.job_id], done(), now=T0)
    query = dict(leases)
    query[stolen.job_id] = "not-my-token"
    query["no-such-job"] = "x"
    states = await store.heartbeat(query, T0 + HOUR)
    assert states == {
        held.job_id: LeaseState.HELD,
        cancelled.job_id: LeaseState.CANCEL,
        finished.job_id: LeaseState.LOST,
        stolen.job_id: LeaseState.LOST,
        "no-such-job": LeaseState.LOST,
    }
    renewed = await store.get_job(held.job_id)
    assert renewed and renewed.lease and close_to(renewed.lease.expires_at, T0 + HOUR)
    stale = await store.get_job(stolen.job_id)
    assert stale and stale.lease and close_to(stale.lease.expires_at, T0 + timedelta(seconds=30))
    assert await store.heartbeat({}, T0) == {}


async def test_beat_renews_leases_and_the_worker_record_together(store: Store) -> None:
    from jobtui.engine.models import WorkerInfo

    await store.insert_jobs([job() for _ in range(2)])
    held, lost = await claim(store, {"a": 2})
    info = WorkerInfo(
        worker_id="w1", host="h", pid=1, job_types=["a"], concurrency=2, heartbeat_at=T0 + MIN
    )
    states = await store.beat(info, {held.job_id: token(held), lost.job_id: "nope"}, T0 + HOUR)
    assert states == {held.job_id: LeaseState.HELD, lost.job_id: LeaseState.LOST}
    renewed = await store.get_job(held.job_id)
    assert renewed and renewed.lease and close_to(renewed.lease.expires_at, T0 + HOUR)
    (worker,) = await store.list_workers()
    assert worker.worker_id == "w1" and close_to(worker.heartbeat_at, T0 + MIN)
    assert await store.beat(info, {}, T0 + HOUR) == {}  # an idle worker beats too


async def test_fenced_finish_after_reclaim(store: Store) -> None:
    j = job()
    await store.insert_jobs([j])
    first = (await claim(store, {"a": 1}, lease=30))[0]
    # the worker vanished: the watchdog finds the expired lease and requeues it
    overdue = await store.find_overdue(T0 + MIN)
    assert [o.job_id for o in overdue] == [j.job_id]
    assert await store.finish(
        j.job_id,
        token(first),
        done(JobStatus.PENDING),
        now=T0 + MIN,
        only_if_overdue=True,
    )
    second = (await claim(store, {"a": 1}, now=T0 + 2 * MIN, worker="w2"))[0]
    assert second.job_id == j.job_id and second.attempts == 2
    # the old worker comes back: it can change nothing
    old = token(first)
    assert not await store.set_progress(j.job_id, old, Progress(percent=50))
    assert not await store.finish(j.job_id, old, done(results={"by": "old"}), now=T0 + 3 * MIN)
    new = token(second)
    assert await store.finish(j.job_id, new, done(results={"by": "new"}), now=T0 + 3 * MIN)
    assert not await store.finish(j.job_id, new, done(JobStatus.FAILED), now=T0 + 4 * MIN)
    final = await store.get_job(j.job_id)
    assert final and final.status == JobStatus.COMPLETED and final.results == {"by": "new"}
    assert (
        final.lease is None and final.error is None and close_to(final.completed_at, T0 + 3 * MIN)
    )


async def test_set_progress_is_fenced(store: Store) -> None:
    await store.insert_jobs([job()])
    j = (await claim(store, {"a": 1}))[0]
    tk = token(j)
    assert await store.set_progress(j.job_id, tk, Progress(percent=40, step="page 4"))
    assert not await store.set_progress(j.job_id, "wrong", Progress(percent=99))
    stored = await store.get_job(j.job_id)
    assert stored and stored.progress and stored.progress.percent == 40
    assert stored.progress.step == "page 4"
    assert await store.finish(j.job_id, tk, done(), now=T0)
    assert not await store.set_progress(j.job_id, tk, Progress(percent=100))


async def test_only_if_overdue_and_timeouts(store: Store) -> None:
    a, b, c = job("a"), job("b"), job("c")
    await store.insert_jobs([a, b, c])
    got = {
        j.job_id: j
        for j in await claim(store, {"a": 1, "b": 1, "c": 1}, lease=30, timeouts={"b": 600})
    }
    tok = {k: token(v) for k, v in got.items()}
    # lease still valid, timeout not reached: the watchdog may not touch it
    assert await store.find_overdue(T0 + timedelta(seconds=10)) == []
    assert not await store.finish(
        a.job_id,
        tok[a.job_id],
        done(JobStatus.FAILED),
        now=T0 + timedelta(seconds=10),
        only_if_overdue=True,
    )
    # b keeps heartbeating but runs past its timeout; c (no timeout) is fine
    await store.heartbeat({b.job_id: tok[b.job_id], c.job_id: tok[c.job_id]}, T0 + 2 * HOUR)
    overdue = await store.find_overdue(T0 + 20 * MIN)
    assert sorted(o.job_id for o in overdue) == sorted([a.job_id, b.job_id])
    assert len(await store.find_overdue(T0 + 20 * MIN, limit=1)) == 1
    timeout = Outcome(status=JobStatus.FAILED, error=JobError(code=ErrorCode.TIMEOUT))
    assert await store.finish(
        b.job_id, tok[b.job_id], timeout, now=T0 + 20 * MIN, only_if_overdue=True
    )
    assert not await store.finish(
        c.job_id, tok[c.job_id], timeout, now=T0 + 5 * MIN, only_if_overdue=True
    )
    failed = await store.get_job(b.job_id)
    assert failed and failed.status == JobStatus.FAILED and failed.error
    assert failed.error.code == "TIMEOUT"


async def test_refund_attempt_hands_back(store: Store) -> None:
    j = job()
    await store.insert_jobs([j])
    got = (await claim(store, {"a": 1}))[0]
    ok = await store.finish(
        j.job_id,
        token(got),
        Outcome(status=JobStatus.PENDING, refund_attempt=True),
        now=T0,
    )
    assert ok
    back = await store.get_job(j.job_id)
    assert back and back.status == JobStatus.PENDING and back.attempts == 0
    assert back.lease is None
    assert [x.job_id for x in await claim(store, {"a": 1})] == [j.job_id]


async def test_retry_later_with_run_after(store: Store) -> None:
    j = job()
    await store.insert_jobs([j])
    got = (await claim(store, {"a": 1}))[0]
    err = JobError(code=ErrorCode.HANDLER_ERROR, message="boom")
    assert await store.finish(
        j.job_id,
        token(got),
        Outcome(status=JobStatus.PENDING, run_after=T0 + HOUR, error=err),
        now=T0,
    )
    assert await claim(store, {"a": 1}, now=T0 + MIN) == []
    again = await claim(store, {"a": 1}, now=T0 + 2 * HOUR)
    assert [x.job_id for x in again] == [j.job_id] and again[0].attempts == 2


# -- enqueue ----------------------------------------------------------------------


async def test_insert_dedupe(store: Store) -> None:
    first = await store.insert_jobs([job(dedupe_key="k1"), job(dedupe_key="k2"), job(), job()])
    assert len(first.inserted) == 4 and first.duplicates == []
    again = [job(dedupe_key="k1"), job(dedupe_key="k3"), job(dedupe_key="k3")]
    res = await store.insert_jobs(again)
    assert res.inserted == [again[1].job_id]
    assert sorted(res.duplicates) == ["k1", "k3"]
    found = await store.find_by_dedupe_keys(["k1", "k3", "missing"])
    assert set(found) == {"k1", "k3"} and found["k3"].job_id == again[1].job_id
    assert sum((await store.count_jobs()).values()) == 5
    assert (await store.insert_jobs([])).inserted == []


async def test_concurrent_inserts_cannot_both_win(store: Store) -> None:
    keys = [f"file-{i}" for i in range(8)]
    one = [job(dedupe_key=k) for k in keys]
    two = [job(dedupe_key=k) for k in reversed(keys)]
    r1, r2 = await asyncio.gather(store.insert_jobs(one), store.insert_jobs(two))
    assert len(r1.inserted) + len(r2.inserted) == len(keys)
    assert sorted(r1.duplicates + r2.duplicates) == sorted(keys)
    found = await store.find_by_dedupe_keys(keys)
    assert set(found) == set(keys)
    winners = set(r1.inserted) | set(r2.inserted)
    assert {j.job_id for j in found.values()} == winners
    assert sum((await store.count_jobs()).values()) == len(keys)


# -- operator verbs ----------------------------------------------------------------


async def _page_all(
    store: Store, newest_first: bool, size: int, flt: JobFilter | None = None
) -> list[str]:
    seen: list[str] = []
    after = None
    while True:
        page = await store.list_jobs(flt, limit=size, after=after, newest_first=newest_first)
        seen.extend(j.job_id for j in page)
        if len(page) < size:
            return seen
        after = (page[-1].created_at, page[-1].job_id)
        assert len(seen) < 1000, "paging does not advance"


async def test_list_jobs_keyset_paging_both_directions(store: Store) -> None:
    # groups of three share a timestamp (ties break on job_id)
    jobs = [job(created_at=T0 + (i // 3) * MIN) for i in range(13)]
    await store.insert_jobs(jobs)
    expected = [j.job_id for j in sorted(jobs, key=lambda j: (j.created_at, j.job_id))]
    for size in (1, 4, 5, 50):
        assert await _page_all(store, False, size) == expected
        assert await _page_all(store, True, size) == expected[::-1]
    page = await store.list_jobs(limit=3)
    assert [j.job_id for j in page] == expected[:3]


async def test_list_and_count_filters(store: Store) -> None:
    jobs = [
        job("pdf.text", parameters={"path": "/data/Report 2024.pdf"}, batch_id="B1"),
        job("pdf.text", parameters={"path": "/data/other.pdf"}, batch_id="B1"),
        job("pdf.markdown", parameters={"path": "/x/a.b.pdf"}, batch_id="B2"),
        job("pdf.markdown", parameters={"path": "/x/axb.pdf"}),
    ]
    await store.insert_jobs(jobs)
    got = await claim(store, {"pdf.text": 1})
    fail = Outcome(status=JobStatus.FAILED, error=JobError(code=ErrorCode.PDF_CORRUPT))
    assert await store.finish(got[0].job_id, token(got[0]), fail, now=T0)

    async def ids(flt: JobFilter) -> set[str]:
        return {j.job_id for j in await store.list_jobs(flt, limit=100)}

    assert await ids(JobFilter(status=[JobStatus.FAILED])) == {got[0].job_id}
    assert await ids(JobFilter(status=[JobStatus.FAILED, JobStatus.PENDING])) == {
        j.job_id for j in jobs
    }
    assert await ids(JobFilter(job_type=["pdf.markdown"])) == {jobs[2].job_id, jobs[3].job_id}
    assert await ids(JobFilter(batch_id="B1")) == {jobs[0].job_id, jobs[1].job_id}
    assert await ids(JobFilter(text="report 2024")) == {jobs[0].job_id}
    assert await ids(JobFilter(text="a.b")) == {jobs[2].job_id}  # regex characters are literal
    assert await ids(JobFilter(text="corrupt")) == {got[0].job_id}
    assert await ids(JobFilter(text=jobs[3].job_id[4:12].upper())) == {jobs[3].job_id}
    assert await ids(JobFilter(batch_id="B1", status=[JobStatus.PENDING])) == {
        j.job_id for j in jobs[:2]
    } - {got[0].job_id}
    assert await ids(JobFilter(job_type=["pdf.markdown"], text="axb")) == {jobs[3].job_id}
    assert await store.count_jobs() == {"pending": 3, "failed": 1}
    assert await store.count_jobs(JobFilter(batch_id="B1")) == {"pending": 1, "failed": 1}
    assert await store.count_jobs(JobFilter(text="nothing-like-this")) == {}


async def test_batch_summaries_derive_from_job_states(store: Store) -> None:
    b1 = Batch(name="first", total_jobs=4, created_at=T0)
    b2 = Batch(name="second", total_jobs=2, created_at=T0 + MIN)
    await store.create_batch(b1)
    await store.create_batch(b2)
    await store.insert_jobs([job("a", batch_id=b1.batch_id) for _ in range(4)])
    await store.insert_jobs([job("b", batch_id=b2.batch_id) for _ in range(2)])
    s1 = await store.get_batch(b1.batch_id)
    assert s1 and s1.counts == {"pending": 4} and not s1.finished and s1.status == "pending"
    got = await claim(store, {"a": 4}, now=T0 + MIN)
    tok = {j.job_id: token(j) for j in got}
    ids = list(tok)
    await store.finish(ids[0], tok[ids[0]], done(), now=T0 + 2 * MIN)
    await store.finish(
        ids[1], tok[ids[1]], done(JobStatus.FAILED, error=JobError(code="X")), now=T0 + 3 * MIN
    )
    s1 = await store.get_batch(b1.batch_id)
    assert s1 and s1.counts == {"completed": 1, "failed": 1, "processing": 2}
    assert not s1.finished and s1.status == "running" and s1.total == 4 and s1.done == 2
    assert s1.first_started_at and close_to(s1.first_started_at, T0 + MIN)
    await store.finish(ids[2], tok[ids[2]], done(), now=T0 + 4 * MIN)
    # a stale duplicate completion cannot inflate the counts
    assert not await store.finish(ids[2], tok[ids[2]], done(), now=T0 + 4 * MIN)
    await store.cancel_jobs(job_id=ids[3], now=T0 + 5 * MIN)  # processing: only a request
    s1 = await store.get_batch(b1.batch_id)
    assert s1 and s1.counts == {"completed": 2, "failed": 1, "processing": 1}
    await store.finish(ids[3], tok[ids[3]], done(JobStatus.CANCELLED), now=T0 + 6 * MIN)
    s1 = await store.get_batch(b1.batch_id)
    assert s1 and s1.finished and s1.status == "finished with errors"
    assert s1.counts == {"completed": 2, "failed": 1, "cancelled": 1}
    assert s1.last_completed_at and close_to(s1.last_completed_at, T0 + 6 * MIN)
    listed = await store.list_batches()
    assert [s.batch.batch_id for s in listed] == [b2.batch_id, b1.batch_id]
    assert listed[0].counts == {"pending": 2} and listed[0].batch.name == "second"
    assert listed[1].counts == s1.counts
    assert [s.batch.batch_id for s in await store.list_batches(limit=1)] == [b2.batch_id]
    assert await store.get_batch("no-such-batch") is None


async def test_unfinished_batches_carry_the_work_their_jobs_report_in_units(
    store: Store,
) -> None:
    """The console's ETA weighs jobs by the units they report: the summary of an
    unfinished batch sums them per unit over processing and completed jobs, from real
    progress writes; failed and cancelled work is not counted; a finished batch has
    none. A job that reported nothing but returned ``results.pages`` counts in pages."""
    b = Batch(name="pdfs", created_at=T0)
    await store.create_batch(b)
    await store.insert_jobs([job("a", batch_id=b.batch_id) for _ in range(7)])
    got = await claim(store, {"a": 6}, now=T0 + MIN)
    big, small, reading, quiet, broken, stopped = got
    tok = {j.job_id: token(j) for j in got}

    async def pages(j: Job, done: float, total: float, unit: str = "pages") -> None:
        p = Progress(percent=100 * done / total, done=done, total=total, unit=unit)
        assert await store.set_progress(j.job_id, tok[j.job_id], p)

    await pages(big, 600, 2400)  # still processing: 600 of 2,400 pages done
    await pages(small, 1, 3)
    await pages(reading, 30, 90, unit="s")  # another unit: counted apart
    await pages(broken, 5, 10)
    await pages(stopped, 2, 10)
    # completed: its whole total is done, whatever its last progress write said
    await store.finish(small.job_id, tok[small.job_id], done(), now=T0 + 2 * MIN)
    # no progress at all, but it says how many pages it read
    await store.finish(quiet.job_id, tok[quiet.job_id], done(results={"pages": 5}), now=T0)
    fail = done(JobStatus.FAILED, error=JobError(code="X"))
    await store.finish(broken.job_id, tok[broken.job_id], fail, now=T0 + 2 * MIN)
    await store.finish(stopped.job_id, tok[stopped.job_id], done(JobStatus.CANCELLED), now=T0)

    def tallies(s: Any) -> dict[str, tuple[float, float, int, int]]:
        return {u: (t.done, t.total, t.jobs, t.processing) for u, t in s.units.items()}

    s = await store.get_batch(b.batch_id)
    assert s is not None and not s.finished
    assert tallies(s) == {"pages": (600 + 3 + 5, 2400 + 3 + 5, 3, 1), "s": (30, 90, 1, 1)}
    (listed,) = await store.list_batches()
    assert tallies(listed) == tallies(s)
    await pages(big, 1800, 2400)  # the latest write replaces the last one
    s = await store.get_batch(b.batch_id)
    assert s is not None and s.units["pages"].done == 1800 + 3 + 5

    # finished: nothing left to estimate, nothing summed
    (last,) = await claim(store, {"a": 1}, now=T0 + 3 * MIN)
    for j, t in ((big, tok[big.job_id]), (reading, tok[reading.job_id]), (last, token(last))):
        await store.finish(j.job_id, t, done(), now=T0 + 4 * MIN)
    s = await store.get_batch(b.batch_id)
    assert s is not None and s.finished and s.units == {}


async def test_unit_tallies_keep_batch_ids_and_units_with_a_bar_apart(store: Store) -> None:
    """A seed batch id may hold any character, a plug-in's unit too: ``|`` (the MongoDB
    store's group-key separator) in both still sums each batch's own work."""
    ids = ("import|2026-11|x", "x", "2026-11|x")
    for bid in ids:
        await store.create_batch(Batch(batch_id=bid, name=bid, created_at=T0))
        await store.insert_jobs([job("a", batch_id=bid) for _ in range(2)])
    got = await claim(store, {"a": 6}, now=T0 + MIN)
    assert len(got) == 6
    for n, j in enumerate(got, start=1):
        unit = "pages" if n % 2 else "s|rec"
        p = Progress(percent=50, done=n, total=2 * n, unit=unit)
        assert await store.set_progress(j.job_id, token(j), p)
    for bid in ids:
        mine = [(n, j) for n, j in enumerate(got, start=1) if j.batch_id == bid]
        want: dict[str, tuple[float, float]] = {}
        for n, _ in mine:
            unit = "pages" if n % 2 else "s|rec"
            d, t = want.get(unit, (0, 0))
            want[unit] = (d + n, t + 2 * n)
        s = await store.get_batch(bid)
        assert s is not None
        assert {u: (t.done, t.total) for u, t in s.units.items()} == want, bid
    listed = {s.batch.batch_id: s for s in await store.list_batches()}
    assert set(listed) == set(ids)
    assert all(sum(t.jobs for t in listed[b].units.values()) == 2 for b in ids)


async def test_tail_logs_order_and_limit(store: Store) -> None:
    j = job()
    await store.insert_jobs([j])
    entries = [
        LogEntry(job_id=j.job_id, ts=T0 + (i // 2) * MIN, seq=i, message=f"line {i}")
        for i in range(10)
    ]
    await store.append_logs(entries[5:])
    await store.append_logs(entries[:5])
    await store.append_logs([LogEntry(job_id="other", ts=T0, message="not mine")])
    tail = await store.tail_logs(j.job_id, limit=4)
    assert [e.message for e in tail] == ["line 6", "line 7", "line 8", "line 9"]
    assert all(e.ts.tzinfo is not None for e in tail)
    everything = await store.tail_logs(j.job_id)
    assert [e.message for e in everything] == [f"line {i}" for i in range(10)]
    newer = await store.tail_logs(j.job_id, after=T0 + 3 * MIN)
    assert [e.message for e in newer] == ["line 8", "line 9"]
    assert await store.tail_logs("nobody") == []


async def test_cancel_pending_processing_terminal_and_batch(store: Store) -> None:
    bid = "B-cancel"
    jobs = [job(batch_id=bid) for _ in range(4)]
    await store.insert_jobs(jobs)
    running = await claim(store, {"a": 2})
    tok = {j.job_id: token(j) for j in running}
    finished = running[0].job_id
    await store.finish(finished, tok[finished], done(), now=T0)
    pending = [j.job_id for j in jobs if j.job_id not in tok]
    # one pending job alone
    assert await store.cancel_jobs(job_id=pending[0], now=T0) == 1
    one = await store.get_job(pending[0])
    assert one and one.status == JobStatus.CANCELLED and one.error and one.error.code == "CANCELLED"
    # a terminal job is left alone
    assert await store.cancel_jobs(job_id=finished, now=T0) == 0
    # the rest of the batch: one pending, one processing
    assert await store.cancel_jobs(batch_id=bid, now=T0) == 2
    proc = await store.get_job(running[1].job_id)
    assert proc and proc.status == JobStatus.PROCESSING and proc.cancel_requested
    assert await status_of(store, pending[1]) == JobStatus.CANCELLED
    assert await status_of(store, finished) == JobStatus.COMPLETED
    assert await store.count_jobs(JobFilter(batch_id=bid)) == {
        "cancelled": 2,
        "processing": 1,
        "completed": 1,
    }
    # cancelled jobs are never claimed again
    assert await claim(store, {"a": 10}) == []


async def test_retry_resets_jobs(store: Store) -> None:
    jobs = [job(batch_id="R") for _ in range(3)]
    await store.insert_jobs(jobs)
    got = await claim(store, {"a": 3})
    tok = {j.job_id: token(j) for j in got}
    failed, completed, cancelled = (j.job_id for j in got)
    await store.finish(
        failed, tok[failed], done(JobStatus.FAILED, error=JobError(code="X")), now=T0
    )
    await store.finish(completed, tok[completed], done(results={"n": 1}), now=T0)
    await store.cancel_jobs(job_id=cancelled, now=T0)
    await store.finish(cancelled, tok[cancelled], done(JobStatus.CANCELLED), now=T0)
    assert await store.retry_jobs(batch_id="R", now=T0 + MIN) == 2
    for job_id in (failed, cancelled):
        j = await store.get_job(job_id)
        assert j and j.status == JobStatus.PENDING and j.attempts == 0
        assert j.error is None and j.lease is None and not j.cancel_requested
    assert await status_of(store, completed) == JobStatus.COMPLETED
    assert (
        await store.retry_jobs(job_id=completed, statuses=[JobStatus.COMPLETED], now=T0 + MIN) == 1
    )
    again = await claim(store, {"a": 5}, now=T0 + 2 * MIN)
    assert sorted(j.job_id for j in again) == sorted([failed, cancelled, completed])
    assert all(j.attempts == 1 for j in again)


# -- legacy documents ------------------------------------------------------------


def legacy_doc(job_id: str, status: str, **extra: Any) -> dict[str, Any]:
    """The shape of the seed's ``event_jobs`` documents: no job_type, no attempts,
    log lines embedded in the job, fields this engine does not know."""
    doc: dict[str, Any] = {
        "job_id": job_id,
        "status": status,
        "parameters": {"event_id": "ev-1", "path": f"/legacy/{job_id}.pdf"},
        "created_at": T0 - HOUR,
        "updated_at": T0 - HOUR,
        "batch_id": "legacy-batch",
        "user_id": "someone",
        "logs": [{"timestamp": T0 - HOUR, "level": "INFO", "message": "started"}],
        "progress": {"percent": 10.0, "step": "init", "message": "hello"},
        "results": None,
        "error": None,
    }
    doc.update(extra)
    return doc


async def test_legacy_documents_load_list_retry_cancel(store: Store) -> None:
    insert = store._insert_raw_job  # type: ignore[attr-defined]  # test hook
    await insert(legacy_doc("legacy-p", "pending"))
    await insert(legacy_doc("legacy-f", "failed", error={"code": "HANDLER_ERROR", "message": "x"}))
    await insert(legacy_doc("legacy-q", "pending"))
    j = await store.get_job("legacy-p")
    assert j and j.job_type == "session" and j.attempts == 0 and j.status == JobStatus.PENDING
    assert j.logs and j.logs[0]["message"] == "started"
    assert j.created_at.tzinfo is not None and close_to(j.created_at, T0 - HOUR)
    listed = await store.list_jobs(JobFilter(batch_id="legacy-batch"))
    assert {x.job_id for x in listed} == {"legacy-p", "legacy-f", "legacy-q"}
    assert {x.job_id for x in await store.list_jobs(JobFilter(job_type=["session"]))} == {
        "legacy-p",
        "legacy-f",
        "legacy-q",
    }
    assert await store.pending_job_types() == {"session": 2}
    assert await store.count_jobs() == {"pending": 2, "failed": 1}
    assert await store.retry_jobs(job_id="legacy-f", now=T0) == 1
    assert await store.cancel_jobs(job_id="legacy-q", now=T0) == 1
    assert await claim(store, {"other": 5}) == []
    got = await claim(store, {"session": 5})
    assert sorted(x.job_id for x in got) == ["legacy-f", "legacy-p"]
    assert all(x.attempts == 1 for x in got)
    s = await store.count_jobs(JobFilter(batch_id="legacy-batch"))
    assert s == {"processing": 2, "cancelled": 1}
    # an old finished job (times written at insert) beside ones the engine finished
    await insert(
        legacy_doc("legacy-c", "completed", started_at=T0 - HOUR, completed_at=T0 - HOUR + MIN)
    )
    assert await store.finish(got[0].job_id, token(got[0]), done(), now=T0 + MIN)
    await store.create_batch(Batch(batch_id="legacy-batch", name="old", created_at=T0 - HOUR))
    summary = await store.get_batch("legacy-batch")
    assert summary and summary.counts == {"completed": 2, "processing": 1, "cancelled": 1}
    assert [b.counts for b in await store.list_batches()] == [summary.counts]
    old = await store.get_job("legacy-c")
    assert old and old.completed_at and close_to(old.completed_at, T0 - HOUR + MIN)


async def test_empty_null_and_missing_job_type_are_the_legacy_type(store: Store) -> None:
    """The seed's code writes ``job_type: ""``; older documents hold null or nothing.
    All three are the legacy type (``session``) in claims, counts and filters."""
    insert = store._insert_raw_job  # type: ignore[attr-defined]  # test hook
    await insert(legacy_doc("jt-empty", "pending", job_type=""))
    await insert(legacy_doc("jt-null", "pending", job_type=None))
    await insert(legacy_doc("jt-missing", "pending"))
    await insert(legacy_doc("jt-session", "pending", job_type="session"))
    await insert(legacy_doc("jt-pdf", "pending", job_type="pdf"))
    assert await store.pending_job_types() == {"session": 4, "pdf": 1}
    sessions = JobFilter(job_type=["session"])
    assert await store.count_jobs(sessions) == {"pending": 4}
    listed = await store.list_jobs(sessions)
    assert {j.job_id for j in listed} == {"jt-empty", "jt-null", "jt-missing", "jt-session"}
    assert {j.job_type for j in listed} == {"session"}
    assert await claim(store, {"other": 9}) == []
    got = await claim(store, {"session": 3})
    assert len(got) == 3 and {j.job_type for j in got} == {"session"}
    got += await claim(store, {"session": 9, "pdf": 9})
    assert {j.job_id for j in got} == {
        "jt-empty", "jt-null", "jt-missing", "jt-session", "jt-pdf"
    }  # fmt: skip


async def test_legacy_type_is_configurable(store: Store) -> None:
    store.legacy_type = "old.session"  # type: ignore[attr-defined]  # as the factory sets it
    insert = store._insert_raw_job  # type: ignore[attr-defined]  # test hook
    await insert(legacy_doc("lt-empty", "pending", job_type=""))
    await insert(legacy_doc("lt-missing", "pending"))
    await store.insert_jobs([job("session", job_id="lt-session")])
    assert await store.pending_job_types() == {"old.session": 2, "session": 1}
    got = await claim(store, {"old.session": 9})
    assert {j.job_id for j in got} == {"lt-empty", "lt-missing"}
    assert {j.job_type for j in got} == {"old.session"}


async def test_unleased_processing_jobs_are_adopted_once(store: Store) -> None:
    """A job the seed's worker left ``processing`` (no lease) is found once it has not
    been updated for the stall timeout, and adopted by exactly one conditional write."""
    insert = store._insert_raw_job  # type: ignore[attr-defined]  # test hook
    await insert(legacy_doc("stale", "processing", updated_at=T0 - 3 * HOUR))
    await insert(legacy_doc("busy", "processing", updated_at=T0 - MIN))
    await store.insert_jobs([job("a", job_id="ours")])
    (ours,) = await claim(store, {"a": 1}, now=T0 - 5 * HOUR, lease=1)  # long expired
    found = await store.find_unleased(T0 - HOUR)
    assert [j.job_id for j in found] == ["stale"]  # never a job of ours, leased or not
    retry = Outcome(status=JobStatus.PENDING, error=JobError(code="TIMEOUT", message="stalled"))
    results = await asyncio.gather(
        *(store.finish_unleased("stale", retry, stalled_before=T0 - HOUR, now=T0) for _ in range(3))
    )
    assert sorted(results) == [False, False, True]
    adopted = await store.get_job("stale")
    assert adopted and adopted.status == JobStatus.PENDING and adopted.attempts == 1
    assert adopted.error and adopted.error.code == "TIMEOUT"
    assert await store.find_unleased(T0 + HOUR) != []  # "busy" is unleased too, later
    assert not await store.finish_unleased("busy", retry, stalled_before=T0 - HOUR, now=T0)
    assert not await store.finish_unleased(ours.job_id, retry, stalled_before=T0, now=T0)
    got = await claim(store, {"session": 5})
    assert [j.job_id for j in got] == ["stale"] and got[0].attempts == 2


async def test_retry_and_cancel_reach_unleased_processing_jobs_at_once(store: Store) -> None:
    insert = store._insert_raw_job  # type: ignore[attr-defined]  # test hook
    await insert(legacy_doc("orphan-r", "processing"))
    await insert(legacy_doc("orphan-c", "processing"))
    await store.insert_jobs([job("a", job_id="leased")])
    await claim(store, {"a": 1})
    assert await store.retry_jobs(job_id="orphan-r", now=T0) == 1
    assert await status_of(store, "orphan-r") == JobStatus.PENDING
    assert await store.retry_jobs(job_id="leased", now=T0) == 0  # a live lease: not ours to take
    assert await store.cancel_jobs(job_id="orphan-c", now=T0) == 1
    cancelled = await store.get_job("orphan-c")
    assert cancelled and cancelled.status == JobStatus.CANCELLED
    assert cancelled.error and cancelled.error.code == ErrorCode.CANCELLED
    assert await store.cancel_jobs(job_id="leased", now=T0) == 1
    leased = await store.get_job("leased")
    assert leased and leased.status == JobStatus.PROCESSING and leased.cancel_requested


def stored_counters(summary: Any) -> dict[str, Any]:
    extra = summary.batch.model_extra or {}
    names = ("completed_jobs", "failed_jobs", "pending_jobs", "processing_jobs", "status")
    return {"total_jobs": summary.batch.total_jobs, **{k: extra.get(k) for k in names}}


async def test_batch_counters_are_written_from_a_recount(store: Store) -> None:
    """The seed's readers see ``event_batches`` counters equal to a count of the jobs."""
    batch = Batch(name="b", total_jobs=99)  # a wrong total is corrected by the recount
    jobs = [job("a", batch_id=batch.batch_id) for _ in range(5)]
    await store.insert_jobs(jobs)
    await store.create_batch(batch)
    summary = await store.get_batch(batch.batch_id)
    assert summary and stored_counters(summary) == {
        "total_jobs": 5, "completed_jobs": 0, "failed_jobs": 0, "pending_jobs": 5,
        "processing_jobs": 0, "status": "pending",
    }  # fmt: skip
    c = await claim(store, {"a": 3})
    assert await store.finish(c[0].job_id, token(c[0]), done(), now=T0 + MIN)
    assert await store.finish(c[1].job_id, token(c[1]), done(JobStatus.FAILED), now=T0 + MIN)
    await store.recount_batches([batch.batch_id, None], now=T0 + MIN)
    summary = await store.get_batch(batch.batch_id)
    assert summary and stored_counters(summary) == {
        "total_jobs": 5, "completed_jobs": 1, "failed_jobs": 1, "pending_jobs": 2,
        "processing_jobs": 1, "status": "processing",
    }  # fmt: skip
    assert (summary.batch.model_extra or {}).get("completed_at") is None
    # Cancelling the pending ones recounts at once; the last running one then ends.
    assert await store.cancel_jobs(batch_id=batch.batch_id, now=T0 + MIN) == 3
    assert await store.finish(c[2].job_id, token(c[2]), done(), now=T0 + 2 * MIN)
    await store.recount_batches([batch.batch_id], now=T0 + 2 * MIN)
    summary = await store.get_batch(batch.batch_id)
    assert summary and stored_counters(summary) == {
        "total_jobs": 5, "completed_jobs": 2, "failed_jobs": 3, "pending_jobs": 0,
        "processing_jobs": 0, "status": "failed",
    }  # fmt: skip
    assert (summary.batch.model_extra or {}).get("cancelled_jobs") == 2
    assert summary.counts == {"completed": 2, "failed": 1, "cancelled": 2}
    # A retry puts one back: the counters follow at once.
    assert await store.retry_jobs(job_id=c[1].job_id, now=T0 + 3 * MIN) == 1
    summary = await store.get_batch(batch.batch_id)
    assert summary and stored_counters(summary)["status"] == "processing"
    assert stored_counters(summary)["pending_jobs"] == 1


async def test_finished_batches_are_handed_out_once_however_they_finish(store: Store) -> None:
    hooked = Batch(name="hooked", webhook={"url": "http://127.0.0.1:9/x"})
    quiet = Batch(name="quiet")
    jobs = [job("a", batch_id=hooked.batch_id) for _ in range(2)]
    jobs.append(job("b", batch_id=quiet.batch_id))
    await store.insert_jobs(jobs)
    await store.create_batch(hooked)
    await store.create_batch(quiet)
    assert await store.claim_finished_batches() == []
    (first,) = await claim(store, {"a": 1})
    assert await store.finish(first.job_id, token(first), done(), now=T0)
    await store.recount_batches([first.batch_id], now=T0)
    assert await store.claim_finished_batches() == []  # one job still pending
    # The last one is cancelled while pending: the cancel's recount makes the batch due.
    (last,) = [j for j in jobs[:2] if j.job_id != first.job_id]
    assert await store.cancel_jobs(job_id=last.job_id, now=T0) == 1
    await store.cancel_jobs(batch_id=quiet.batch_id, now=T0)
    got = await asyncio.gather(*(store.claim_finished_batches() for _ in range(3)))
    handed = [s for part in got for s in part]
    assert [s.batch.batch_id for s in handed] == [hooked.batch_id]  # once; never "quiet"
    assert handed[0].finished and handed[0].batch.webhook
    assert await store.claim_finished_batches() == []
    # A retry makes it pending again; finishing again makes it due again.
    assert await store.retry_jobs(batch_id=hooked.batch_id, now=T0 + MIN) >= 1
    assert await store.claim_finished_batches() == []
    await store.cancel_jobs(batch_id=hooked.batch_id, now=T0 + 2 * MIN)
    assert [s.batch.batch_id for s in await store.claim_finished_batches()] == [hooked.batch_id]


# -- workers and liveness ------------------------------------------------------------


async def test_workers_upsert_list_remove(store: Store) -> None:
    w1 = WorkerInfo(worker_id="w1", host="h", pid=1, job_types=["a"], concurrency=2)
    w2 = WorkerInfo(worker_id="w2", host="h", pid=2, job_types=["a", "b"], concurrency=4)
    await store.upsert_worker(w1)
    await store.upsert_worker(w2)
    await store.upsert_worker(w1.model_copy(update={"running": 2, "heartbeat_at": T0}))
    workers = {w.worker_id: w for w in await store.list_workers()}
    assert set(workers) == {"w1", "w2"}
    assert workers["w1"].running == 2 and close_to(workers["w1"].heartbeat_at, T0)
    assert workers["w2"].job_types == ["a", "b"]
    await store.remove_worker("w1")
    await store.remove_worker("never-there")
    assert [w.worker_id for w in await store.list_workers()] == ["w2"]


async def test_ping_and_description(store: Store) -> None:
    assert await store.ping()
    assert store.description and store.kind in {"mongodb", "mongomock", "sqlite"}


async def test_watch_wakeups_on_insert(store: Store) -> None:
    if store.kind == "sqlite":
        pytest.skip("SQLite wakes other connections on notify only: tests/test_wakeups.py")
    it = store.watch_wakeups()
    if it is None:
        pytest.skip(f"{store.kind} store cannot push; the worker polls")
    waiter = asyncio.ensure_future(it.__anext__())
    try:
        # the stream opens lazily: keep enqueueing until the wake-up arrives
        for _ in range(200):
            await store.insert_jobs([job()])
            done_, _ = await asyncio.wait({waiter}, timeout=0.05)
            if done_:
                break
        assert waiter.done(), "no wake-up after inserts"
        assert waiter.result() is Wake.CLAIM
    finally:
        waiter.cancel()
        await asyncio.gather(waiter, return_exceptions=True)
        aclose = getattr(it, "aclose", None)
        if aclose is not None:
            await aclose()


# -- MongoStore specifics (not part of the contract: no other backend has these) ----


@pytest.mark.parametrize(
    ("uri", "shown"),
    [
        ("mongodb://user:secret@h/db", "mongodb://user:***@h/db"),
        ("mongodb+srv://u:p@ss@c.example.net/?w=1", "mongodb+srv://u:***@c.example.net/?w=1"),
        (
            "mongodb://u:pa/ss@h1:1,h2:2/db?authSource=admin",
            "mongodb://u:***@h1:1,h2:2/db?authSource=admin",
        ),
        ("mongodb://h1,h2/db?replicaSet=rs", "mongodb://h1,h2/db?replicaSet=rs"),
        ("mongodb://only-user@h", "mongodb://only-user@h"),
        (
            "mongodb://h/?tlsCertificateKeyFilePassword=abc&x=1",
            "mongodb://h/?tlsCertificateKeyFilePassword=***&x=1",
        ),
    ],
)
def test_redact_uri(uri: str, shown: str) -> None:
    assert redact_uri(uri) == shown


async def test_unreachable_server_is_a_store_error_without_password() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    s = MongoStore(f"mongodb://bob:hunter2@127.0.0.1:{port}/x", server_selection_timeout_ms=300)
    assert "hunter2" not in s.description and "bob:***@" in s.description
    with pytest.raises(StoreError) as info:
        await s.open()
    assert info.value.code == "STORE_UNREACHABLE"
    assert "hunter2" not in str(info.value) and f"127.0.0.1:{port}" in str(info.value)
    assert not await s.ping()
    await s.close()


async def test_in_memory_store_kind_and_no_push() -> None:
    s = MongoStore.in_memory()
    await s.open()
    assert s.kind == "mongomock" and "mongomock" in s.description
    assert s.watch_wakeups() is None  # the worker polls
    await s.open()  # indexes are idempotent
    await s.close()


async def test_legacy_log_arrays_load_even_when_pushed_as_json_text(
    mongo_store: MongoStore,
) -> None:
    await mongo_store._insert_raw_job(legacy_doc("legacy-l", "completed"))
    # the seed appended lines with $push (nx-27017 stores such sub-documents as JSON text)
    await mongo_store._jobs.update_one(
        {"job_id": "legacy-l"},
        {"$push": {"logs": {"timestamp": T0, "level": "ERROR", "message": "pushed"}}},
    )
    j = await mongo_store.get_job("legacy-l")
    assert j and j.logs and [line["message"] for line in j.logs] == ["started", "pushed"]
    assert j.logs[1]["level"] == "ERROR"


async def test_two_clients_claim_disjoint_sets(request: pytest.FixtureRequest) -> None:
    """Two engines (separate connection pools) racing over the wire never share a job."""
    if "nx" not in STORE_FACTORIES:
        pytest.skip("needs the wire server")
    uri = request.getfixturevalue("nx_uri")
    db = f"jobtui_test_race_{uuid.uuid4().hex[:8]}"
    one, two = MongoStore(uri, database=db), MongoStore(uri, database=db)
    await one.open()
    await two.open()
    try:
        await one.insert_jobs([job() for _ in range(12)])
        results = await asyncio.gather(
            *(
                claim(s, {"a": 1}, limit=1, worker=f"{n}-{i}")
                for i in range(10)
                for n, s in (("one", one), ("two", two))
            )
        )
        ids = [j.job_id for r in results for j in r]
        assert len(ids) == len(set(ids)) == 12
    finally:
        await one._client.drop_database(db)
        await one.close()
        await two.close()


@pytest.mark.parametrize(
    "uri", ["foo://u:sekrit@x", "mongodb://u:sek:rit@h", "mongodb://u:sekrit@h:99999"]
)
def test_malformed_uri_is_a_store_error_without_password(uri: str) -> None:
    with pytest.raises(StoreError) as info:
        MongoStore(uri)
    assert info.value.code == "STORE_BAD_URI"
    assert "sekrit" not in str(info.value) and "rit@" not in str(info.value)


async def test_finish_many_is_fenced_per_item(store: Store) -> None:
    await store.insert_jobs([job() for _ in range(4)])
    got = await claim(store, {"a": 4})
    items = [
        (got[0].job_id, token(got[0]), done(results={"n": 0})),
        (got[1].job_id, "stale-token", done()),
        (got[2].job_id, token(got[2]), done(JobStatus.FAILED, error=JobError(code="X"))),
        (got[3].job_id, token(got[3]), Outcome(status=JobStatus.PENDING, refund_attempt=True)),
    ]
    assert await store.finish_many(items, now=T0) == [True, False, True, True]
    # Fenced: the attempt ended, so no later finish of it writes (the MongoDB store
    # answers True only to a retry of the very same write: see test_mongo_finish.py).
    again = [(got[0].job_id, token(got[0]), done(JobStatus.FAILED, error=JobError(code="Y")))]
    assert await store.finish_many(again, now=T0 + MIN) == [False]
    assert await store.finish_many([], now=T0) == []
    assert await store.count_jobs() == {"completed": 1, "processing": 1, "failed": 1, "pending": 1}


async def test_finish_many_of_one_shape_is_fenced_per_item(store: Store) -> None:
    """A busy engine's group: many completions alike, one of them by a lost lease."""
    await store.insert_jobs([job() for _ in range(5)])
    got = await claim(store, {"a": 5})
    items = [(j.job_id, token(j), done(results={})) for j in got]
    items[2] = (got[2].job_id, "stale-token", done(results={}))
    assert await store.finish_many(items, now=T0) == [True, True, False, True, True]
    assert await store.count_jobs() == {"completed": 4, "processing": 1}
    assert await store.finish_many(items[:2] + items[3:], now=T0 + MIN) == [False] * 4
    assert await store.count_jobs() == {"completed": 4, "processing": 1}


async def test_free_form_data_round_trips_as_json(store: Store) -> None:
    params = {"path": "/a b/ü.pdf", "pages": [1, 2], "opts": {"dpi": 300, "ocr": True}, "x": None}
    j = job(parameters={**params, "out": Path("/out/dir")}, webhook={"url": "http://h/cb"})
    await store.insert_jobs([j])
    stored = await store.get_job(j.job_id)
    assert stored and stored.parameters == {**params, "out": "/out/dir"}
    assert stored.webhook == {"url": "http://h/cb"} and stored.path == "/a b/ü.pdf"
    got = (await claim(store, {"a": 1}))[0]
    results = {"pages": 2, "files": [Path("/o/1.md")], "meta": {"title": "T"}}
    assert await store.finish(j.job_id, token(got), done(results=results), now=T0)
    final = await store.get_job(j.job_id)
    assert final and final.results == {"pages": 2, "files": ["/o/1.md"], "meta": {"title": "T"}}


async def test_renewed_lease_that_lapses_is_overdue(store: Store) -> None:
    await store.insert_jobs([job(), job()])
    a, b = await claim(store, {"a": 2}, lease=30)
    renewed = await store.heartbeat({a.job_id: token(a), b.job_id: token(b)}, T0 + 5 * MIN)
    assert set(renewed.values()) == {LeaseState.HELD}
    await store.heartbeat({b.job_id: token(b)}, T0 + HOUR)  # only b keeps beating
    assert await store.find_overdue(T0 + 2 * MIN) == []
    assert [j.job_id for j in await store.find_overdue(T0 + 10 * MIN)] == [a.job_id]
    lapsed = Outcome(status=JobStatus.PENDING, run_after=T0 + 11 * MIN)
    assert not await store.finish(
        b.job_id, token(b), lapsed, now=T0 + 10 * MIN, only_if_overdue=True
    )
    assert await store.finish(a.job_id, token(a), lapsed, now=T0 + 10 * MIN, only_if_overdue=True)
    assert await claim(store, {"a": 2}, now=T0 + 10 * MIN) == []
    again = await claim(store, {"a": 2}, now=T0 + 12 * MIN, worker="w2")
    assert [j.job_id for j in again] == [a.job_id] and again[0].attempts == 2


# -- retention: purge ------------------------------------------------------------------


async def finished(store: Store, spec: list[tuple[JobStatus, datetime, str | None]]) -> list[str]:
    """Jobs ended in ``status`` at ``when`` (in ``batch``), two log lines each."""
    jobs = [job(batch_id=batch) for _, _, batch in spec]
    await store.insert_jobs(jobs)
    got = {j.job_id: j for j in await claim(store, {"a": len(jobs)}, now=T0 - 48 * HOUR)}
    for j, (status, when, _) in zip(jobs, spec, strict=True):
        assert await store.finish(j.job_id, token(got[j.job_id]), done(status), now=when)
    await store.append_logs(
        [
            LogEntry(job_id=j.job_id, ts=T0 - 48 * HOUR, seq=i, message=f"l{i}")
            for j in jobs
            for i in range(2)
        ]
    )
    return [j.job_id for j in jobs]


async def test_purge_dry_run_counts_equal_what_is_deleted(store: Store) -> None:
    old, recent, cutoff = T0, T0 + 10 * HOUR, T0 + HOUR
    emptied, kept, fresh = Batch(name="all old"), Batch(name="mixed"), Batch(name="recent")
    empty_old, empty_new = Batch(name="no jobs"), Batch(name="no jobs yet", created_at=recent)
    for b in (emptied, kept, fresh, empty_old, empty_new):
        await store.create_batch(b)
    C, F, X = JobStatus.COMPLETED, JobStatus.FAILED, JobStatus.CANCELLED
    ids = await finished(
        store,
        [
            (C, old, emptied.batch_id),
            (C, old, emptied.batch_id),
            (C, old, emptied.batch_id),
            (C, old, kept.batch_id),
            (F, old, kept.batch_id),
            (C, recent, fresh.batch_id),
            (C, old, None),
            (X, old, None),
        ],
    )
    purged = [*ids[:4], ids[6]]
    waiting, running = job(batch_id=kept.batch_id), job()
    await store.insert_jobs([running])
    assert [j.job_id for j in await claim(store, {"a": 1}, now=T0)] == [running.job_id]
    await store.insert_jobs([waiting])
    await store.append_logs([LogEntry(job_id=running.job_id, ts=T0 - 48 * HOUR, message="r")])
    before = await store.count_jobs()

    dry = await store.purge_jobs(older_than=cutoff, statuses=[C], dry_run=True)
    assert (dry.jobs, dry.logs, dry.batches, dry.dry_run) == (5, 10, 2, True)
    assert await store.count_jobs() == before  # a dry run deletes nothing
    assert await store.get_batch(emptied.batch_id) is not None

    real = await store.purge_jobs(older_than=cutoff, statuses=[C])
    assert (real.jobs, real.logs, real.batches) == (dry.jobs, dry.logs, dry.batches)
    assert not real.dry_run
    for job_id in purged:
        assert await store.get_job(job_id) is None
        assert await store.tail_logs(job_id) == []
    for job_id in [*ids[4:6], ids[7], waiting.job_id, running.job_id]:
        assert await store.get_job(job_id) is not None
    assert len(await store.tail_logs(ids[4])) == 2  # other jobs' logs stay
    assert len(await store.tail_logs(running.job_id)) == 1
    assert await store.get_batch(emptied.batch_id) is None
    assert await store.get_batch(empty_old.batch_id) is None
    for b in (kept, fresh, empty_new):
        assert await store.get_batch(b.batch_id) is not None
    assert await store.count_jobs() == {
        "completed": 1,
        "failed": 1,
        "cancelled": 1,
        "pending": 1,
        "processing": 1,
    }
    again = await store.purge_jobs(older_than=cutoff, statuses=[C])
    assert (again.jobs, again.logs, again.batches) == (0, 0, 0)


async def test_purge_by_batch_and_several_statuses(store: Store) -> None:
    a, b = Batch(name="a", created_at=T0 + HOUR), Batch(name="b", created_at=T0 + HOUR)
    await store.create_batch(a)
    await store.create_batch(b)
    C, F, X = JobStatus.COMPLETED, JobStatus.FAILED, JobStatus.CANCELLED
    ids = await finished(
        store, [(F, T0, a.batch_id), (X, T0, a.batch_id), (C, T0, a.batch_id), (F, T0, b.batch_id)]
    )
    scope = {"older_than": T0 + HOUR, "statuses": [F, X], "batch_id": a.batch_id}
    dry = await store.purge_jobs(**scope, dry_run=True)  # type: ignore[arg-type]
    real = await store.purge_jobs(**scope)  # type: ignore[arg-type]
    assert (dry.jobs, dry.logs, dry.batches) == (real.jobs, real.logs, real.batches) == (2, 4, 0)
    assert [await store.get_job(i) is None for i in ids] == [True, True, False, False]
    rest = await store.purge_jobs(older_than=T0 + HOUR, statuses=[C], batch_id=a.batch_id)
    assert (rest.jobs, rest.logs, rest.batches) == (1, 2, 1)
    assert await store.get_batch(a.batch_id) is None and await store.get_batch(b.batch_id)


async def test_purge_refuses_unfinished_statuses(store: Store) -> None:
    await store.insert_jobs([job()])
    for statuses in ([JobStatus.PENDING], [JobStatus.COMPLETED, JobStatus.PROCESSING]):
        with pytest.raises(ValueError, match="only finished jobs"):
            await store.purge_jobs(older_than=T0 + HOUR, statuses=statuses, dry_run=True)
        with pytest.raises(ValueError):
            await store.purge_jobs(older_than=T0 + HOUR, statuses=statuses)
    assert await store.count_jobs() == {"pending": 1}


async def test_purge_logs_by_age(store: Store) -> None:
    await store.append_logs(
        [LogEntry(job_id="j1", ts=T0 - i * HOUR, seq=i, message=str(i)) for i in range(6)]
    )
    assert await store.purge_logs(older_than=T0 - 2 * HOUR - MIN, dry_run=True) == 3
    assert await store.purge_logs(older_than=T0 - 2 * HOUR - MIN) == 3
    assert [e.message for e in await store.tail_logs("j1")] == ["2", "1", "0"]
    assert await store.purge_logs(older_than=T0 - 2 * HOUR - MIN) == 0
