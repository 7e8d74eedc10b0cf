"""``MongoStore``: the storage interface on MongoDB through PyMongo's async client.

MongoDB is what lets many machines share one queue, so every verb here is a single
conditional command (``find_one_and_update`` for a claim, fenced ``update_one`` for a
worker's writes) and batch counts are aggregated from job states at read time.

Query shapes. Filters are plain MongoDB, but written in the subset the ``nx-27017``
test server evaluates correctly (measured: it drops the parentheses around a top-level
``$or`` next to other fields, mis-evaluates ``$in``/``$ne`` beside logical operators and
treats a missing field as never ``$ne`` anything). So a filter here is: plain
equalities at the top, plus ``$and: [{$or: [...]}, ...]`` for every disjunction, with
"one of these values" spelled as an ``$or`` of equalities. ``$in`` is only used in
filters without logical operators. Real MongoDB plans these the same way.

Call-level differences of mongomock-motor and nx-27017 live in ``_mongo_compat``.
"""

from __future__ import annotations

import logging
import re
from collections.abc import AsyncIterator, Mapping, Sequence
from datetime import datetime, timedelta
from typing import Any

from pymongo import ASCENDING, DESCENDING, ReturnDocument
from pymongo.errors import BulkWriteError, OperationFailure, PyMongoError

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
    new_token,
    utcnow,
)
from engine.store import _mongo_compat as compat
from engine.store.base import InsertResult, JobCursor, LeaseState, Store, StoreError
from engine.uri import redact_uri

log = logging.getLogger(__name__)

_CLAIM_SORT = [("priority", DESCENDING), ("created_at", ASCENDING)]
# Index problems on an existing (legacy) collection that must not stop the engine:
# IndexOptionsConflict, IndexKeySpecsConflict, duplicate keys in old data.
_TOLERATED_INDEX_ERRORS = {85, 86, 11000}


def _where(eq: dict[str, Any], ors: Sequence[list[dict[str, Any]]] = ()) -> dict[str, Any]:
    """Equalities at the top, each disjunction as one ``$and`` member (see docstring)."""
    query = dict(eq)
    if ors:
        query["$and"] = [{"$or": branches} for branches in ors]
    return query


def _one_of(field: str, values: Sequence[Any]) -> list[dict[str, Any]]:
    return [{field: v} for v in values]


def _types_clause(types: Sequence[str]) -> list[dict[str, Any]]:
    """``job_type`` in ``types``; legacy documents without one count as ``session``."""
    branches = _one_of("job_type", list(types))
    if "session" in types:
        branches.append({"job_type": {"$exists": False}})
    return branches


def _job_doc(job: Job) -> dict[str, Any]:
    doc = job.model_dump(mode="python")
    doc["status"] = job.status.value
    # A sparse unique index skips *missing* keys, not nulls: no key means no field.
    if doc.get("dedupe_key") is None:
        doc.pop("dedupe_key", None)
    if doc.get("logs") is None:
        doc.pop("logs", None)
    return doc


_NOT_NULL_FIELDS = [
    name for name, f in Job.model_fields.items() if f.default is not None or f.default_factory
]


def _to_job(raw: Mapping[str, Any]) -> Job:
    """Read a stored job, tolerating the seed's legacy ``event_jobs`` documents."""
    doc = compat.fix_datetimes(dict(raw))
    doc.pop("_id", None)
    compat.fix_legacy_logs(doc)
    for name in _NOT_NULL_FIELDS:  # legacy nulls where the model wants its default
        if name in doc and doc[name] is None:
            del doc[name]
    if isinstance(doc.get("error"), str):
        doc["error"] = {"code": ErrorCode.HANDLER_ERROR.value, "message": doc["error"]}
    if isinstance(doc.get("progress"), (int, float)):
        doc["progress"] = {"percent": float(doc["progress"])}
    return Job.model_validate(doc)


def _overdue(now: datetime) -> list[dict[str, Any]]:
    return [{"lease.expires_at": {"$lt": now}}, {"timeout_at": {"$lt": now}}]


def _summaries(batches: Sequence[Batch], rows: list[dict[str, Any]]) -> list[BatchSummary]:
    """Fold ``$group`` rows keyed ``"<status>|<batch_id>"`` into one summary per batch."""
    counts: dict[str, dict[str, int]] = {b.batch_id: {} for b in batches}
    first: dict[str, datetime] = {}
    last: dict[str, datetime] = {}
    for row in rows:
        status, _, batch_id = str(row["_id"]).partition("|")
        if batch_id not in counts:
            continue
        counts[batch_id][status] = counts[batch_id].get(status, 0) + int(row["n"])
        started, completed = (
            compat.as_datetime(row.get("first")),
            compat.as_datetime(row.get("last")),
        )
        if started and (batch_id not in first or started < first[batch_id]):
            first[batch_id] = started
        if completed and (batch_id not in last or completed > last[batch_id]):
            last[batch_id] = completed
    return [
        BatchSummary(
            batch=b,
            counts=counts[b.batch_id],
            first_started_at=first.get(b.batch_id),
            last_completed_at=last.get(b.batch_id),
        )
        for b in batches
    ]


class MongoStore(Store):
    """Jobs, batches, log lines and workers in four MongoDB collections.

    ``client`` lets tests hand in a mongomock-motor client; otherwise an
    ``AsyncMongoClient`` is built from ``uri`` (``tz_aware``, short server selection so
    a wrong URI fails fast with ``STORE_UNREACHABLE`` instead of hanging the console).
    """

    def __init__(
        self,
        uri: str,
        *,
        database: str = "jobtui",
        jobs: str = "jobs",
        batches: str = "batches",
        logs: str = "job_logs",
        workers: str = "workers",
        client: object | None = None,
        event_listeners: list | None = None,
        server_selection_timeout_ms: int = 5000,
    ) -> None:
        self.uri = uri
        self.database_name = database
        self._owns_client = client is None
        if client is None:
            from pymongo import AsyncMongoClient

            options: dict[str, Any] = (
                {"event_listeners": event_listeners} if event_listeners else {}
            )
            client = AsyncMongoClient(
                uri, tz_aware=True, serverSelectionTimeoutMS=server_selection_timeout_ms, **options
            )
        self.kind = "mongomock" if compat.is_mongomock(client) else "mongodb"
        self._client: Any = client
        db = client[database]  # type: ignore[index]
        self._jobs = db[jobs]
        self._batches = db[batches]
        self._logs = db[logs]
        self._workers = db[workers]
        self._change_streams = False

    @classmethod
    def in_memory(cls, database: str = "jobtui") -> MongoStore:
        """A store on mongomock-motor (tests, demos): no server, no change streams."""
        from mongomock_motor import AsyncMongoMockClient

        store = cls("mongomock://memory", database=database, client=AsyncMongoMockClient())
        store._owns_client = True
        return store

    @property
    def description(self) -> str:
        if self.kind == "mongomock":
            return f"mongomock (in memory, database {self.database_name})"
        return f"MongoDB {redact_uri(self.uri)} (database {self.database_name})"

    # -- lifecycle -------------------------------------------------------------

    async def open(self) -> None:
        try:
            await self._client.admin.command("ping")
        except PyMongoError as exc:
            raise StoreError(
                "STORE_UNREACHABLE",
                f"cannot reach {self.description}: {type(exc).__name__}",
            ) from exc
        indexes: list[tuple[Any, list[tuple[str, int]], dict[str, Any]]] = [
            (self._jobs, [("job_id", ASCENDING)], {"unique": True}),
            # sparse, not partial: nx-27017 ignores partial filters.
            (self._jobs, [("dedupe_key", ASCENDING)], {"unique": True, "sparse": True}),
            (self._jobs, [("status", 1), ("priority", -1), ("created_at", 1)], {}),
            (self._jobs, [("batch_id", 1), ("status", 1)], {}),
            (self._jobs, [("status", 1), ("lease.expires_at", 1)], {}),
            (self._jobs, [("created_at", 1), ("job_id", 1)], {}),
            (self._logs, [("job_id", 1), ("ts", 1)], {}),
            (self._batches, [("batch_id", 1)], {"unique": True}),
            (self._batches, [("created_at", 1)], {}),
            (self._workers, [("worker_id", 1)], {"unique": True}),
        ]
        for collection, keys, options in indexes:
            try:
                await collection.create_index(keys, **options)
            except OperationFailure as exc:
                if exc.code not in _TOLERATED_INDEX_ERRORS:
                    raise StoreError(
                        "STORE_UNUSABLE", f"{self.description}: cannot create index {keys}: {exc}"
                    ) from exc
                log.warning("index %s on %s not created: %s", keys, collection.name, exc)
            except PyMongoError as exc:
                raise StoreError(
                    "STORE_UNREACHABLE", f"{self.description}: {type(exc).__name__}"
                ) from exc
        self._change_streams = await self._probe_change_streams()

    async def _probe_change_streams(self) -> bool:
        """Change streams need a replica set (or nx-27017); standalone servers refuse."""
        if not compat.supports_watch(self._jobs):
            return False
        try:
            stream = await self._jobs.watch()
            await stream.close()
        except PyMongoError:
            return False
        return True

    async def close(self) -> None:
        if self._owns_client:
            await compat.close_client(self._client)

    async def ping(self) -> bool:
        try:
            await self._client.admin.command("ping")
        except PyMongoError:
            return False
        return True

    # -- enqueue ---------------------------------------------------------------

    async def create_batch(self, batch: Batch) -> None:
        await self._batches.insert_one(batch.model_dump(mode="python"))

    async def insert_jobs(self, jobs: Sequence[Job]) -> InsertResult:
        if not jobs:
            return InsertResult()
        docs = [_job_doc(job) for job in jobs]
        failed: dict[int, dict[str, Any]] = {}
        try:
            await self._jobs.insert_many(docs, ordered=False)
        except BulkWriteError as exc:
            for err in exc.details.get("writeErrors", []):
                where = f"{err.get('keyPattern', '')} {err.get('errmsg', '')}"
                if err.get("code") != 11000 or "dedupe_key" not in where:
                    raise
                failed[int(err["index"])] = err
        result = InsertResult()
        for i, job in enumerate(jobs):
            if i in failed:
                result.duplicates.append(str(job.dedupe_key))
            else:
                result.inserted.append(job.job_id)
        return result

    async def find_by_dedupe_keys(self, keys: Sequence[str]) -> dict[str, Job]:
        if not keys:
            return {}
        cursor = self._jobs.find({"dedupe_key": {"$in": list(keys)}})
        return {
            job.dedupe_key: job
            for job in map(_to_job, await cursor.to_list(None))
            if job.dedupe_key
        }

    async def _insert_raw_job(self, doc: dict[str, Any]) -> None:
        """Test hook: store a document exactly as given (e.g. a legacy seed job)."""
        await self._jobs.insert_one(dict(doc))

    # -- worker verbs ----------------------------------------------------------

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
        free = {t: n for t, n in slots.items() if n > 0}
        expires = now + timedelta(seconds=lease_seconds)
        claimed: list[Job] = []
        while len(claimed) < limit and free:
            types = sorted(free)
            flt = _where(
                {"status": JobStatus.PENDING.value},
                [
                    [{"cancel_requested": False}, {"cancel_requested": None}],
                    [{"run_after": None}, {"run_after": {"$lte": now}}],
                    _types_clause(types),
                ],
            )
            token = new_token()
            update: dict[str, Any] = {
                "status": JobStatus.PROCESSING.value,
                "lease": {"owner": worker_id, "token": token, "expires_at": expires},
                "started_at": now,
                "worker_id": worker_id,
                "updated_at": now,
            }
            limits = {timeouts.get(t) for t in types}
            if len(limits) == 1:  # usual case: the timeout is known before the match
                update["timeout_at"] = self._deadline(now, limits.pop())
            doc = await self._jobs.find_one_and_update(
                flt,
                {"$set": update, "$inc": {"attempts": 1}},
                sort=_CLAIM_SORT,
                return_document=ReturnDocument.AFTER,
            )
            if doc is None:
                break
            job = _to_job(doc)
            if "timeout_at" not in update:  # types differ in timeout: fenced follow-up
                job.timeout_at = self._deadline(now, timeouts.get(job.job_type))
                await self._jobs.update_one(
                    {"job_id": job.job_id, "lease.token": token},
                    {"$set": {"timeout_at": job.timeout_at}},
                )
            claimed.append(job)
            kind = job.job_type if job.job_type in free else "session"
            if kind in free:
                free[kind] -= 1
                if free[kind] <= 0:
                    del free[kind]
        return claimed

    @staticmethod
    def _deadline(now: datetime, seconds: float | None) -> datetime | None:
        return None if seconds is None else now + timedelta(seconds=seconds)

    async def heartbeat(
        self, leases: Mapping[str, str], expires_at: datetime
    ) -> dict[str, LeaseState]:
        if not leases:
            return {}
        fence = [{"job_id": j, "lease.token": t} for j, t in leases.items()]
        await self._jobs.update_many(
            _where({"status": JobStatus.PROCESSING.value}, [fence]),
            {"$set": {"lease.expires_at": expires_at}},
        )
        cursor = self._jobs.find(
            {"job_id": {"$in": list(leases)}},
            {"_id": 0, "job_id": 1, "status": 1, "lease": 1, "cancel_requested": 1},
        )
        states = {job_id: LeaseState.LOST for job_id in leases}
        for doc in await cursor.to_list(None):
            job_id = doc.get("job_id")
            lease = doc.get("lease") or {}
            held = doc.get("status") == JobStatus.PROCESSING.value and (
                isinstance(lease, dict) and lease.get("token") == leases.get(job_id)
            )
            if held:
                states[job_id] = (
                    LeaseState.CANCEL if doc.get("cancel_requested") else LeaseState.HELD
                )
        return states

    async def set_progress(self, job_id: str, token: str, progress: Progress) -> bool:
        res = await self._jobs.update_one(
            {"job_id": job_id, "lease.token": token, "status": JobStatus.PROCESSING.value},
            {"$set": {"progress": progress.model_dump(mode="python"), "updated_at": utcnow()}},
        )
        return res.matched_count == 1

    async def finish(
        self,
        job_id: str,
        token: str,
        outcome: Outcome,
        *,
        now: datetime,
        only_if_overdue: bool = False,
    ) -> bool:
        flt = _where(
            {"job_id": job_id, "lease.token": token, "status": JobStatus.PROCESSING.value},
            [_overdue(now)] if only_if_overdue else [],
        )
        error = outcome.error.model_dump(mode="python") if outcome.error else None
        fields: dict[str, Any] = {
            "status": outcome.status.value,
            "lease": None,
            "timeout_at": None,
            "updated_at": now,
        }
        if outcome.status.terminal:
            fields["completed_at"] = now
            fields["error"] = error
            if outcome.status is JobStatus.CANCELLED and error is None:
                fields["error"] = {"code": ErrorCode.CANCELLED.value, "message": "cancelled"}
            if outcome.results is not None or outcome.status is JobStatus.COMPLETED:
                fields["results"] = outcome.results
        else:
            fields["run_after"] = outcome.run_after
            if error is not None:  # keep why the last attempt failed, for the console
                fields["error"] = error
        update: dict[str, Any] = {"$set": fields}
        if outcome.refund_attempt:
            update["$inc"] = {"attempts": -1}
        res = await self._jobs.update_one(flt, update)
        return res.matched_count == 1

    async def append_logs(self, entries: Sequence[LogEntry]) -> None:
        if entries:
            await self._logs.insert_many([e.model_dump(mode="python") for e in entries])

    # -- watchdog --------------------------------------------------------------

    async def find_overdue(self, now: datetime, limit: int = 100) -> list[Job]:
        flt = _where({"status": JobStatus.PROCESSING.value}, [_overdue(now)])
        cursor = self._jobs.find(flt).limit(limit)
        return [_to_job(doc) for doc in await cursor.to_list(None)]

    # -- operator verbs --------------------------------------------------------

    async def get_job(self, job_id: str) -> Job | None:
        doc = await self._jobs.find_one({"job_id": job_id})
        return _to_job(doc) if doc else None

    @staticmethod
    def _filter(flt: JobFilter | None, *extra: list[dict[str, Any]]) -> dict[str, Any]:
        eq: dict[str, Any] = {}
        ors: list[list[dict[str, Any]]] = []
        if flt is not None:
            if flt.status:
                ors.append(_one_of("status", [s.value for s in flt.status]))
            if flt.job_type:
                ors.append(_types_clause(flt.job_type))
            if flt.batch_id is not None:
                eq["batch_id"] = flt.batch_id
            if flt.text:
                rx = {"$regex": re.escape(flt.text), "$options": "i"}
                ors.append([{"job_id": rx}, {"parameters.path": rx}, {"error.code": rx}])
        ors.extend(extra)
        return _where(eq, ors)

    async def list_jobs(
        self,
        flt: JobFilter | None = None,
        *,
        limit: int = 50,
        after: JobCursor | None = None,
        newest_first: bool = False,
    ) -> list[Job]:
        op, direction = ("$lt", DESCENDING) if newest_first else ("$gt", ASCENDING)
        keyset: list[list[dict[str, Any]]] = []
        if after is not None:
            created, job_id = after
            keyset.append(
                [{"created_at": {op: created}}, {"created_at": created, "job_id": {op: job_id}}]
            )
        cursor = (
            self._jobs.find(self._filter(flt, *keyset))
            .sort([("created_at", direction), ("job_id", direction)])
            .limit(limit)
        )
        return [_to_job(doc) for doc in await cursor.to_list(None)]

    async def count_jobs(self, flt: JobFilter | None = None) -> dict[str, int]:
        rows = await compat.aggregate(
            self._jobs,
            [{"$match": self._filter(flt)}, {"$group": {"_id": "$status", "n": {"$sum": 1}}}],
        )
        return {str(r["_id"]): int(r["n"]) for r in rows if r["n"]}

    async def _batch_summaries(self, batches: Sequence[Batch]) -> list[BatchSummary]:
        """One aggregation for any number of batches (counts never stored)."""
        if not batches:
            return []
        ids = [b.batch_id for b in batches]
        match = {"batch_id": ids[0]} if len(ids) == 1 else {"batch_id": {"$in": ids}}
        rows = await compat.aggregate(
            self._jobs,
            [
                {"$match": match},
                {
                    "$group": {  # a string key: nx-27017 cannot group by a document
                        "_id": {"$concat": ["$status", "|", "$batch_id"]},
                        "n": {"$sum": 1},
                        "first": {"$min": "$started_at"},
                        "last": {"$max": "$completed_at"},
                    }
                },
            ],
        )
        return _summaries(batches, rows)

    @staticmethod
    def _to_batch(doc: Mapping[str, Any]) -> Batch:
        doc = compat.fix_datetimes(dict(doc))
        doc.pop("_id", None)
        return Batch.model_validate(doc)

    async def get_batch(self, batch_id: str) -> BatchSummary | None:
        doc = await self._batches.find_one({"batch_id": batch_id})
        if doc is None:
            return None
        return (await self._batch_summaries([self._to_batch(doc)]))[0]

    async def list_batches(self, *, limit: int = 50) -> list[BatchSummary]:
        cursor = self._batches.find({}).sort([("created_at", DESCENDING)]).limit(limit)
        batches = [self._to_batch(doc) for doc in await cursor.to_list(None)]
        return await self._batch_summaries(batches)

    async def tail_logs(
        self, job_id: str, *, limit: int = 200, after: datetime | None = None
    ) -> list[LogEntry]:
        flt: dict[str, Any] = {"job_id": job_id}
        if after is not None:
            flt["ts"] = {"$gt": after}
        cursor = self._logs.find(flt).sort([("ts", DESCENDING), ("seq", DESCENDING)]).limit(limit)
        rows = await cursor.to_list(None)
        if not rows and after is None:
            return await self._legacy_logs(job_id, limit)
        entries = []
        for row in reversed(rows):
            row = compat.fix_datetimes(row)
            row.pop("_id", None)
            entries.append(LogEntry.model_validate(row))
        return entries

    async def _legacy_logs(self, job_id: str, limit: int) -> list[LogEntry]:
        """Seed jobs kept their log lines in a ``logs`` array inside the job."""
        job = await self.get_job(job_id)
        if job is None or not job.logs:
            return []
        entries = []
        for i, line in enumerate(job.logs[-limit:]):
            ts = compat.as_datetime(line.get("ts") or line.get("timestamp")) or job.created_at
            level = str(line.get("level") or "info").lower()
            entries.append(
                LogEntry(
                    job_id=job_id, ts=ts, level=level, message=str(line.get("message", "")), seq=i
                )
            )
        return entries

    @staticmethod
    def _scope(job_id: str | None, batch_id: str | None) -> dict[str, Any]:
        if job_id is None and batch_id is None:
            raise ValueError("give job_id or batch_id")
        scope: dict[str, Any] = {}
        if job_id is not None:
            scope["job_id"] = job_id
        if batch_id is not None:
            scope["batch_id"] = batch_id
        return scope

    async def cancel_jobs(
        self, *, job_id: str | None = None, batch_id: str | None = None, now: datetime
    ) -> int:
        scope = self._scope(job_id, batch_id)
        error = {"code": ErrorCode.CANCELLED.value, "message": "cancelled by an operator"}
        pending = await self._jobs.update_many(
            {**scope, "status": JobStatus.PENDING.value},
            {
                "$set": {
                    "status": JobStatus.CANCELLED.value,
                    "error": error,
                    "lease": None,
                    "completed_at": now,
                    "updated_at": now,
                }
            },
        )
        running = await self._jobs.update_many(
            {**scope, "status": JobStatus.PROCESSING.value},
            {"$set": {"cancel_requested": True, "updated_at": now}},
        )
        return pending.matched_count + running.matched_count

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
        flt = _where(
            self._scope(job_id, batch_id), [_one_of("status", [s.value for s in statuses])]
        )
        clean = {
            "status": JobStatus.PENDING.value,
            "attempts": 0,
            "error": None,
            "lease": None,
            "cancel_requested": False,
            "run_after": None,
            "started_at": None,
            "completed_at": None,
            "timeout_at": None,
            "progress": None,
            "results": None,
            "updated_at": now,
        }
        res = await self._jobs.update_many(flt, {"$set": clean})
        return res.matched_count

    async def pending_job_types(self) -> dict[str, int]:
        rows = await compat.aggregate(
            self._jobs,
            [
                {"$match": {"status": JobStatus.PENDING.value}},
                {"$group": {"_id": "$job_type", "n": {"$sum": 1}}},
            ],
        )
        out: dict[str, int] = {}
        for row in rows:
            key = row["_id"] or "session"
            out[key] = out.get(key, 0) + int(row["n"])
        return out

    # -- workers ---------------------------------------------------------------

    async def upsert_worker(self, info: WorkerInfo) -> None:
        doc = info.model_dump(mode="python")
        await self._workers.replace_one({"worker_id": info.worker_id}, doc, upsert=True)

    async def remove_worker(self, worker_id: str) -> None:
        await self._workers.delete_one({"worker_id": worker_id})

    async def list_workers(self) -> list[WorkerInfo]:
        docs = await self._workers.find({}).sort([("worker_id", ASCENDING)]).to_list(None)
        out = []
        for doc in docs:
            doc = compat.fix_datetimes(doc)
            doc.pop("_id", None)
            out.append(WorkerInfo.model_validate(doc))
        return out

    # -- wake-up ---------------------------------------------------------------

    def watch_pending(self) -> AsyncIterator[None] | None:
        return self._watch() if self._change_streams else None

    async def _watch(self) -> AsyncIterator[None]:
        """Yield on inserts and on updates that put a job back to ``pending``.

        Any error just ends the iterator; the worker then falls back to polling.
        """
        pipeline = [{"$match": {"operationType": {"$in": ["insert", "update", "replace"]}}}]
        try:
            stream = await self._jobs.watch(pipeline)
            try:
                async for change in stream:
                    if _may_make_claimable(change):
                        yield None
            finally:
                await stream.close()
        except PyMongoError as exc:
            log.info("change stream ended (%s); polling instead", type(exc).__name__)


def _may_make_claimable(change: Mapping[str, Any]) -> bool:
    if change.get("operationType") != "update":
        return True
    fields = (change.get("updateDescription") or {}).get("updatedFields")
    if not isinstance(fields, dict):  # nx-27017 sends the full document instead
        fields = change.get("fullDocument")
        if not isinstance(fields, dict):
            return True  # cannot tell: waking up once too often is cheap
        return fields.get("status") == JobStatus.PENDING.value
    return fields.get("status") == JobStatus.PENDING.value or "run_after" in fields
