"""The embedded store: the engine's storage interface on one SQLite file.

The default when no MongoDB is configured. One file (WAL mode, ``busy_timeout``)
is shared safely by several local processes: every write runs in a
``BEGIN IMMEDIATE`` transaction, so writers serialize on SQLite's lock, and the
claim is one ``UPDATE ... RETURNING`` over an indexed subquery (never
read-then-update). The event loop never blocks on SQLite: every operation runs
on one dedicated thread per store, which owns the connection.

File format, schema and migrations: ``engine/store/_sqlite_schema.py``.
"""

from __future__ import annotations

import asyncio
import os
import sqlite3
import time
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, TypeVar

from engine.models import (
    Batch,
    BatchSummary,
    ErrorCode,
    Job,
    JobFilter,
    JobStatus,
    LogEntry,
    Outcome,
    Progress,
    WorkerInfo,
    utcnow,
)
from engine.store import _sqlite_schema as schema
from engine.store._sqlite_schema import dumps, from_us, loads, to_us
from engine.store.base import InsertResult, JobCursor, LeaseState, Store, StoreError

T = TypeVar("T")

_COLUMNS = (
    "job_id", "job_type", "status", "priority", "created_at", "run_after",
    "cancel_requested", "batch_id", "dedupe_key", "lease_owner", "lease_token",
    "lease_expires_at", "timeout_at", "attempts", "max_attempts", "started_at",
    "completed_at", "updated_at", "worker_id",
)  # fmt: skip
_SELECT = ", ".join(_COLUMNS) + ", doc"
_TIME_COLUMNS = frozenset(
    {"created_at", "run_after", "lease_expires_at", "timeout_at", "started_at",
     "completed_at", "updated_at"}
)  # fmt: skip
# Fields of Job that have their own column (``lease`` is spread over three).
_COLUMN_FIELDS = frozenset(_COLUMNS) | {"lease"}
# Known optional fields not worth storing when empty.
_DROP_IF_NONE = frozenset({"results", "error", "progress", "webhook", "logs"})
_CHUNK = 500  # keeps IN (...) lists far below SQLite's variable limit
_LOCK_RETRIES = 5


def _job_row(job: Job) -> tuple[Any, ...]:
    data = job.model_dump()
    lease = data.get("lease") or {}
    doc = {
        k: v
        for k, v in data.items()
        if k not in _COLUMN_FIELDS and not (v is None and k in _DROP_IF_NONE)
    }
    values: list[Any] = []
    for col in _COLUMNS:
        if col == "lease_owner":
            values.append(lease.get("owner"))
        elif col == "lease_token":
            values.append(lease.get("token"))
        elif col == "lease_expires_at":
            values.append(to_us(lease.get("expires_at")))
        elif col in _TIME_COLUMNS:
            values.append(to_us(data[col]))
        elif col == "status":
            values.append(str(data[col]))
        elif col == "cancel_requested":
            values.append(int(bool(data[col])))
        else:
            values.append(data[col])
    values.append(dumps(doc))
    return tuple(values)


def _row_job(row: Sequence[Any]) -> Job:
    data: dict[str, Any] = loads(row[-1])
    for col, value in zip(_COLUMNS, row, strict=False):
        if col.startswith("lease_"):
            continue  # folded into ``lease`` below
        if col in _TIME_COLUMNS:
            data[col] = from_us(value)
        elif col == "cancel_requested":
            data[col] = bool(value)
        else:
            data[col] = value
    owner, token, expires = row[9], row[10], row[11]
    data["lease"] = (
        {"owner": owner, "token": token, "expires_at": from_us(expires)} if token else None
    )
    return Job.model_validate(data)


def _claim_order(job: Job) -> tuple[int, datetime, str]:
    return (-job.priority, job.created_at, job.job_id)


def _where(flt: JobFilter | None) -> tuple[str, list[Any]]:
    """SQL conditions (joined with AND, or ``1``) and parameters for a filter."""
    clauses: list[str] = []
    params: list[Any] = []
    if flt is not None:
        if flt.status is not None:
            clauses.append(f"status IN ({_marks(flt.status)})")
            params += [str(s) for s in flt.status]
        if flt.job_type is not None:
            clauses.append(f"job_type IN ({_marks(flt.job_type)})")
            params += list(flt.job_type)
        if flt.batch_id is not None:
            clauses.append("batch_id = ?")
            params.append(flt.batch_id)
        if flt.text:
            # A scan either way (substring); instr() needs no LIKE escaping.
            clauses.append(
                "(instr(lower(job_id), ?) > 0"
                " OR instr(lower(json_extract(doc, '$.parameters.path')), ?) > 0"
                " OR instr(lower(json_extract(doc, '$.error.code')), ?) > 0)"
            )
            params += [flt.text.lower()] * 3
    return (" AND ".join(clauses) or "1"), params


def _marks(values: Sequence[Any]) -> str:
    return ", ".join("?" * len(values)) if values else "NULL"


def _chunks(values: Sequence[T]) -> list[Sequence[T]]:
    return [values[i : i + _CHUNK] for i in range(0, len(values), _CHUNK)]


def _is_busy(exc: BaseException) -> bool:
    msg = str(exc).lower()
    return isinstance(exc, sqlite3.OperationalError) and ("locked" in msg or "busy" in msg)


class SQLiteStore(Store):
    """The storage interface on one SQLite file (see the module docstring)."""

    kind = "sqlite"

    def __init__(self, path: str | os.PathLike[str], *, busy_timeout: float = 10.0) -> None:
        self.path = Path(path).expanduser()
        self._busy_timeout = busy_timeout
        self._pool: ThreadPoolExecutor | None = None
        self._conn: sqlite3.Connection | None = None

    @property
    def description(self) -> str:
        return f"sqlite:{self.path}"

    # -- plumbing: one thread owns the connection --------------------------------

    async def _run(self, fn: Callable[..., T], *args: Any) -> T:
        if self._pool is None:
            raise StoreError("STORE_CLOSED", f"{self.description} is not open")
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._pool, self._guard, fn, args)

    def _guard(self, fn: Callable[..., T], args: tuple[Any, ...]) -> T:
        try:
            return fn(*args)
        except sqlite3.DatabaseError as exc:
            if isinstance(exc, sqlite3.IntegrityError) or _is_busy(exc):
                raise
            if "malformed" in str(exc) or "not a database" in str(exc):
                raise StoreError("STORE_CORRUPT", f"{self.path} is corrupt: {exc}") from exc
            raise

    @property
    def _db(self) -> sqlite3.Connection:
        assert self._conn is not None, "only used on the store thread after open()"
        return self._conn

    def _write(self, fn: Callable[..., T], *args: Any) -> T:
        """Run ``fn`` in one BEGIN IMMEDIATE transaction (on the store thread).

        ``busy_timeout`` already waits for other processes' writes; the retries
        cover the rare SQLITE_BUSY that SQLite returns without waiting.
        """
        db = self._db
        for attempt in range(_LOCK_RETRIES):
            try:
                db.execute("BEGIN IMMEDIATE")
                result = fn(*args)
                db.execute("COMMIT")
                return result
            except BaseException as exc:
                if db.in_transaction:
                    db.execute("ROLLBACK")
                if not _is_busy(exc) or attempt == _LOCK_RETRIES - 1:
                    raise
                time.sleep(0.02 * 2**attempt)
        raise AssertionError("unreachable")

    def _read(self, sql: str, params: Sequence[Any] = ()) -> list[Any]:
        return self._db.execute(sql, params).fetchall()

    # -- lifecycle ----------------------------------------------------------------

    async def open(self) -> None:
        if self._pool is not None:
            return
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="jobtui-sqlite")
        try:
            await self._run(self._open)
        except BaseException:
            self._pool.shutdown(wait=False)
            self._pool = None
            raise

    def _open(self) -> None:
        self._conn = schema.connect(self.path, self._busy_timeout)

    async def close(self) -> None:
        if self._pool is None:
            return
        try:
            await self._run(self._close)
        finally:
            self._pool.shutdown(wait=True)
            self._pool = None

    def _close(self) -> None:
        if self._conn is not None:
            try:
                self._conn.execute("PRAGMA optimize")
            finally:
                self._conn.close()
                self._conn = None

    async def ping(self) -> bool:
        if self._pool is None:
            return False
        try:
            return bool(await self._run(lambda: self._read("SELECT 1")))
        except (sqlite3.Error, StoreError):
            return False

    # -- enqueue ------------------------------------------------------------------

    async def create_batch(self, batch: Batch) -> None:
        data = batch.model_dump()
        row = (data.pop("batch_id"), to_us(data.pop("created_at")), dumps(data))
        await self._run(
            self._write,
            lambda: self._db.execute(
                "INSERT INTO batches (batch_id, created_at, doc) VALUES (?, ?, ?)", row
            ),
        )

    async def insert_jobs(self, jobs: Sequence[Job]) -> InsertResult:
        rows = [(job.job_id, job.dedupe_key, _job_row(job)) for job in jobs]
        return await self._run(self._write, self._insert_rows, rows)

    def _insert_rows(self, rows: list[tuple[str, str | None, tuple[Any, ...]]]) -> InsertResult:
        # ON CONFLICT(dedupe_key) ignores only a dedupe clash; a clashing job_id
        # still raises. The unique index decides, so two processes cannot both win.
        sql = (
            f"INSERT INTO jobs ({_SELECT}) VALUES ({_marks(_COLUMNS + ('doc',))})"
            " ON CONFLICT(dedupe_key) DO NOTHING"
        )
        result = InsertResult()
        for job_id, key, values in rows:
            if self._db.execute(sql, values).rowcount:
                result.inserted.append(job_id)
            else:
                result.duplicates.append(key or job_id)
        return result

    async def find_by_dedupe_keys(self, keys: Sequence[str]) -> dict[str, Job]:
        def run() -> dict[str, Job]:
            out: dict[str, Job] = {}
            for part in _chunks(list(keys)):
                sql = f"SELECT {_SELECT} FROM jobs WHERE dedupe_key IN ({_marks(part)})"
                for row in self._read(sql, part):
                    job = _row_job(row)
                    out[job.dedupe_key or ""] = job
            return out

        return await self._run(run)

    async def _insert_raw_job(self, doc: dict[str, Any]) -> None:
        """Test-only: insert a legacy seed-shaped document (no ``job_type``, an
        embedded ``logs`` array, unknown fields) the way an old deployment left it."""
        job = Job.model_validate(doc)  # job_type defaults to "session"; extras kept
        await self._run(self._write, self._insert_rows, [(job.job_id, None, _job_row(job))])

    # -- worker verbs -------------------------------------------------------------

    async def claim(
        self,
        *,
        worker_id: str,
        slots: Mapping[str, int],
        limit: int,
        lease_seconds: float,
        timeouts: Mapping[str, float | None],
        now: datetime,
    ) -> list[Job]:
        types = [t for t, n in slots.items() if n > 0]
        if not types or limit <= 0:
            return []
        now_us = to_us(now)
        expires = to_us(now + timedelta(seconds=lease_seconds))
        # SET parameters come first: "?" are numbered in textual order.
        params: list[Any] = [now_us, now_us, worker_id, worker_id, expires]
        timeout_sql = "NULL"
        timed = [(t, timeouts[t]) for t in types if timeouts.get(t) is not None]
        if timed:
            timeout_sql = "CASE job_type " + "WHEN ? THEN ? " * len(timed) + "END"
            for t, secs in timed:
                params += [t, to_us(now + timedelta(seconds=float(secs or 0)))]
        # One indexed, limited pick per job type (each O(log n) on jobs_claim),
        # merged in claim order under the overall limit: at most slots[t] of a
        # type and at most `limit` in all, in one statement.
        picks = []
        for t in types:
            picks.append(
                "SELECT * FROM (SELECT job_id, priority, created_at FROM jobs"
                " WHERE status = 'pending' AND job_type = ? AND cancel_requested = 0"
                " AND (run_after IS NULL OR run_after <= ?)"
                " ORDER BY priority DESC, created_at, job_id LIMIT ?)"
            )
            params += [t, now_us, min(slots[t], limit)]
        params.append(limit)
        sql = (
            "UPDATE jobs SET status = 'processing', attempts = attempts + 1,"
            " started_at = ?, updated_at = ?, worker_id = ?, lease_owner = ?,"
            " lease_token = lower(hex(randomblob(8))), lease_expires_at = ?,"
            f" timeout_at = {timeout_sql}"
            " WHERE job_id IN (SELECT job_id FROM ("
            + " UNION ALL ".join(picks)
            + ") ORDER BY priority DESC, created_at, job_id LIMIT ?)"
            f" RETURNING {_SELECT}"
        )

        def run() -> list[Job]:
            return [_row_job(r) for r in self._db.execute(sql, params).fetchall()]

        jobs = await self._run(self._write, run)
        jobs.sort(key=_claim_order)  # RETURNING order is unspecified
        return jobs

    async def heartbeat(
        self, leases: Mapping[str, str], expires_at: datetime
    ) -> dict[str, LeaseState]:
        if not leases:
            return {}
        until = to_us(expires_at)

        def run() -> dict[str, LeaseState]:
            out: dict[str, LeaseState] = {}
            for job_id, token in leases.items():
                row = self._db.execute(
                    "UPDATE jobs SET lease_expires_at = ? WHERE job_id = ?"
                    " AND lease_token = ? AND status = 'processing' RETURNING cancel_requested",
                    (until, job_id, token),
                ).fetchone()
                if row is None:
                    out[job_id] = LeaseState.LOST
                else:
                    out[job_id] = LeaseState.CANCEL if row[0] else LeaseState.HELD
            return out

        return await self._run(self._write, run)

    async def set_progress(self, job_id: str, token: str, progress: Progress) -> bool:
        args = (dumps(progress.model_dump()), to_us(utcnow()), job_id, token)

        def run() -> bool:
            cur = self._db.execute(
                "UPDATE jobs SET doc = json_set(doc, '$.progress', json(?)), updated_at = ?"
                " WHERE job_id = ? AND lease_token = ? AND status = 'processing'",
                args,
            )
            return cur.rowcount > 0

        return await self._run(self._write, run)

    async def finish(
        self,
        job_id: str,
        token: str,
        outcome: Outcome,
        *,
        now: datetime,
        only_if_overdue: bool = False,
    ) -> bool:
        now_us = to_us(now)
        error = dumps(outcome.error.model_dump()) if outcome.error else None
        if outcome.status.terminal:
            sets = (
                "status = ?, completed_at = ?, updated_at = ?, lease_owner = NULL,"
                " lease_token = NULL, lease_expires_at = NULL,"
                " doc = json_set(doc, '$.results', json(?), '$.error', json(?))"
            )
            params: list[Any] = [
                str(outcome.status), now_us, now_us,
                dumps(outcome.results), error or "null",
            ]  # fmt: skip
        else:
            # Back to the queue (a retry, or a graceful hand-back).
            sets = (
                "status = ?, run_after = ?, updated_at = ?, completed_at = NULL,"
                " lease_owner = NULL, lease_token = NULL, lease_expires_at = NULL,"
                " timeout_at = NULL, attempts = attempts - ?,"
                " doc = CASE WHEN ? IS NULL THEN doc ELSE json_set(doc, '$.error', json(?)) END"
            )
            params = [
                str(outcome.status), to_us(outcome.run_after), now_us,
                1 if outcome.refund_attempt else 0, error, error,
            ]  # fmt: skip
        sql = f"UPDATE jobs SET {sets} WHERE job_id = ? AND lease_token = ? AND status = 'processing'"
        params += [job_id, token]
        if only_if_overdue:
            sql += " AND (lease_expires_at < ? OR timeout_at < ?)"
            params += [now_us, now_us]

        def run() -> bool:
            return self._db.execute(sql, params).rowcount > 0

        return await self._run(self._write, run)

    async def append_logs(self, entries: Sequence[LogEntry]) -> None:
        if not entries:
            return
        rows = [(e.job_id, to_us(e.ts), e.seq, e.level, e.message) for e in entries]
        await self._run(
            self._write,
            lambda: self._db.executemany(
                "INSERT INTO logs (job_id, ts, seq, level, message) VALUES (?, ?, ?, ?, ?)", rows
            ),
        )

    # -- watchdog -----------------------------------------------------------------

    async def find_overdue(self, now: datetime, limit: int = 100) -> list[Job]:
        now_us = to_us(now)
        sql = (
            f"SELECT {_SELECT} FROM jobs WHERE status = 'processing'"
            " AND (lease_expires_at < ? OR timeout_at < ?) ORDER BY lease_expires_at LIMIT ?"
        )
        rows = await self._run(self._read, sql, (now_us, now_us, limit))
        return [_row_job(r) for r in rows]

    # -- operator verbs -----------------------------------------------------------

    async def get_job(self, job_id: str) -> Job | None:
        rows = await self._run(self._read, f"SELECT {_SELECT} FROM jobs WHERE job_id = ?", (job_id,))
        return _row_job(rows[0]) if rows else None

    async def list_jobs(
        self,
        flt: JobFilter | None = None,
        *,
        limit: int = 50,
        after: JobCursor | None = None,
        newest_first: bool = False,
    ) -> list[Job]:
        where, params = _where(flt)
        op, order = ("<", "DESC") if newest_first else (">", "ASC")
        if after is not None:
            where += f" AND (created_at, job_id) {op} (?, ?)"
            params += [to_us(after[0]), after[1]]
        sql = (
            f"SELECT {_SELECT} FROM jobs WHERE {where}"
            f" ORDER BY created_at {order}, job_id {order} LIMIT ?"
        )
        rows = await self._run(self._read, sql, (*params, limit))
        return [_row_job(r) for r in rows]

    async def count_jobs(self, flt: JobFilter | None = None) -> dict[str, int]:
        where, params = _where(flt)
        sql = f"SELECT status, count(*) FROM jobs WHERE {where} GROUP BY status"
        rows = await self._run(self._read, sql, params)
        return {status: n for status, n in rows}

    async def get_batch(self, batch_id: str) -> BatchSummary | None:
        summaries = await self._run(
            self._batches, "SELECT batch_id, created_at, doc FROM batches WHERE batch_id = ?",
            (batch_id,),
        )  # fmt: skip
        return summaries[0] if summaries else None

    async def list_batches(self, *, limit: int = 50) -> list[BatchSummary]:
        return await self._run(
            self._batches,
            "SELECT batch_id, created_at, doc FROM batches"
            " ORDER BY created_at DESC, batch_id DESC LIMIT ?",
            (limit,),
        )

    def _batches(self, sql: str, params: Sequence[Any]) -> list[BatchSummary]:
        """Batches with counts derived from job states: one GROUP BY over the
        covering (batch_id, status, started_at, completed_at) index for all of them."""
        batches = []
        for batch_id, created, doc in self._read(sql, params):
            data = loads(doc)
            data.update(batch_id=batch_id, created_at=from_us(created))
            batches.append(Batch.model_validate(data))
        stats: dict[str, tuple[dict[str, int], list[int], list[int]]] = {
            b.batch_id: ({}, [], []) for b in batches
        }
        for part in _chunks(list(stats)):
            for batch_id, status, n, first, last in self._read(
                "SELECT batch_id, status, count(*), min(started_at), max(completed_at)"
                f" FROM jobs WHERE batch_id IN ({_marks(part)}) GROUP BY batch_id, status",
                part,
            ):
                counts, starts, ends = stats[batch_id]
                counts[status] = n
                if first is not None:
                    starts.append(first)
                if last is not None:
                    ends.append(last)
        out = []
        for b in batches:
            counts, starts, ends = stats[b.batch_id]
            out.append(
                BatchSummary(
                    batch=b,
                    counts=counts,
                    first_started_at=from_us(min(starts)) if starts else None,
                    last_completed_at=from_us(max(ends)) if ends else None,
                )
            )
        return out

    async def tail_logs(
        self, job_id: str, *, limit: int = 200, after: datetime | None = None
    ) -> list[LogEntry]:
        where, params = "job_id = ?", [job_id]
        if after is not None:
            where += " AND ts > ?"
            params.append(to_us(after))
        sql = (
            f"SELECT job_id, ts, seq, level, message FROM logs WHERE {where}"
            " ORDER BY ts DESC, seq DESC, id DESC LIMIT ?"
        )
        rows = await self._run(self._read, sql, (*params, limit))
        return [
            LogEntry(job_id=j, ts=from_us(ts), seq=seq, level=level, message=msg)
            for j, ts, seq, level, msg in reversed(rows)
        ]

    def _selector(self, job_id: str | None, batch_id: str | None) -> tuple[str, list[Any]]:
        clauses, params = [], []
        if job_id is not None:
            clauses.append("job_id = ?")
            params.append(job_id)
        if batch_id is not None:
            clauses.append("batch_id = ?")
            params.append(batch_id)
        return (" AND ".join(clauses) or "1"), params

    async def cancel_jobs(
        self, *, job_id: str | None = None, batch_id: str | None = None, now: datetime
    ) -> int:
        where, params = self._selector(job_id, batch_id)
        now_us = to_us(now)
        error = dumps({"code": ErrorCode.CANCELLED.value, "message": "cancelled by an operator"})

        def run() -> int:
            pending = self._db.execute(
                "UPDATE jobs SET status = 'cancelled', completed_at = ?, updated_at = ?,"
                " doc = json_set(doc, '$.error', json(?))"
                f" WHERE {where} AND status = 'pending'",
                (now_us, now_us, error, *params),
            ).rowcount
            running = self._db.execute(
                "UPDATE jobs SET cancel_requested = 1, updated_at = ?"
                f" WHERE {where} AND status = 'processing' AND cancel_requested = 0",
                (now_us, *params),
            ).rowcount
            return pending + running

        return await self._run(self._write, run)

    async def retry_jobs(
        self,
        *,
        job_id: str | None = None,
        batch_id: str | None = None,
        statuses: Sequence[JobStatus] = (JobStatus.FAILED, JobStatus.CANCELLED),
        now: datetime,
    ) -> int:
        if not statuses:
            return 0
        where, params = self._selector(job_id, batch_id)
        sql = (
            "UPDATE jobs SET status = 'pending', attempts = 0, cancel_requested = 0,"
            " lease_owner = NULL, lease_token = NULL, lease_expires_at = NULL,"
            " run_after = NULL, timeout_at = NULL, started_at = NULL, completed_at = NULL,"
            " updated_at = ?, doc = json_remove(doc, '$.error', '$.results', '$.progress')"
            f" WHERE {where} AND status IN ({_marks(statuses)})"
        )
        args = (to_us(now), *params, *[str(s) for s in statuses])
        return await self._run(self._write, lambda: self._db.execute(sql, args).rowcount)

    async def pending_job_types(self) -> dict[str, int]:
        rows = await self._run(
            self._read,
            "SELECT job_type, count(*) FROM jobs WHERE status = 'pending' GROUP BY job_type",
        )
        return {t: n for t, n in rows}

    # -- workers ------------------------------------------------------------------

    async def upsert_worker(self, info: WorkerInfo) -> None:
        data = info.model_dump()
        row = (info.worker_id, to_us(info.heartbeat_at), dumps(data))
        await self._run(
            self._write,
            lambda: self._db.execute(
                "INSERT INTO workers (worker_id, heartbeat_at, doc) VALUES (?, ?, ?)"
                " ON CONFLICT(worker_id) DO UPDATE SET"
                " heartbeat_at = excluded.heartbeat_at, doc = excluded.doc",
                row,
            ),
        )

    async def remove_worker(self, worker_id: str) -> None:
        await self._run(
            self._write,
            lambda: self._db.execute("DELETE FROM workers WHERE worker_id = ?", (worker_id,)),
        )

    async def list_workers(self) -> list[WorkerInfo]:
        rows = await self._run(self._read, "SELECT doc FROM workers ORDER BY worker_id")
        return [WorkerInfo.model_validate(loads(doc)) for (doc,) in rows]
