"""Retention: the engine's sweep, the SQLite schema step it needs, MongoDB's logs TTL
index, and ``jobtui purge``. Time is injected (``now=`` / ``clock``), never waited for.

The purge semantics themselves (dry run counts equal what is deleted, on every
backend) are in the store contract suite (``test_store_contract.py``).
"""

from __future__ import annotations

import asyncio
import io
import sqlite3
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from jobtui.engine.config import Settings, load_settings
from jobtui.engine.models import Batch, Job, JobStatus, LogEntry, Outcome, utcnow
from jobtui.engine.registry import Registry
from jobtui.engine.retention import RetentionSweep, describe, policies, would_delete
from jobtui.engine.store import _sqlite_schema as schema
from jobtui.engine.store.base import Store
from jobtui.engine.store.mongo import MongoStore
from jobtui.engine.store.sqlite import SQLiteStore
from jobtui.engine.worker import Engine
from jobtui.tui.cli import main
from jobtui.tui.purge import parse_duration

T0 = datetime(2031, 5, 4, 12, 0, 0, tzinfo=UTC)
HOUR = timedelta(hours=1)
DAY = timedelta(days=1)


async def seed(
    store: Store, spec: list[tuple[JobStatus, datetime]], batch_id: str | None = None
) -> list[str]:
    """Jobs ended in ``status`` at ``when``, two log lines each (written at ``when``)."""
    jobs = [Job(job_type="a", batch_id=batch_id) for _ in spec]
    await store.insert_jobs(jobs)
    first = min(when for _, when in spec)
    claimed = await store.claim(
        worker_id="w",
        slots={"a": len(jobs)},
        limit=len(jobs),
        lease_seconds=30,
        timeouts={},
        now=first - HOUR,
    )
    tokens = {j.job_id: j.lease.token for j in claimed if j.lease}
    for when in sorted({when for _, when in spec}):
        items = [
            (j.job_id, tokens[j.job_id], Outcome(status=status))
            for j, (status, at) in zip(jobs, spec, strict=True)
            if at == when
        ]
        assert all(await store.finish_many(items, now=when))
    await store.append_logs(
        [
            LogEntry(job_id=j.job_id, ts=when, seq=i, message=f"l{i}")
            for j, (_, when) in zip(jobs, spec, strict=True)
            for i in range(2)
        ]
    )
    return [j.job_id for j in jobs]


@pytest.fixture
async def sqlite_store(tmp_path: Path) -> SQLiteStore:
    store = SQLiteStore(tmp_path / "r.db")
    await store.open()
    yield store  # type: ignore[misc]
    await store.close()


# -- settings -----------------------------------------------------------------------------


def test_retention_defaults_and_environment() -> None:
    s = Settings()
    assert (s.retention_completed_days, s.retention_failed_days) == (None, None)
    assert s.retention_logs_days is None and s.retention_interval == 600
    # The embedded store is jobtui's own file: it keeps finished jobs 30 / 90 days.
    assert policies(s, "sqlite") == [
        ([JobStatus.COMPLETED], 30 * DAY),
        ([JobStatus.FAILED, JobStatus.CANCELLED], 90 * DAY),
    ]
    # A MongoDB database is shared with other programs: nothing goes unless asked.
    assert policies(s, "mongodb") == [] and policies(s, "mongomock") == []
    assert describe(s, "mongodb") == "deletes no jobs"
    env = {"JOBTUI_RETENTION_COMPLETED_DAYS": "0", "JOBTUI_RETENTION_LOGS_DAYS": "7"}
    s = load_settings(environ=env)
    assert s.retention_completed_days == 0 and s.retention_logs_days == 7
    assert policies(s, "sqlite") == [([JobStatus.FAILED, JobStatus.CANCELLED], 90 * DAY)]
    assert policies(s, "mongodb") == []
    # Opt in on MongoDB, per status.
    s = load_settings(
        environ={"JOBTUI_RETENTION_FAILED_DAYS": "365", "JOBTUI_RETENTION_CANCELLED_DAYS": "7"}
    )
    assert policies(s, "mongodb") == [
        ([JobStatus.FAILED], 365 * DAY),
        ([JobStatus.CANCELLED], 7 * DAY),
    ]
    assert describe(s, "mongodb") == (
        "deletes failed after 365 days, cancelled after 7 days; keeps completed forever"
    )


async def test_mongodb_store_deletes_nothing_by_default() -> None:
    """The seed's two-year-old history in a MongoDB store survives a sweep unasked."""
    store = MongoStore.in_memory()
    await store.open()
    try:
        ids = await seed(store, [(JobStatus.COMPLETED, T0), (JobStatus.FAILED, T0)])
        later = T0 + 800 * DAY
        sweep = RetentionSweep(store, Settings(), clock=lambda: later)
        assert (await would_delete(store, Settings(), later)).jobs == 0
        assert (await sweep.sweep()).jobs == 0
        assert all([await store.get_job(i) for i in ids])
        opted = Settings(retention_completed_days=365)
        assert (await would_delete(store, opted, later)).jobs == 1
        assert (await RetentionSweep(store, opted).sweep(later)).jobs == 1
        assert await store.count_jobs() == {"failed": 1}
    finally:
        await store.close()


# -- the sweep ----------------------------------------------------------------------------


async def test_sweep_expires_each_status_after_its_period(sqlite_store: SQLiteStore) -> None:
    store = sqlite_store
    batch = Batch(name="b", created_at=T0)
    await store.create_batch(batch)
    C, F, X = JobStatus.COMPLETED, JobStatus.FAILED, JobStatus.CANCELLED
    done, failed, cancelled = await seed(store, [(C, T0), (F, T0), (X, T0)], batch.batch_id)
    waiting = Job(job_type="b", batch_id=batch.batch_id)
    await store.insert_jobs([waiting])
    await store.append_logs([LogEntry(job_id=waiting.job_id, ts=T0 - 5 * DAY, message="old")])
    settings = Settings(retention_completed_days=1, retention_failed_days=2)
    sweep = RetentionSweep(store, settings, clock=lambda: T0 + 12 * HOUR)

    assert (await sweep.sweep()).jobs == 0  # nothing has expired yet
    first = await sweep.sweep(T0 + DAY + HOUR)
    assert (first.jobs, first.logs, first.batches) == (1, 2, 0)
    assert await store.get_job(done) is None
    assert await store.get_job(failed) and await store.get_job(cancelled)
    second = await sweep.sweep(T0 + 2 * DAY + HOUR)
    assert (second.jobs, second.logs, second.batches) == (2, 4, 0)  # the batch still waits
    assert await store.count_jobs() == {"pending": 1}
    # Without a logs period a log line lives as long as its job, however old.
    assert len(await store.tail_logs(waiting.job_id)) == 1
    assert sweep.sweeps == 3 and sweep.deleted.jobs == 3


async def test_logs_period_and_zero_disables(sqlite_store: SQLiteStore) -> None:
    store = sqlite_store
    ids = await seed(store, [(JobStatus.COMPLETED, T0), (JobStatus.FAILED, T0 - 3 * DAY)])
    settings = Settings(retention_completed_days=0, retention_failed_days=0, retention_logs_days=2)
    result = await RetentionSweep(store, settings).sweep(T0 + DAY)
    assert (result.jobs, result.logs) == (0, 2)  # only the failed job's old lines
    assert await store.tail_logs(ids[1]) == [] and len(await store.tail_logs(ids[0])) == 2
    result = await RetentionSweep(store, settings).sweep(T0 + 1000 * DAY)
    assert (result.jobs, result.logs) == (0, 2)
    assert await store.count_jobs() == {"completed": 1, "failed": 1}  # 0 keeps jobs forever


async def test_engine_runs_the_sweep_with_its_clock(sqlite_store: SQLiteStore) -> None:
    store = sqlite_store
    old = utcnow() - 40 * DAY
    expired, kept = await seed(
        store, [(JobStatus.COMPLETED, old), (JobStatus.COMPLETED, utcnow() - DAY)]
    )
    settings = Settings(retention_interval=0.05, poll_interval=0.05)
    engine = Engine(store, Registry(), settings)
    assert engine.retention is not None
    engine.retention.clock = lambda: utcnow() + 5 * DAY  # kept is 6 days old then: stays
    await engine.start()
    try:
        for _ in range(200):  # the first sweep comes after a short random pause
            if engine.retention.sweeps:
                break
            await asyncio.sleep(0.02)
        assert engine.retention.sweeps >= 1
    finally:
        await engine.stop(grace=0)
    assert await store.get_job(expired) is None and await store.get_job(kept)
    assert Engine(store, Registry(), settings, run_watchdog=False).retention is None


async def test_a_failing_sweep_is_logged_and_retried(
    sqlite_store: SQLiteStore, caplog: pytest.LogCaptureFixture
) -> None:
    sweep = RetentionSweep(sqlite_store, Settings(retention_interval=0.01))
    calls = 0

    async def broken(**kw: object) -> None:
        nonlocal calls
        calls += 1
        raise RuntimeError("store down")

    sweep.store.purge_jobs = broken  # type: ignore[method-assign]
    task = sweep.start()
    for _ in range(300):
        if calls >= 2:
            break
        await asyncio.sleep(0.01)
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)
    assert calls >= 2 and "retention sweep failed: RuntimeError: store down" in caplog.text


# -- SQLite: schema v2, chunks, plans -------------------------------------------------------


async def test_version_1_file_gains_the_retention_indexes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "v1.db"
    with monkeypatch.context() as m:
        m.setattr(schema, "MIGRATIONS", schema.MIGRATIONS[:1])
        m.setattr(schema, "SCHEMA_VERSION", 1)
        store = SQLiteStore(path)
        await store.open()
        await store.insert_jobs([Job(job_type="a", job_id="keep-me")])
        await store.close()
    store = SQLiteStore(path)
    await store.open()
    try:
        assert await store.get_job("keep-me") and await store.missing_indexes() == []
    finally:
        await store.close()
    conn = sqlite3.connect(path)
    try:
        names = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type='index'")}
        assert conn.execute("PRAGMA user_version").fetchone()[0] == schema.SCHEMA_VERSION
    finally:
        conn.close()
    assert {"jobs_finished", "logs_ts"} <= names


async def test_sqlite_purge_runs_in_chunks_and_uses_indexes(sqlite_store: SQLiteStore) -> None:
    """1,200 jobs go in three short transactions; no statement scans jobs or logs."""
    store = sqlite_store
    await seed(store, [(JobStatus.COMPLETED, T0)] * 1200)
    await seed(store, [(JobStatus.FAILED, T0)] * 5)
    seen: list[str] = []
    await store._t.read(lambda: store._t.db.set_trace_callback(seen.append))
    try:
        dry = await store.purge_jobs(
            older_than=T0 + HOUR, statuses=[JobStatus.COMPLETED], dry_run=True
        )
        real = await store.purge_jobs(older_than=T0 + HOUR, statuses=[JobStatus.COMPLETED])
        await store.purge_logs(older_than=T0 + HOUR, dry_run=True)
        await store.purge_logs(older_than=T0 + HOUR)
    finally:
        await store._t.read(lambda: store._t.db.set_trace_callback(None))
    assert (dry.jobs, dry.logs) == (real.jobs, real.logs) == (1200, 2400)
    assert sum(s.startswith("DELETE FROM jobs") for s in seen) == 3
    assert sum(s.startswith("BEGIN") for s in seen) >= 4  # 3 chunks + empty batches
    statements = [s for s in seen if s.split()[0].upper() in {"SELECT", "DELETE"}]
    for sql in statements:
        plan = await store._t.read(
            lambda sql=sql: store._t.db.execute("EXPLAIN QUERY PLAN " + sql).fetchall()
        )
        scans = [r[-1] for r in plan if str(r[-1]).startswith(("SCAN jobs", "SCAN logs"))]
        assert scans == [], f"{sql}\n{plan}"


# -- MongoDB: the logs TTL index --------------------------------------------------------------


async def test_mongo_logs_ttl_index_is_created_and_checked() -> None:
    store = MongoStore.in_memory()
    store.logs_ttl_seconds = 7 * 86400
    await store.open()
    try:
        info = await store._logs.index_information()
        ttl = [spec for spec in info.values() if spec["key"] == [("ts", 1)]]
        assert ttl and ttl[0]["expireAfterSeconds"] == 7 * 86400
        assert await store.missing_indexes() == []
        await store._logs.drop_index([("ts", 1)])
        assert await store.missing_indexes() == ["job_logs: ts 1"]
        # Another period on an existing index: changed in place where the server can
        # (collMod); mongomock cannot, and open() still succeeds.
        await store.open()
        store.logs_ttl_seconds = 86400
        await store.open()
    finally:
        await store.close()
    plain = MongoStore.in_memory()
    await plain.open()
    try:
        info = await plain._logs.index_information()
        assert not any(spec.get("expireAfterSeconds") for spec in info.values())
    finally:
        await plain.close()


def test_factory_passes_the_logs_period_to_mongodb() -> None:
    from jobtui.engine.store.factory import make_store

    store = make_store(Settings(mongodb_uri="mongodb://127.0.0.1:1", retention_logs_days=2))
    assert isinstance(store, MongoStore) and store.logs_ttl_seconds == 2 * 86400
    store = make_store(Settings(mongodb_uri="mongodb://127.0.0.1:1"))
    assert isinstance(store, MongoStore) and store.logs_ttl_seconds is None


# -- jobtui purge ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("30d", timedelta(days=30)),
        ("12h", timedelta(hours=12)),
        ("90m", timedelta(minutes=90)),
        ("2w", timedelta(weeks=2)),
        ("1.5d", timedelta(hours=36)),
        ("45s", timedelta(seconds=45)),
    ],
)
def test_durations(text: str, expected: timedelta) -> None:
    assert parse_duration(text) == expected


@pytest.fixture
def db(tmp_path: Path) -> Path:
    """A store with 2 completed jobs 40 days old (4 log lines, one batch of their own),
    one completed yesterday and one failed 40 days ago."""
    path = tmp_path / "q.db"

    async def fill() -> None:
        store = SQLiteStore(path)
        await store.open()
        try:
            old = utcnow() - 40 * DAY
            batch = Batch(name="old", created_at=old - HOUR)
            await store.create_batch(batch)
            await seed(store, [(JobStatus.COMPLETED, old)] * 2, batch.batch_id)
            await seed(store, [(JobStatus.COMPLETED, utcnow() - DAY), (JobStatus.FAILED, old)])
        finally:
            await store.close()

    asyncio.run(fill())
    return path


def counts(path: Path) -> dict[str, int]:
    async def run() -> dict[str, int]:
        store = SQLiteStore(path)
        await store.open()
        try:
            return await store.count_jobs()
        finally:
            await store.close()

    return asyncio.run(run())


PURGE = ["purge", "--older-than", "30d", "--status", "completed"]


def test_cli_dry_run_counts_and_deletes_nothing(
    db: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main([*PURGE, "--dry-run", "--store", str(db)]) == 0
    out = capsys.readouterr().out
    assert out.startswith("would delete 2 jobs, 4 log lines, 1 batches (completed jobs finished")
    assert counts(db) == {"completed": 3, "failed": 1}


def test_cli_yes_deletes_what_the_dry_run_counted(
    db: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main([*PURGE, "--status", "failed", "--dry-run", "--store", str(db)]) == 0
    counted = capsys.readouterr().out.split(" (")[0].removeprefix("would delete ")
    assert main([*PURGE, "--status", "failed", "--yes", "--store", str(db)]) == 0
    deleted = capsys.readouterr().out.split(" (")[0].removeprefix("deleted ")
    assert counted == deleted == "3 jobs, 6 log lines, 1 batches"
    assert counts(db) == {"completed": 1}


def test_cli_refuses_without_a_terminal_or_yes(
    db: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("sys.stdin", io.StringIO("y\n"))  # not a TTY
    assert main([*PURGE, "--store", str(db)]) == 2
    err = capsys.readouterr().err
    assert (
        err.startswith("jobtui: USAGE: purge deletes jobs: without a terminal") and "--yes" in err
    )
    assert counts(db) == {"completed": 3, "failed": 1}


class _Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


@pytest.mark.parametrize(
    ("answer", "code", "left"),
    [
        ("y\n", 0, {"completed": 1, "failed": 1}),
        ("n\n", 1, {"completed": 3, "failed": 1}),
    ],
)
def test_cli_asks_on_a_terminal(
    db: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    answer: str,
    code: int,
    left: dict[str, int],
) -> None:
    monkeypatch.setattr("sys.stdin", _Terminal(answer))
    assert main([*PURGE, "--store", str(db)]) == code
    out, err = capsys.readouterr()
    assert out.startswith("would delete 2 jobs, 4 log lines, 1 batches")
    assert "delete 2 jobs, 4 log lines, 1 batches? [y/N]" in err
    assert ("deleted 2 jobs" in out) == (code == 0)
    assert counts(db) == left


@pytest.mark.parametrize(
    "argv",
    [
        ["purge", "--older-than", "30x", "--status", "completed"],
        ["purge", "--older-than", "0d", "--status", "completed"],
        ["purge", "--older-than", "30d", "--status", "pending", "--yes"],
    ],
)
def test_cli_usage_errors_exit_2(
    db: Path, capsys: pytest.CaptureFixture[str], argv: list[str]
) -> None:
    assert main([*argv, "--store", str(db)]) == 2
    assert capsys.readouterr().err.startswith("jobtui: USAGE: ")
    assert counts(db) == {"completed": 3, "failed": 1}


def test_cli_needs_a_status(db: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["purge", "--older-than", "30d", "--store", str(db)]) == 2
    assert "--status" in capsys.readouterr().err
    assert counts(db) == {"completed": 3, "failed": 1}


def test_cli_dry_run_alone_says_what_retention_would_delete(
    db: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["purge", "--dry-run", "--store", str(db)]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0].endswith(
        "deletes completed after 30 days, failed after 90 days, cancelled after 90 days"
    )
    assert out[1] == "would delete 2 jobs, 4 log lines, 1 batches now"  # the 40-day-old ones
    assert counts(db) == {"completed": 3, "failed": 1}


def test_purge_of_many_jobs_is_quick(tmp_path: Path) -> None:
    """5,000 finished jobs (10,000 log lines): dry run and purge, each well under 10 s."""

    async def run() -> tuple[float, float]:
        store = SQLiteStore(tmp_path / "many.db")
        await store.open()
        try:
            await seed(store, [(JobStatus.COMPLETED, T0)] * 5000)
            started = time.perf_counter()
            dry = await store.purge_jobs(
                older_than=T0 + HOUR, statuses=[JobStatus.COMPLETED], dry_run=True
            )
            counted = time.perf_counter() - started
            started = time.perf_counter()
            real = await store.purge_jobs(older_than=T0 + HOUR, statuses=[JobStatus.COMPLETED])
            assert dry.jobs == real.jobs == 5000 and dry.logs == real.logs == 10_000
            return counted, time.perf_counter() - started
        finally:
            await store.close()

    counted, deleted = asyncio.run(run())
    assert counted < 10 and deleted < 10


def test_operations_guide_purge_examples_run(db: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """docs/operations.md: the purge commands shown run here, and the dry run prints
    a line of the shape shown."""
    import re
    import shlex

    text = (Path(__file__).resolve().parents[1] / "docs" / "operations.md").read_text("utf-8")
    section = text[text.index("## Retention and purge") :]
    lines = [
        ln
        for block in re.findall(r"```sh\n(.*?)```", section, flags=re.DOTALL)
        for ln in block.splitlines()
        if ln.startswith("jobtui purge")
    ]
    assert len(lines) == 3 and "--dry-run" in lines[0]
    shown = re.search(r"```text\n(would delete .*?)\n```", section)
    assert shown is not None
    shape = re.compile(
        r"would delete \d+ jobs, \d+ log lines, \d+ batches \(completed jobs "
        r"finished before \d{4}-\d\d-\d\d \d\d:\d\d UTC\)"
    )
    assert shape.fullmatch(shown.group(1))
    assert main([*shlex.split(lines[0])[1:], "--store", str(db)]) == 0
    assert shape.fullmatch(capsys.readouterr().out.strip())
    # --yes, a batch named by a prefix (one must exist: an unknown id is an error)
    asyncio.run(_add_batch(db, "3f2a9c0e1b7d" + "0" * 20))
    assert main([*shlex.split(lines[2])[1:], "--store", str(db)]) == 0
    assert capsys.readouterr().out.startswith("deleted 0 jobs, 0 log lines, 0 batches")


async def _add_batch(path: Path, batch_id: str) -> None:
    store = SQLiteStore(path)
    await store.open()
    try:
        await store.create_batch(Batch(batch_id=batch_id, name="docs example"))
    finally:
        await store.close()
