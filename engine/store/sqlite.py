"""The embedded store: the engine's storage interface on one SQLite file.

The default when no MongoDB is configured. One file (WAL mode, ``busy_timeout``)
is shared safely by several local processes: every write runs in a
``BEGIN IMMEDIATE`` transaction, so writers serialize on SQLite's lock, and the
claim is one ``UPDATE ... RETURNING`` over an indexed subquery (never
read-then-update). The event loop never blocks on SQLite: every operation runs on
one dedicated thread per store, which owns the connection and groups concurrent
writes into one transaction (``_sqlite_thread.py``).

Semantics follow ``MongoStore`` verb for verb (the contract suite runs on both).
File format and migrations: ``_sqlite_schema.py``; row encoding: ``_sqlite_rows.py``.
"""

from __future__ import annotations

import asyncio
import logging
import os
import shlex
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, Sequence
from datetime import datetime
from pathlib import Path
from typing import Any

from jobtui.engine.models import (
    LEGACY_JOB_TYPE,
    UNIT_STATUSES,
    Batch,
    BatchSummary,
    Job,
    JobFilter,
    JobStatus,
    LogEntry,
    Outcome,
    Progress,
    WorkerInfo,
    batch_counters,
    utcnow,
)
from jobtui.engine.store import _sqlite_purge as purge
from jobtui.engine.store import _sqlite_schema as schema
from jobtui.engine.store import _sqlite_wakeups as wakeups
from jobtui.engine.store._sqlite_rows import (
    CANCELLED_BY_OPERATOR,
    CLEAR_LEASE,
    FENCE,
    INSERT_JOB,
    OVERDUE,
    SELECT,
    UNLEASED,
    cell_text,
    chunks,
    claim_statement,
    dumps,
    finish_statement,
    from_us,
    job_row,
    job_where,
    legacy_job,
    loads,
    marks,
    row_job,
    scope_where,
    text_cell,
    to_us,
)
from jobtui.engine.store._sqlite_thread import SQLiteThread
from jobtui.engine.store.base import (
    ClaimRequest,
    ClaimScope,
    InsertResult,
    JobCursor,
    LeaseState,
    PurgeResult,
    Store,
    StoreError,
    Wake,
    purgeable,
)

log = logging.getLogger(__name__)


def _claimed_jobs(rows: list[Any]) -> list[Job]:
    jobs = [row_job(r) for r in rows]
    jobs.sort(key=lambda j: (-j.priority, j.created_at, j.job_id))  # RETURNING is unordered
    return jobs


class SQLiteStore(Store):
    """The storage interface on one SQLite file (see the module docstring)."""

    kind = "sqlite"

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        busy_timeout: float = 10.0,
        legacy_type: str = LEGACY_JOB_TYPE,
    ) -> None:
        self.path = Path(path).expanduser()
        #: the job type of jobs written with an empty ``job_type`` (stored as this type)
        self.legacy_type = legacy_type
        self._busy_timeout = busy_timeout
        self._t = SQLiteThread(self.path, lambda: schema.connect(self.path, busy_timeout))
        self._identity: tuple[int, int] | None = None

    @property
    def description(self) -> str:
        return f"sqlite:{self.path}"

    def _all(self, sql: str, params: Sequence[Any] = ()) -> list[Any]:
        """On the store thread: run one statement, fetch every row."""
        return self._t.db.execute(sql, params).fetchall()

    def _count(self, sql: str, params: Sequence[Any] = ()) -> int:
        """On the store thread: run one statement, return how many rows it changed."""
        return int(self._t.db.execute(sql, params).rowcount)

    # -- lifecycle ----------------------------------------------------------------

    async def open(self) -> None:
        await self._t.start()
        # The file this process writes to, as opened. A cleanup script that deletes
        # it, or a restore that renames another file over it, leaves us writing to
        # an inode nobody else will ever open: verify_identity notices.
        st = os.stat(self.path)
        self._identity = (st.st_dev, st.st_ino)

    def verify_identity(self) -> None:
        if self._identity is None:
            return
        try:
            st = os.stat(self.path)
        except FileNotFoundError:
            what = "was deleted"
        except OSError:
            return  # cannot tell (e.g. a permission change): not proof of a new file
        else:
            if (st.st_dev, st.st_ino) == self._identity:
                return
            what = "was replaced by another file"
        raise StoreError(
            "STORE_REPLACED",
            f"the store file {self.path} {what} while this process was using it; "
            "jobs written from now on would exist nowhere. Stopped claiming: restart "
            "this process to serve the file that is there now.",
        )

    async def close(self) -> None:
        await self._t.stop()

    async def ping(self) -> bool:
        if not self._t.is_open:
            return False
        try:
            return bool(await self._t.read(self._all, "SELECT 1"))
        except Exception:  # noqa: BLE001 - any failure means "not answering"
            return False

    # -- enqueue ------------------------------------------------------------------

    async def create_batch(self, batch: Batch, *, placeholder: bool = False) -> None:
        data = batch.model_dump()
        if batch.webhook:  # see claim_finished_batches
            data["announce"] = "pending"
        row = (data.pop("batch_id"), to_us(data.pop("created_at")), dumps(data))
        sql = (
            "INSERT INTO batches (batch_id, created_at, doc) VALUES (?, ?, ?) ON CONFLICT(batch_id)"
        )
        if placeholder:
            sql += " DO NOTHING"
        else:
            sql += " DO UPDATE SET created_at = excluded.created_at, doc = excluded.doc"

        def run() -> None:
            self._count(sql, row)
            # Jobs may have run already (enqueue writes them first): count, never assume.
            self._recount([batch.batch_id], to_us(utcnow()))

        await self._t.write(run)

    async def insert_jobs(self, jobs: Sequence[Job]) -> InsertResult:
        # The file is ours alone: an empty job_type is written as the legacy type, so
        # claims and counts need no second spelling of it.
        jobs = [
            j if j.job_type else j.model_copy(update={"job_type": self.legacy_type}) for j in jobs
        ]
        rows = [(job.job_id, job.dedupe_key, job_row(job)) for job in jobs]
        return await self._t.write(self._insert_rows, rows) if rows else InsertResult()

    def _insert_rows(self, rows: list[tuple[str, str | None, tuple[Any, ...]]]) -> InsertResult:
        result = InsertResult()
        db = self._t.db
        for job_id, key, values in rows:
            if db.execute(INSERT_JOB, values).rowcount:
                result.inserted.append(job_id)
            else:
                result.duplicates.append(key or job_id)
        return result

    async def find_by_dedupe_keys(self, keys: Sequence[str]) -> dict[str, Job]:
        def run() -> dict[str, Job]:
            out: dict[str, Job] = {}
            for part in chunks(list(keys)):
                sql = f"SELECT {SELECT} FROM jobs WHERE dedupe_key IN ({marks(part)})"
                for row in self._all(sql, part):
                    job = row_job(row)
                    out[job.dedupe_key or ""] = job
            return out

        return await self._t.read(run)

    async def _insert_raw_job(self, doc: dict[str, Any]) -> None:
        """Test hook: store a seed-era document (no ``job_type``, an embedded ``logs``
        array, unknown fields) the way an old deployment left it. It is stored as a
        legacy-type job with its extras kept in ``doc``."""
        job = legacy_job(doc, self.legacy_type)
        await self._t.write(self._insert_rows, [(job.job_id, None, job_row(job))])

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
        scope: ClaimScope | None = None,
    ) -> list[Job]:
        stmt = self._claim_statement(
            ClaimRequest(worker_id, slots, limit, lease_seconds, timeouts, now, scope)
        )
        if stmt is None:
            return []
        return _claimed_jobs(await self._t.write(self._all, *stmt))

    @staticmethod
    def _claim_statement(req: ClaimRequest) -> tuple[str, list[Any]] | None:
        """The claim's SQL and parameters; None when it can claim nothing."""
        scope = req.scope
        if scope is not None and scope.batch_id is None and not scope.job_ids:
            return None  # an empty scope holds nothing
        types = sorted(t for t, n in req.slots.items() if n > 0)
        if not types or req.limit <= 0:
            return None
        return claim_statement(
            worker_id=req.worker_id,
            slots={t: req.slots[t] for t in types},
            limit=req.limit,
            lease_seconds=req.lease_seconds,
            timeouts=req.timeouts,
            now=req.now,
            scope=None if scope is None else (scope.batch_id, sorted(scope.job_ids)),
        )

    async def heartbeat(
        self, leases: Mapping[str, str], expires_at: datetime
    ) -> dict[str, LeaseState]:
        if not leases:
            return {}
        until = to_us(expires_at)
        sql = f"UPDATE jobs SET lease_expires_at = ? WHERE {FENCE} RETURNING cancel_requested"

        def run() -> dict[str, LeaseState]:
            out: dict[str, LeaseState] = {}
            for job_id, token in leases.items():
                row = self._t.db.execute(sql, (until, job_id, token)).fetchone()
                if row is None:
                    out[job_id] = LeaseState.LOST
                else:
                    out[job_id] = LeaseState.CANCEL if row[0] else LeaseState.HELD
            return out

        return await self._t.write(run)

    async def set_progress(self, job_id: str, token: str, progress: Progress) -> bool:
        sql = (
            "UPDATE jobs SET doc = json_set(doc, '$.progress', json(?)), updated_at = ?"
            f" WHERE {FENCE}"
        )
        args = (dumps(progress.model_dump()), to_us(utcnow()), job_id, token)
        return await self._t.write(self._count, sql, args) > 0

    async def finish(
        self,
        job_id: str,
        token: str,
        outcome: Outcome,
        *,
        now: datetime,
        only_if_overdue: bool = False,
    ) -> bool:
        sql, params = finish_statement(outcome, to_us(now))
        params += [job_id, token]
        if only_if_overdue:
            sql += f" AND {OVERDUE}"
            params += [to_us(now), to_us(now)]
        return await self._t.write(self._count, sql, params) > 0

    async def finish_many(
        self,
        items: Sequence[tuple[str, str, Outcome]],
        *,
        now: datetime,
        worker_id: str | None = None,
    ) -> list[bool]:
        """Several fenced finishes in one transaction (one commit, one thread hop;
        all or nothing, so a retry after an error starts from scratch)."""
        return await self._t.write(self._finishes(items, now)) if items else []

    async def finish_then_claim(
        self,
        items: Sequence[tuple[str, str, Outcome]],
        claim: ClaimRequest,
        *,
        now: datetime,
        worker_id: str | None = None,
    ) -> tuple[list[bool], list[Job] | Exception]:
        """Both in one transaction: one commit where the engine would make two (a job
        ends, its slot is claimed again). The claim runs after the finishes, inside
        its own savepoint, so its failure leaves the finishes standing."""
        finish = self._finishes(items, now)
        stmt = self._claim_statement(claim)
        if stmt is None:
            return await self._t.write(finish), []

        def run() -> tuple[list[bool], list[Any] | Exception]:
            done = finish()
            db = self._t.db
            db.execute("SAVEPOINT claim")
            try:
                rows = db.execute(*stmt).fetchall()
            except Exception as exc:  # noqa: BLE001 - returned to the engine
                db.execute("ROLLBACK TO claim")
                db.execute("RELEASE claim")
                err = self._t.translate(exc)
                return done, err if isinstance(err, Exception) else exc
            db.execute("RELEASE claim")
            return done, rows

        done, rows = await self._t.write(run)
        return done, rows if isinstance(rows, Exception) else _claimed_jobs(rows)

    def _finishes(
        self, items: Sequence[tuple[str, str, Outcome]], now: datetime
    ) -> Callable[[], list[bool]]:
        """The fenced finishes of ``items`` as one function for the store thread.
        Finishes of one shape (the same statement text: a busy engine's completions)
        go in one ``executemany``; only if it changed fewer rows than it was given (a
        lease was lost) is it undone and replayed row by row, to tell which were
        refused."""
        now_us = to_us(now)
        runs: list[tuple[str, list[list[Any]]]] = []  # consecutive finishes of one shape
        for job_id, token, outcome in items:
            sql, params = finish_statement(outcome, now_us)
            params += (job_id, token)
            if runs and runs[-1][0] == sql:
                runs[-1][1].append(params)
            else:
                runs.append((sql, [params]))

        def run() -> list[bool]:
            db = self._t.db
            out: list[bool] = []
            for sql, rows in runs:
                if len(rows) == 1:
                    out.append(db.execute(sql, rows[0]).rowcount > 0)
                    continue
                db.execute("SAVEPOINT finish_run")
                if db.executemany(sql, rows).rowcount == len(rows):
                    out += [True] * len(rows)
                else:
                    db.execute("ROLLBACK TO finish_run")
                    out += [db.execute(sql, p).rowcount > 0 for p in rows]
                db.execute("RELEASE finish_run")
            return out

        return run

    async def append_logs(self, entries: Sequence[LogEntry]) -> None:
        if not entries:
            return
        rows = [(e.job_id, to_us(e.ts), e.seq, e.level, text_cell(e.message)) for e in entries]
        sql = "INSERT INTO logs (job_id, ts, seq, level, message) VALUES (?, ?, ?, ?, ?)"
        await self._t.write(lambda: self._t.db.executemany(sql, rows).rowcount)

    # -- watchdog -----------------------------------------------------------------

    async def find_overdue(self, now: datetime, limit: int = 100) -> list[Job]:
        sql = (
            f"SELECT {SELECT} FROM jobs WHERE status = 'processing' AND {OVERDUE}"
            " ORDER BY lease_expires_at LIMIT ?"
        )
        rows = await self._t.read(self._all, sql, (to_us(now), to_us(now), limit))
        return [row_job(r) for r in rows]

    async def find_unleased(self, stalled_before: datetime, limit: int = 100) -> list[Job]:
        sql = f"SELECT {SELECT} FROM jobs WHERE {UNLEASED} LIMIT ?"
        rows = await self._t.read(self._all, sql, (to_us(stalled_before), limit))
        return [row_job(r) for r in rows]

    async def finish_unleased(
        self, job_id: str, outcome: Outcome, *, stalled_before: datetime, now: datetime
    ) -> bool:
        sql, params = finish_statement(outcome, to_us(now))
        # The same SET as a fenced finish, under the "still unleased" condition instead
        # of the lease fence, and counting the attempt the earlier worker made.
        sets, _ = sql.split(f" WHERE {FENCE}")
        sql = f"{sets}, attempts = attempts + 1 WHERE job_id = ? AND {UNLEASED}"
        params += [job_id, to_us(stalled_before)]

        def run() -> bool:
            changed = self._count(sql, params) > 0
            if changed:
                self._recount(self._batches_of(job_id, None), to_us(now))
            return changed

        return await self._t.write(run)

    # -- batch counters -------------------------------------------------------------

    async def recount_batches(self, batch_ids: Sequence[str | None], *, now: datetime) -> None:
        ids = sorted({b for b in batch_ids if b})
        if ids:
            await self._t.write(self._recount, ids, to_us(now))

    def _recount(self, batch_ids: Sequence[str | None], now_us: int) -> None:
        """On the store thread, inside a write transaction (so the count and the write
        are one snapshot): the seed's counters of each batch, from its jobs."""
        ids = sorted({b for b in batch_ids if b})
        counts: dict[str, dict[str, int]] = {b: {} for b in ids}
        last: dict[str, int] = {}
        for part in chunks(ids):
            for batch_id, status, n, completed in self._all(
                "SELECT batch_id, status, count(*), max(completed_at) FROM jobs"
                f" WHERE batch_id IN ({marks(part)}) GROUP BY batch_id, status",
                part,
            ):
                counts[batch_id][status] = n
                if completed is not None:
                    last[batch_id] = max(last.get(batch_id, completed), completed)
        announce = "UPDATE batches SET doc = json_set(doc, '$.announce', ?) WHERE batch_id = ?"
        for batch_id in ids:
            fields = batch_counters(counts[batch_id], from_us(last.get(batch_id, now_us)))
            fields["updated_at"] = from_us(now_us)
            self._count(
                "UPDATE batches SET doc = json_patch(doc, json(?)) WHERE batch_id = ?",
                (dumps(fields), batch_id),
            )
            if fields["completed_at"] is not None:  # finished: due once
                self._count(
                    announce + " AND json_extract(doc, '$.announce') = 'pending'",
                    ("due", batch_id),
                )
            else:  # jobs left (again): pending
                self._count(
                    announce + " AND json_extract(doc, '$.announce') IN ('due', 'sent')",
                    ("pending", batch_id),
                )

    async def claim_finished_batches(self, limit: int = 20) -> list[BatchSummary]:
        def run() -> list[BatchSummary]:
            ids = [
                r[0]
                for r in self._all(
                    "UPDATE batches SET doc = json_set(doc, '$.announce', 'sent')"
                    " WHERE batch_id IN (SELECT batch_id FROM batches"
                    " WHERE json_extract(doc, '$.announce') = 'due' LIMIT ?) RETURNING batch_id",
                    (limit,),
                )
            ]
            if not ids:
                return []
            sql = f"SELECT batch_id, created_at, doc FROM batches WHERE batch_id IN ({marks(ids)})"
            return self._summaries(sql, ids)

        return await self._t.write(run)

    def _batches_of(self, job_id: str | None, batch_id: str | None) -> list[str | None]:
        """On the store thread: the batch an operator verb touched."""
        if batch_id is not None:
            return [batch_id]
        return [r[0] for r in self._all("SELECT batch_id FROM jobs WHERE job_id = ?", (job_id,))]

    # -- operator verbs -----------------------------------------------------------

    async def ids_with_prefix(
        self, prefix: str, *, batches: bool = False, limit: int = 10
    ) -> list[str]:
        table, col = ("batches", "batch_id") if batches else ("jobs", "job_id")
        # A range of the primary key (LIKE would scan: it is case-insensitive here).
        sql = f"SELECT {col} FROM {table} WHERE {col} >= ?"
        args: list[Any] = [prefix]
        if prefix:
            sql += f" AND {col} < ?"
            args.append(prefix[:-1] + chr(ord(prefix[-1]) + 1))
        sql += f" ORDER BY {col} LIMIT ?"
        args.append(limit)
        return [r[0] for r in await self._t.read(self._all, sql, args)]

    async def get_job(self, job_id: str) -> Job | None:
        rows = await self._t.read(
            self._all, f"SELECT {SELECT} FROM jobs WHERE job_id = ?", (job_id,)
        )
        return row_job(rows[0]) if rows else None

    async def list_jobs(
        self,
        flt: JobFilter | None = None,
        *,
        limit: int = 50,
        after: JobCursor | None = None,
        newest_first: bool = False,
    ) -> list[Job]:
        where, params = job_where(flt)
        op, order = ("<", "DESC") if newest_first else (">", "ASC")
        if after is not None:
            where += f" AND (created_at, job_id) {op} (?, ?)"
            params += [to_us(after[0]), after[1]]
        # A batch's jobs in some statuses (wait_batch's "any unfinished job?", the
        # console's failed jobs of a batch): two equality columns of jobs_batch beat
        # walking the batch in created order, which the planner would guess.
        hint = "INDEXED BY jobs_batch" if flt and flt.batch_id is not None and flt.status else ""
        # Pick the page's rowids from a covering index first, then read only those
        # rows: sorting several statuses' entries never drags whole rows along.
        keys = f"ORDER BY created_at {order}, job_id {order}"
        sql = (
            f"SELECT {SELECT} FROM jobs WHERE rowid IN"
            f" (SELECT rowid FROM jobs {hint} WHERE {where} {keys} LIMIT ?) {keys}"
        )
        rows = await self._t.read(self._all, sql, (*params, limit))
        return [row_job(r) for r in rows]

    async def count_jobs(self, flt: JobFilter | None = None) -> dict[str, int]:
        where, params = job_where(flt)
        sql = f"SELECT status, count(*) FROM jobs WHERE {where} GROUP BY status"
        return dict(await self._t.read(self._all, sql, params))

    async def get_batch(self, batch_id: str) -> BatchSummary | None:
        sql = "SELECT batch_id, created_at, doc FROM batches WHERE batch_id = ?"
        found = await self._t.read(self._summaries, sql, (batch_id,), True)
        return found[0] if found else None

    async def list_batches(self, *, limit: int = 50) -> list[BatchSummary]:
        sql = (
            "SELECT batch_id, created_at, doc FROM batches"
            " ORDER BY created_at DESC, batch_id DESC LIMIT ?"
        )
        return await self._t.read(self._summaries, sql, (limit,), True)

    def _add_units(self, summaries: Sequence[BatchSummary]) -> None:
        """The unit tallies of the unfinished batches: one covering scan of jobs_units
        (only jobs that report a unit are in it)."""
        by_id = {s.batch.batch_id: s for s in summaries if not s.finished}
        statuses = list(UNIT_STATUSES)
        for part in chunks(list(by_id)):
            for batch_id, status, unit, n, done, total in self._all(
                "SELECT batch_id, status, unit, count(*), sum(units_done), sum(units_total)"
                f" FROM jobs INDEXED BY jobs_units WHERE batch_id IN ({marks(part)})"
                f" AND status IN ({marks(statuses)}) AND unit IS NOT NULL"
                " GROUP BY batch_id, status, unit",
                [*part, *statuses],
            ):
                by_id[batch_id].add_units(status, unit, n, done, total)

    def _summaries(
        self, sql: str, params: Sequence[Any], units: bool = False
    ) -> list[BatchSummary]:
        """Batches with counts derived from job states: one GROUP BY for all of them,
        a covering scan of jobs_batch (batch_id, status, started_at, completed_at)."""
        batches = []
        for batch_id, created, doc in self._all(sql, params):
            data = loads(doc)
            data.update(batch_id=batch_id, created_at=from_us(created))
            batches.append(Batch.model_validate(data))
        counts: dict[str, dict[str, int]] = {b.batch_id: {} for b in batches}
        first: dict[str, int] = {}
        last: dict[str, int] = {}
        for part in chunks(list(counts)):
            for batch_id, status, n, started, completed in self._all(
                "SELECT batch_id, status, count(*), min(started_at), max(completed_at)"
                f" FROM jobs WHERE batch_id IN ({marks(part)}) GROUP BY batch_id, status",
                part,
            ):
                counts[batch_id][status] = n
                if started is not None:
                    first[batch_id] = min(first.get(batch_id, started), started)
                if completed is not None:
                    last[batch_id] = max(last.get(batch_id, completed), completed)
        summaries = [
            BatchSummary(
                batch=b,
                counts=counts[b.batch_id],
                first_started_at=from_us(first.get(b.batch_id)),
                last_completed_at=from_us(last.get(b.batch_id)),
            )
            for b in batches
        ]
        if units:
            self._add_units(summaries)
        return summaries

    async def tail_logs(
        self, job_id: str, *, limit: int = 200, after: datetime | None = None
    ) -> list[LogEntry]:
        where = "job_id = ?"
        params: list[Any] = [job_id]
        if after is not None:
            where += " AND ts > ?"
            params.append(to_us(after))
        sql = (
            f"SELECT job_id, ts, seq, level, message FROM logs WHERE {where}"
            " ORDER BY ts DESC, seq DESC, id DESC LIMIT ?"
        )
        rows = await self._t.read(self._all, sql, (*params, limit))
        return [
            LogEntry(job_id=j, ts=from_us(ts), seq=seq, level=level, message=cell_text(msg))
            for j, ts, seq, level, msg in reversed(rows)
        ]

    async def cancel_jobs(
        self, *, job_id: str | None = None, batch_id: str | None = None, now: datetime
    ) -> int:
        where, params = scope_where(job_id, batch_id)
        now_us = to_us(now)
        cancel_pending = (
            "UPDATE jobs SET status = 'cancelled', completed_at = ?, updated_at = ?,"
            f" {CLEAR_LEASE},"
            f" doc = json_set(doc, '$.error', json(?)) WHERE {where} AND status = 'pending'"
        )
        # Processing with no jobtui lease: no worker of ours would see a cancel request.
        cancel_orphaned = cancel_pending.replace(
            "status = 'pending'", "status = 'processing' AND lease_token IS NULL"
        )
        flag_running = (
            "UPDATE jobs SET cancel_requested = 1, updated_at = ?"
            f" WHERE {where} AND status = 'processing'"
        )

        def run() -> int:
            error = dumps(CANCELLED_BY_OPERATOR)
            n = self._count(cancel_pending, (now_us, now_us, error, *params))
            n += self._count(cancel_orphaned, (now_us, now_us, error, *params))
            n += self._count(flag_running, (now_us, *params))
            if n:
                self._recount(self._batches_of(job_id, batch_id), now_us)
            return n

        return await self._t.write(run)

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
        where, params = scope_where(job_id, batch_id)
        sql = (
            "UPDATE jobs SET status = 'pending', attempts = 0, cancel_requested = 0,"
            f" {CLEAR_LEASE}, run_after = NULL, timeout_at = NULL, started_at = NULL,"
            " completed_at = NULL, updated_at = ?,"
            " doc = json_remove(doc, '$.error', '$.results', '$.progress')"
            f" WHERE {where} AND (status IN ({marks(statuses)})"
            # named: also one the seed's worker left processing (no jobtui lease)
            + (" OR (status = 'processing' AND lease_token IS NULL))" if job_id else ")")
        )
        args = (to_us(now), *params, *[s.value for s in statuses])

        def run() -> int:
            n = self._count(sql, args)
            if n:
                self._recount(self._batches_of(job_id, batch_id), to_us(now))
            return n

        return await self._t.write(run)

    async def pending_job_types(self) -> dict[str, int]:
        # An index-only scan of the partial jobs_claim (pending rows only); left
        # alone, the planner picks jobs_status_created plus a lookup per row.
        sql = (
            "SELECT job_type, count(*) FROM jobs INDEXED BY jobs_claim"
            " WHERE status = 'pending' GROUP BY job_type"
        )
        return dict(await self._t.read(self._all, sql))

    # -- retention ----------------------------------------------------------------

    async def purge_jobs(
        self,
        *,
        older_than: datetime,
        statuses: Sequence[JobStatus],
        batch_id: str | None = None,
        dry_run: bool = False,
    ) -> PurgeResult:
        """See ``Store.purge_jobs``; the statements are in ``_sqlite_purge``."""
        wanted = purgeable(statuses)
        if dry_run:
            jobs, logs, batches = await self._t.read(
                lambda: purge.count(self._t.db, wanted, older_than, batch_id)
            )
            return PurgeResult(jobs, logs, batches, dry_run=True)
        out = PurgeResult()
        touched: set[str] = set()
        while True:  # one short transaction per chunk (by rowid)
            jobs, logs, batch_ids = await self._t.write(
                lambda: purge.delete_chunk(self._t.db, wanted, older_than, batch_id)
            )
            out.jobs += jobs
            out.logs += logs
            touched.update(batch_ids)
            if jobs < purge.CHUNK:
                break
        out.batches = await self._t.write(
            lambda: purge.delete_empty_batches(self._t.db, sorted(touched), older_than, batch_id)
        )
        if out.jobs or out.batches:
            out.note = await self.reclaim_space()
        return out

    async def reclaim_space(self) -> str:
        """Give the pages a purge freed back to the file system; say what happened."""
        before = self._file_bytes()
        mode = (await self._t.read(self._all, "PRAGMA auto_vacuum"))[0][0]
        if mode != 2:  # a file made before incremental vacuum: VACUUM needs it alone
            return (
                "the file keeps its size (made before jobtui returned space by itself); "
                "to shrink it, stop every jobtui process using it, then run: "
                + shlex.join(["sqlite3", str(self.path), "PRAGMA auto_vacuum=INCREMENTAL; VACUUM;"])
            )
        while await self._t.write(purge.vacuum_step, self._t.db):
            pass  # short transactions: other processes' writers wait one step at most
        # The WAL holds the freed pages' last versions until a checkpoint.
        await self._t.read(self._all, "PRAGMA wal_checkpoint(TRUNCATE)")
        freed = max(0, before - self._file_bytes())
        return f"{freed / 1e6:.1f} MB returned to the file system"

    def _file_bytes(self) -> int:
        total = 0
        for suffix in ("", "-wal"):
            try:
                total += os.stat(f"{self.path}{suffix}").st_size
            except OSError:
                pass
        return total

    async def purge_logs(self, *, older_than: datetime, dry_run: bool = False) -> int:
        if dry_run:
            return await self._t.read(lambda: purge.count_logs(self._t.db, older_than))
        total = 0
        while True:
            n = await self._t.write(lambda: purge.delete_logs_chunk(self._t.db, older_than))
            total += n
            if n < purge.LOG_CHUNK:
                return total

    # -- workers ------------------------------------------------------------------

    async def upsert_worker(self, info: WorkerInfo) -> None:
        sql = (
            "INSERT INTO workers (worker_id, heartbeat_at, doc) VALUES (?, ?, ?)"
            " ON CONFLICT(worker_id) DO UPDATE SET"
            " heartbeat_at = excluded.heartbeat_at, doc = excluded.doc"
        )
        row = (info.worker_id, to_us(info.heartbeat_at), dumps(info.model_dump()))
        await self._t.write(self._count, sql, row)

    async def beat(
        self, info: WorkerInfo, leases: Mapping[str, str], expires_at: datetime
    ) -> dict[str, LeaseState]:
        # One transaction for the leases and the worker record: one commit a beat.
        until = to_us(expires_at)
        renew = f"UPDATE jobs SET lease_expires_at = ? WHERE {FENCE} RETURNING cancel_requested"
        upsert = (
            "INSERT INTO workers (worker_id, heartbeat_at, doc) VALUES (?, ?, ?)"
            " ON CONFLICT(worker_id) DO UPDATE SET"
            " heartbeat_at = excluded.heartbeat_at, doc = excluded.doc"
        )
        record = (info.worker_id, to_us(info.heartbeat_at), dumps(info.model_dump()))

        def run() -> dict[str, LeaseState]:
            out: dict[str, LeaseState] = {}
            db = self._t.db
            for job_id, token in leases.items():
                row = db.execute(renew, (until, job_id, token)).fetchone()
                out[job_id] = (
                    LeaseState.LOST
                    if row is None
                    else LeaseState.CANCEL
                    if row[0]
                    else LeaseState.HELD
                )
            db.execute(upsert, record)
            return out

        return await self._t.write(run)

    async def remove_worker(self, worker_id: str) -> None:
        await self._t.write(self._count, "DELETE FROM workers WHERE worker_id = ?", (worker_id,))

    async def list_workers(self) -> list[WorkerInfo]:
        rows = await self._t.read(self._all, "SELECT doc FROM workers ORDER BY worker_id")
        return [WorkerInfo.model_validate(loads(doc)) for (doc,) in rows]

    # -- wake-ups (between processes: _sqlite_wakeups.py) --------------------------

    async def notify(self, wake: Wake) -> None:
        try:
            await self._t.write(lambda: wakeups.bump(self._t.db, wake.value))
        except Exception as exc:  # noqa: BLE001 - the change is written; others poll
            log.warning("wake-up not written (%s); other processes see it at their poll", exc)
        await super().notify(wake)

    def watch_wakeups(
        self, ready: Callable[[], Awaitable[object]] | None = None
    ) -> AsyncIterator[Wake] | None:
        return self._watch_wakeups(ready)

    async def _watch_wakeups(
        self, ready: Callable[[], Awaitable[object]] | None
    ) -> AsyncIterator[Wake]:
        """Yield each channel whose counter another connection moved (our own notifies
        reach our listeners directly; ``data_version`` hides our own commits). While
        ``ready`` holds it back, counters that move are seen at the next reading."""
        try:
            last = await self._t.read(self._wake_state, None)
            while True:
                await asyncio.sleep(wakeups.POLL_S)
                if ready is not None:
                    await ready()
                now = await self._t.read(self._wake_state, last)
                for channel in wakeups.moved(last, now) if now is not last else ():
                    yield Wake(channel)
                last = now
        except StoreError as exc:  # closed, replaced: the engine falls back to polling
            log.info("wake-ups ended (%s); polling instead", exc.code)

    def _wake_state(self, last: wakeups.WakeState | None) -> wakeups.WakeState:
        return wakeups.read(self._t.db, last)

    # -- diagnostics (jobtui doctor) ------------------------------------------------

    async def server_info(self) -> dict[str, Any]:
        def run() -> dict[str, Any]:
            db = self._t.db
            return {
                "kind": self.kind,
                "path": str(self.path),
                "user_version": db.execute("PRAGMA user_version").fetchone()[0],
                "schema_version": schema.SCHEMA_VERSION,
                "wakeup_poll_s": wakeups.POLL_S,
                "journal_mode": db.execute("PRAGMA journal_mode").fetchone()[0],
                "size_bytes": self.path.stat().st_size if self.path.exists() else 0,
            }

        return await self._t.read(run)

    async def missing_indexes(self) -> list[str]:
        rows = await self._t.read(self._all, "SELECT name FROM sqlite_master WHERE type = 'index'")
        have = {name for (name,) in rows}
        # The migrations are the one list of indexes: created minus dropped, in order.
        import re

        expected: list[str] = []
        for step in schema.MIGRATIONS:
            for verb, name in re.findall(
                r"\b(CREATE(?:\s+UNIQUE)?\s+INDEX|DROP\s+INDEX)\s+(?:IF\s+(?:NOT\s+)?EXISTS\s+)?(\w+)",
                step,
                flags=re.IGNORECASE,
            ):
                if verb.upper().startswith("DROP"):
                    expected = [n for n in expected if n != name]
                elif name not in expected:
                    expected.append(name)
        return [name for name in expected if name not in have]
