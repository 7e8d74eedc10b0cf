"""What only the SQLite store has to prove (the shared verbs are in the contract
suite): persistence across reopen, several connections and processes on one file,
refusing files that are not ours / corrupt / newer, indexed query plans, schema
migrations, and an event loop that never waits on SQLite's lock.
"""

from __future__ import annotations

import asyncio
import os
import sqlite3
import sys
import textwrap
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from jobtui.engine.models import (
    Batch,
    Job,
    JobFilter,
    JobStatus,
    LogEntry,
    Outcome,
    Progress,
    WorkerInfo,
)
from jobtui.engine.store import _sqlite_schema as schema
from jobtui.engine.store.base import StoreError
from jobtui.engine.store.sqlite import SQLiteStore, claim_statement

T0 = datetime(2031, 5, 4, 12, 0, 0, 123456, tzinfo=UTC)
REPO = Path(__file__).resolve().parents[1]


async def opened(path: Path) -> SQLiteStore:
    store = SQLiteStore(path)
    await store.open()
    return store


async def claim(
    store: SQLiteStore, n: int = 100, *, worker: str = "w", now: datetime = T0
) -> list[Job]:
    return await store.claim(
        worker_id=worker, slots={"a": n}, limit=n, lease_seconds=30, timeouts={}, now=now
    )


def header(path: Path) -> tuple[int, int]:
    with sqlite3.connect(path) as conn:
        return (
            conn.execute("PRAGMA application_id").fetchone()[0],
            conn.execute("PRAGMA user_version").fetchone()[0],
        )


# -- persistence ---------------------------------------------------------------------


async def test_everything_survives_close_and_reopen(tmp_path: Path) -> None:
    path = tmp_path / "deep" / "er" / "jobtui.db"  # parent directories are created
    store = await opened(path)
    batch = Batch(name="scans", total_jobs=3, created_at=T0)
    await store.create_batch(batch)
    jobs = [
        Job(
            job_type="a",
            batch_id=batch.batch_id,
            parameters={"path": f"/d/{i}.pdf"},
            created_at=T0 + timedelta(seconds=i),
            dedupe_key=f"k{i}",
        )
        for i in range(3)
    ]
    await store.insert_jobs(jobs)
    running = await claim(store, 1)
    tok = running[0].lease.token if running[0].lease else ""
    await store.finish(
        running[0].job_id,
        tok,
        Outcome(status=JobStatus.COMPLETED, results={"pages": 7}),
        now=T0 + timedelta(minutes=1),
    )
    await store.append_logs([LogEntry(job_id=jobs[0].job_id, ts=T0, message="hello", seq=1)])
    await store.upsert_worker(
        WorkerInfo(worker_id="w9", host="h", pid=9, job_types=["a"], concurrency=2)
    )
    await store.close()

    again = await opened(path)
    try:
        assert await again.count_jobs() == {"completed": 1, "pending": 2}
        done = await again.get_job(jobs[0].job_id)
        assert done and done.results == {"pages": 7} and done.created_at == jobs[0].created_at
        summary = await again.get_batch(batch.batch_id)
        assert summary and summary.batch.name == "scans" and summary.batch.created_at == T0
        assert summary.counts == {"completed": 1, "pending": 2}
        assert [e.message for e in await again.tail_logs(jobs[0].job_id)] == ["hello"]
        assert [w.worker_id for w in await again.list_workers()] == ["w9"]
        assert set(await again.find_by_dedupe_keys(["k1", "k2"])) == {"k1", "k2"}
        assert len(await claim(again)) == 2
    finally:
        await again.close()
    assert header(path) == (schema.APPLICATION_ID, schema.SCHEMA_VERSION)


async def test_legacy_extras_keep_their_types(tmp_path: Path) -> None:
    store = await opened(tmp_path / "j.db")
    try:
        await store._insert_raw_job(
            {
                "job_id": "old",
                "status": "failed",
                "error": "it broke",
                "progress": 40,
                "seen_at": T0,
                "tags": ["x"],
                "logs": [{"timestamp": T0, "message": "m"}],
            }
        )
        job = await store.get_job("old")
        assert job and job.job_type == "session" and job.error and job.error.message == "it broke"
        assert job.progress and job.progress.percent == 40
        extra = job.model_extra or {}
        assert extra["seen_at"] == T0 and extra["tags"] == ["x"]
        assert job.logs and job.logs[0]["timestamp"] == T0
    finally:
        await store.close()


# -- several connections, several processes ------------------------------------------


async def test_two_stores_on_one_file_never_double_claim(tmp_path: Path) -> None:
    path = tmp_path / "shared.db"
    one, two = await opened(path), await opened(path)
    try:
        await one.insert_jobs([Job(job_type="a") for _ in range(300)])
        results = await asyncio.gather(
            *(claim(s, 3, worker=f"{n}{i}") for i in range(60) for n, s in (("x", one), ("y", two)))
        )
        ids = [j.job_id for r in results for j in r]
        assert len(ids) == len(set(ids)) == 300
        owners = {j.job_id: j.worker_id for r in results for j in r}
        stored = await two.list_jobs(limit=1000)
        assert all(j.worker_id == owners[j.job_id] and j.attempts == 1 for j in stored)
    finally:
        await one.close()
        await two.close()


_DRAIN = textwrap.dedent(
    """
    import asyncio, sys
    from jobtui.engine.models import JobStatus, Outcome, utcnow
    from jobtui.engine.store.sqlite import SQLiteStore

    async def main(path, name):
        store = SQLiteStore(path)
        await store.open()
        mine = 0
        while True:
            got = await store.claim(worker_id=name, slots={"a": 4}, limit=4,
                                    lease_seconds=60, timeouts={}, now=utcnow())
            if not got:
                break
            done = Outcome(status=JobStatus.COMPLETED, results={"by": name})
            oks = await store.finish_many([(j.job_id, j.lease.token, done) for j in got],
                                          now=utcnow())
            assert all(oks)
            mine += len(got)
        await store.close()
        print(mine)

    asyncio.run(main(sys.argv[1], sys.argv[2]))
    """
)


@pytest.mark.slow
async def test_three_processes_drain_one_file_exactly_once(tmp_path: Path) -> None:
    path = tmp_path / "procs.db"
    store = await opened(path)
    await store.insert_jobs([Job(job_type="a") for _ in range(600)])
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    procs = [
        await asyncio.create_subprocess_exec(
            sys.executable,
            "-c",
            _DRAIN,
            str(path),
            f"p{i}",
            stdout=asyncio.subprocess.PIPE,
            env=env,
        )
        for i in range(3)
    ]
    outs = [await p.communicate() for p in procs]
    assert [p.returncode for p in procs] == [0, 0, 0]
    assert sum(int(out.decode()) for out, _ in outs) == 600
    try:
        assert await store.count_jobs() == {"completed": 600}
        jobs = await store.list_jobs(limit=1000)
        assert all(j.attempts == 1 and j.results == {"by": j.worker_id} for j in jobs)
    finally:
        await store.close()


async def test_event_loop_keeps_running_while_another_process_holds_the_lock(
    tmp_path: Path,
) -> None:
    path = tmp_path / "locked.db"
    store = await opened(path)
    other = sqlite3.connect(path, isolation_level=None)
    try:
        other.execute("BEGIN IMMEDIATE")  # another process is writing
        write = asyncio.ensure_future(store.insert_jobs([Job(job_type="a")]))
        ticks = 0
        for _ in range(20):  # the loop turns while the store thread waits for the lock
            await asyncio.sleep(0.01)
            ticks += 1
        assert ticks == 20 and not write.done()
        other.execute("COMMIT")
        result = await asyncio.wait_for(write, timeout=10)
        assert len(result.inserted) == 1
    finally:
        other.close()
        await store.close()


async def test_grouped_writes_fail_alone(tmp_path: Path) -> None:
    """Concurrent writes share a transaction; one failing write does not undo the others."""
    store = await opened(tmp_path / "g.db")
    try:
        once = Job(job_type="a")
        await store.insert_jobs([once])
        results = await asyncio.gather(
            store.insert_jobs([Job(job_type="a")]),
            store.insert_jobs([Job(job_id=once.job_id, job_type="a")]),  # its id again: fails
            store.insert_jobs([Job(job_type="a")]),
            return_exceptions=True,
        )
        assert isinstance(results[1], sqlite3.IntegrityError)
        assert await store.count_jobs() == {"pending": 3}
    finally:
        await store.close()


async def test_a_write_alone_that_fails_leaves_nothing_behind(tmp_path: Path) -> None:
    """A group of one write runs without a SAVEPOINT: when it fails after changing a
    row, the whole transaction is rolled back and the error reaches its caller."""
    store = await opened(tmp_path / "one.db")
    try:
        job = Job(job_type="a")
        await store.insert_jobs([job])

        def half_then_fail() -> None:
            store._t.db.execute("UPDATE jobs SET priority = 7")
            raise sqlite3.IntegrityError("refused after a change")

        with pytest.raises(sqlite3.IntegrityError, match="refused"):
            await store._t.write(half_then_fail)
        got = await store.get_job(job.job_id)
        assert got is not None and got.priority == 0
        await store.insert_jobs([Job(job_type="a")])  # no transaction was left open
        assert await store.count_jobs() == {"pending": 2}
    finally:
        await store.close()


async def test_reads_get_through_a_stream_of_writes(tmp_path: Path) -> None:
    """Grouped writes yield the store thread between groups: a console's reads are
    served while a busy engine keeps writing."""
    store = await opened(tmp_path / "busy.db")
    stop = asyncio.Event()
    written = 0

    async def writer(n: int) -> None:
        nonlocal written
        while not stop.is_set():
            lines = [LogEntry(job_id=f"j{n}", message=str(i)) for i in range(5)]
            await asyncio.gather(*(store.append_logs(lines) for _ in range(10)))
            written += 50

    writers = [asyncio.ensure_future(writer(n)) for n in range(4)]
    try:
        await asyncio.sleep(0.05)
        for _ in range(10):
            await asyncio.wait_for(store.count_jobs(), timeout=5)
            await asyncio.wait_for(store.tail_logs("j1", limit=3), timeout=5)
        assert written > 0
    finally:
        stop.set()
        await asyncio.gather(*writers)
        await store.close()


# -- files that are not ours -----------------------------------------------------------


async def _refused(path: Path) -> StoreError:
    before = path.read_bytes()
    store = SQLiteStore(path)
    with pytest.raises(StoreError) as info:
        await store.open()
    assert str(path) in info.value.message
    assert path.read_bytes() == before, "a refused file must not be written"
    assert not await store.ping()
    return info.value


async def test_garbage_file_is_corrupt(tmp_path: Path) -> None:
    path = tmp_path / "garbage.db"
    path.write_bytes(os.urandom(3000) + b"not sqlite at all" * 100)
    assert (await _refused(path)).code == "STORE_CORRUPT"


async def test_damaged_jobtui_file_is_corrupt(tmp_path: Path) -> None:
    path = tmp_path / "damaged.db"
    store = await opened(path)
    await store.insert_jobs([Job(job_type="a", parameters={"pad": "x" * 500}) for _ in range(500)])
    await store.close()
    data = path.read_bytes()
    page = 4096
    path.write_bytes(data[: 5 * page] + b"\xff" * page + data[6 * page :])  # scribble a page
    assert (await _refused(path)).code == "STORE_CORRUPT"
    path.write_bytes(data[: len(data) // 2])  # truncated
    assert (await _refused(path)).code == "STORE_CORRUPT"


async def test_foreign_sqlite_file_is_not_ours(tmp_path: Path) -> None:
    path = tmp_path / "photos.db"
    with sqlite3.connect(path) as conn:
        conn.execute("CREATE TABLE photos (id INTEGER PRIMARY KEY, name TEXT)")
        conn.execute("INSERT INTO photos (name) VALUES ('cat.jpg')")
    conn.close()
    err = await _refused(path)
    assert err.code == "STORE_NOT_OURS"
    with sqlite3.connect(path) as conn:
        assert conn.execute("SELECT name FROM photos").fetchall() == [("cat.jpg",)]
    conn.close()
    other_app = tmp_path / "other-app.db"
    with sqlite3.connect(other_app) as conn:
        conn.execute("PRAGMA application_id = 12345")  # no tables, but someone else's id
    conn.close()
    assert (await _refused(other_app)).code == "STORE_NOT_OURS"


async def test_newer_schema_is_too_new(tmp_path: Path) -> None:
    path = tmp_path / "future.db"
    store = await opened(path)
    await store.insert_jobs([Job(job_type="a")])
    await store.close()
    with sqlite3.connect(path) as conn:
        conn.execute(f"PRAGMA user_version = {schema.SCHEMA_VERSION + 1}")
    conn.close()
    err = await _refused(path)
    assert err.code == "STORE_TOO_NEW" and str(schema.SCHEMA_VERSION + 1) in err.message
    assert header(path) == (schema.APPLICATION_ID, schema.SCHEMA_VERSION + 1)


# -- schema versions ---------------------------------------------------------------------


async def test_empty_file_migrates_from_version_0_to_current(tmp_path: Path) -> None:
    path = tmp_path / "empty.db"
    path.touch()  # a zero-byte file is an empty SQLite database at version 0
    assert header(path) == (0, 0)
    store = await opened(path)
    await store.insert_jobs([Job(job_type="a")])
    await store.close()
    assert header(path) == (schema.APPLICATION_ID, schema.SCHEMA_VERSION)
    with sqlite3.connect(path) as conn:
        tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")}
        mode = conn.execute("PRAGMA journal_mode").fetchone()[0]
    conn.close()
    assert {"jobs", "batches", "logs", "workers"} <= tables and mode == "wal"


async def test_a_later_migration_step_upgrades_in_place(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The mechanism later releases rely on: version n + one step = version n + 1, data kept."""
    path = tmp_path / "v1.db"
    store = await opened(path)
    await store.insert_jobs([Job(job_type="a", job_id="keep-me")])
    await store.close()
    step = "ALTER TABLE jobs ADD COLUMN shard INTEGER;\nCREATE INDEX jobs_shard ON jobs (shard);"
    monkeypatch.setattr(schema, "MIGRATIONS", [*schema.MIGRATIONS, step])
    monkeypatch.setattr(schema, "SCHEMA_VERSION", len(schema.MIGRATIONS))
    store = await opened(path)
    try:
        assert await store.get_job("keep-me")
    finally:
        await store.close()
    assert header(path) == (schema.APPLICATION_ID, len(schema.MIGRATIONS))
    with sqlite3.connect(path) as conn:
        cols = {r[1] for r in conn.execute("PRAGMA table_info(jobs)")}
    conn.close()
    assert "shard" in cols


async def test_two_processes_opening_a_new_file_migrate_once(tmp_path: Path) -> None:
    path = tmp_path / "race.db"
    stores = [SQLiteStore(path) for _ in range(4)]
    await asyncio.gather(*(s.open() for s in stores))
    try:
        await stores[0].insert_jobs([Job(job_type="a")])
        assert all([await s.count_jobs() == {"pending": 1} for s in stores])
    finally:
        for s in stores:
            await s.close()


# -- query plans ------------------------------------------------------------------------


def _plan(conn: sqlite3.Connection, sql: str, params: list[Any] | tuple[Any, ...]) -> str:
    rows = conn.execute("EXPLAIN QUERY PLAN " + sql, params).fetchall()
    return "\n".join(str(r[-1]) for r in rows)


# Scans that are bounded: the partial jobs_claim holds only pending rows, a page of
# jobs or batches walks jobs_created or batches_created in order and stops at its
# LIMIT, and the partial batches_announce_due holds only the batches whose
# batch.finished announcement is due.
_BOUNDED_SCANS = {
    "SCAN jobs USING COVERING INDEX jobs_claim",
    "SCAN jobs USING COVERING INDEX jobs_created",
    "SCAN batches USING INDEX batches_created",
    "SCAN batches USING INDEX batches_announce_due",
}


def _scans(plan: str) -> list[str]:
    """Plan lines that read a whole table or index."""
    return [
        line
        for line in plan.splitlines()
        if line.startswith(("SCAN jobs", "SCAN logs", "SCAN batches"))
        and line not in _BOUNDED_SCANS
    ]


@pytest.fixture
def plan_db(tmp_path: Path) -> sqlite3.Connection:
    conn = schema.connect(tmp_path / "plan.db", 5.0)
    conn.execute("ANALYZE")
    return conn


@pytest.mark.parametrize(
    "slots", [{"a": 4}, {"a": 100, "b": 2, "pdf.text": 1}], ids=["one type", "three types"]
)
def test_claim_uses_the_claim_index(plan_db: sqlite3.Connection, slots: dict[str, int]) -> None:
    sql, params = claim_statement(
        worker_id="w", slots=slots, limit=8, lease_seconds=30, timeouts={"a": 60}, now=T0
    )
    plan = _plan(plan_db, sql, params)
    assert "SCAN jobs" not in plan, plan  # not even the claim index: a range of it
    assert plan.count("USING COVERING INDEX jobs_claim (job_type=?)") == len(slots), plan


async def test_every_hot_statement_uses_an_index(tmp_path: Path) -> None:
    """Trace the SQL the store really runs for the worker, watchdog and console
    verbs, then EXPLAIN each statement: none reads a whole table or index."""
    path = tmp_path / "trace.db"
    store = await opened(path)
    batch = Batch(name="b")
    await store.create_batch(batch)
    jobs = [Job(job_type="a", batch_id=batch.batch_id, dedupe_key=f"k{i}") for i in range(40)]
    await store.insert_jobs(jobs)
    seen: list[str] = []
    await store._t.read(lambda: store._t.db.set_trace_callback(seen.append))
    try:
        got = await claim(store, 6)
        tok = {j.job_id: j.lease.token for j in got if j.lease}
        ids = list(tok)
        later = T0 + timedelta(hours=1)
        await store.heartbeat(tok, later)
        await store.set_progress(ids[0], tok[ids[0]], Progress(percent=5))
        await store.finish(ids[0], tok[ids[0]], Outcome(status=JobStatus.COMPLETED), now=T0)
        await store.finish_many(
            [(i, tok[i], Outcome(status=JobStatus.FAILED)) for i in ids[1:3]], now=T0
        )
        await store.find_overdue(later)
        await store.finish(
            ids[3], tok[ids[3]], Outcome(status=JobStatus.PENDING), now=later, only_if_overdue=True
        )
        await store.append_logs([LogEntry(job_id=ids[0], ts=T0, message="x")])
        await store.tail_logs(ids[0])
        await store.tail_logs(ids[0], after=T0)
        page = await store.list_jobs(limit=10, newest_first=True)
        await store.list_jobs(limit=10, after=(page[-1].created_at, page[-1].job_id))
        await store.list_jobs(JobFilter(status=[JobStatus.FAILED]), limit=10, newest_first=True)
        await store.list_jobs(JobFilter(batch_id=batch.batch_id), limit=10)
        unfinished = [JobStatus.PENDING, JobStatus.PROCESSING]  # the engine's wait_batch
        await store.list_jobs(JobFilter(batch_id=batch.batch_id, status=unfinished), limit=1)
        await store.list_jobs(JobFilter(job_type=["a"]), limit=10, newest_first=True)
        await store.count_jobs(JobFilter(batch_id=batch.batch_id))
        await store.list_batches()
        await store.get_batch(batch.batch_id)
        await store.get_job(ids[0])
        await store.pending_job_types()
        await store.find_by_dedupe_keys(["k1", "k2"])
        await store.cancel_jobs(job_id=ids[4], now=T0)
        await store.cancel_jobs(batch_id=batch.batch_id, now=T0)
        await store.retry_jobs(batch_id=batch.batch_id, now=T0)
        await store.claim_finished_batches()
    finally:
        await store._t.read(lambda: store._t.db.set_trace_callback(None))
        await store.close()
    statements = [s for s in seen if s.split()[0].upper() in {"SELECT", "UPDATE", "DELETE"}]
    assert len(statements) >= 20
    conn = sqlite3.connect(path)
    try:
        for sql in statements:
            plan = _plan(conn, sql, ())
            assert _scans(plan) == [], f"{sql}\n{plan}"
    finally:
        conn.close()


async def test_status_filter_pages_stay_correct_at_scale(tmp_path: Path) -> None:
    """A page of one status among thousands of others: keyset + filter agree."""
    store = await opened(tmp_path / "many.db")
    try:
        jobs = [Job(job_type="a", created_at=T0 + timedelta(seconds=i)) for i in range(3000)]
        await store.insert_jobs(jobs)
        got = await claim(store, 7)
        page = await store.list_jobs(
            JobFilter(status=[JobStatus.PROCESSING]), limit=5, newest_first=True
        )
        expected = sorted(got, key=lambda j: (j.created_at, j.job_id), reverse=True)[:5]
        assert [j.job_id for j in page] == [j.job_id for j in expected]
    finally:
        await store.close()


async def test_schema_6_finds_the_due_announcements_a_file_had_before_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Schema 6 indexes the batches whose batch.finished is due; a file made at schema 5
    with one due, one sent and one pending gets the index and hands out the due one."""
    path = tmp_path / "v5.db"
    batches = [Batch(name=n, webhook={"url": "https://example.invalid/h"}) for n in "dsp"]
    with monkeypatch.context() as m:
        m.setattr(schema, "MIGRATIONS", schema.MIGRATIONS[:5])
        m.setattr(schema, "SCHEMA_VERSION", 5)
        store = await opened(path)
        for batch, state in zip(batches, ["due", "sent", "pending"], strict=True):
            await store.create_batch(batch)
            await store._t.write(
                store._count,
                "UPDATE batches SET doc = json_set(doc, '$.announce', ?) WHERE batch_id = ?",
                (state, batch.batch_id),
            )
        await store.close()
    assert header(path) == (schema.APPLICATION_ID, 5)
    store = await opened(path)
    try:
        got = await store.claim_finished_batches()
        assert [s.batch.batch_id for s in got] == [batches[0].batch_id]
        assert await store.claim_finished_batches() == []  # handed out once
    finally:
        await store.close()
    assert header(path) == (schema.APPLICATION_ID, 6)
    with sqlite3.connect(path) as conn:
        names = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type='index'")}
    conn.close()
    assert "batches_announce_due" in names
