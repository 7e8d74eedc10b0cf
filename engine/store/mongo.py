"""``MongoStore``: the storage interface on MongoDB through PyMongo's async client.

MongoDB is what lets many machines share one queue, so every write here is
conditional per document: a claim re-checks that the job is claimable
(``find_one_and_update`` for one job, rounds of ``update_many`` for several: see
``_mongo_claim``), a worker's writes are fenced by its lease (``update_one``, or one
``bulk_write`` for a group of finishes), and batch counts are aggregated from job
states at read time.

Document and filter shapes (and why they look the way they do) live in
``_mongo_docs``; call-level differences of mongomock-motor and nx-27017 live in ``_mongo_compat``.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, Sequence
from datetime import datetime
from typing import Any

from pymongo import ASCENDING, DESCENDING, ReturnDocument
from pymongo.errors import BulkWriteError, OperationFailure, PyMongoError

from jobtui.engine.models import (
    LEGACY_JOB_TYPE,
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
    new_token,
    utcnow,
)
from jobtui.engine.store import _mongo_compat as compat
from jobtui.engine.store import _mongo_docs as docs
from jobtui.engine.store import _mongo_purge as purge
from jobtui.engine.store._mongo_claim import CLAIM_SORT, claim_rounds
from jobtui.engine.store.base import (
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
from jobtui.engine.uri import redact_uri, scrub

log = logging.getLogger(__name__)

# From this many free slots a claim takes jobs in rounds of three commands
# (``_mongo_claim``); below it one ``find_one_and_update`` per job costs no more.
_CLAIM_ROUNDS_FROM = 3
# Index problems on an existing (legacy) collection that must not stop the engine:
# IndexOptionsConflict, IndexKeySpecsConflict, duplicate keys in old data.
_TOLERATED_INDEX_ERRORS = {85, 86, 11000}


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
        event_listeners: list[Any] | None = None,
        server_selection_timeout_ms: int = 5000,
        logs_ttl_seconds: float | None = None,
        legacy_type: str = LEGACY_JOB_TYPE,
    ) -> None:
        self.uri = uri
        #: the job type of documents whose job_type is empty, null or missing
        self.legacy_type = legacy_type
        #: expireAfterSeconds of the TTL index on the log lines' ``ts`` (None: no TTL)
        self.logs_ttl_seconds = logs_ttl_seconds
        self.database_name = database
        self._owns_client = client is None
        if client is None:
            from pymongo import AsyncMongoClient

            options: dict[str, Any] = (
                {"event_listeners": event_listeners} if event_listeners else {}
            )
            try:
                client = AsyncMongoClient(
                    uri,
                    tz_aware=True,
                    serverSelectionTimeoutMS=server_selection_timeout_ms,
                    **options,
                )
            except (PyMongoError, ValueError) as exc:  # the URI itself is malformed
                raise StoreError(
                    "STORE_BAD_URI",
                    f"invalid MongoDB URI {redact_uri(uri)}: {scrub(str(exc), uri)}",
                ) from exc
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

    def _job(self, doc: Any) -> Job:
        return docs.to_job(doc, self.legacy_type)

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
                f"cannot reach {self.description}: {scrub(str(exc), self.uri)[:300]}",
            ) from exc
        for collection, keys, options in self._index_specs():
            try:
                await collection.create_index(keys, **options)
            except OperationFailure as exc:
                if "expireAfterSeconds" in options:  # exists with another period
                    await self._retune_ttl(collection, keys, options["expireAfterSeconds"])
                    continue
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

    async def create_batch(self, batch: Batch, *, placeholder: bool = False) -> None:
        doc = docs.lossless(batch.model_dump(mode="python"))
        if batch.webhook:
            doc["announce"] = docs.ANNOUNCE_PENDING
        where = {"batch_id": batch.batch_id}  # unique: concurrent upserts cannot both insert
        if placeholder:
            await self._batches.update_one(where, {"$setOnInsert": doc}, upsert=True)
        else:
            await self._batches.replace_one(where, doc, upsert=True)
        # Jobs may have run already (enqueue writes them first): count, never assume.
        await self.recount_batches([batch.batch_id], now=utcnow())

    async def insert_jobs(self, jobs: Sequence[Job]) -> InsertResult:
        if not jobs:
            return InsertResult()
        rows = [docs.job_doc(job) for job in jobs]
        failed: dict[int, dict[str, Any]] = {}
        try:
            await self._jobs.insert_many(rows, ordered=False)
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
            for job in map(self._job, await cursor.to_list(None))
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
        scope: ClaimScope | None = None,
    ) -> list[Job]:
        if scope is not None and scope.batch_id is None and not scope.job_ids:
            return []  # an empty scope holds nothing
        free = {t: n for t, n in slots.items() if n > 0}
        if min(limit, sum(free.values())) >= _CLAIM_ROUNDS_FROM:
            return await claim_rounds(
                self._jobs,
                worker_id=worker_id,
                free=free,
                limit=limit,
                lease_seconds=lease_seconds,
                timeouts=timeouts,
                now=now,
                scope=scope,
                legacy=self.legacy_type,
            )
        claimed: list[Job] = []
        # Jobs whose deadline the claim could not write (their types differ in timeout),
        # by deadline: one fenced follow-up per distinct deadline, not one per job.
        follow_up: dict[datetime | None, list[tuple[str, str]]] = {}
        while len(claimed) < limit and free:
            types = sorted(free)
            token = new_token()
            fields = docs.claim_set(worker_id, token, now, lease_seconds)
            limits = {timeouts.get(t) for t in types}
            if len(limits) == 1:  # usual case: the timeout is known before the match
                fields["timeout_at"] = docs.deadline(now, limits.pop())
            doc = await self._jobs.find_one_and_update(
                docs.claimable(types, now, scope, self.legacy_type),
                {"$set": fields, "$inc": {"attempts": 1}},
                sort=CLAIM_SORT,
                return_document=ReturnDocument.AFTER,
            )
            if doc is None:
                break
            job = self._job(doc)
            if "timeout_at" not in fields:
                job.timeout_at = docs.deadline(now, timeouts.get(job.job_type))
                follow_up.setdefault(job.timeout_at, []).append((job.job_id, token))
            claimed.append(job)
            kind = job.job_type if job.job_type in free else self.legacy_type
            free[kind] = free.get(kind, 1) - 1
            if free[kind] <= 0:
                del free[kind]
        for deadline, fenced in follow_up.items():
            # None too: an earlier attempt's deadline must not stay. Fenced: a claim's
            # token is new and random, so it matches only the job it was written on
            # (its job_id), and only while that lease holds.
            await self._jobs.update_many(
                {
                    "job_id": {"$in": [j for j, _ in fenced]},
                    "lease.token": {"$in": [t for _, t in fenced]},
                },
                {"$set": {"timeout_at": deadline}},
            )
        return claimed

    async def heartbeat(
        self, leases: Mapping[str, str], expires_at: datetime
    ) -> dict[str, LeaseState]:
        if not leases:
            return {}
        fence = [{"job_id": j, "lease.token": t} for j, t in leases.items()]
        await self._jobs.update_many(
            docs.where({"status": JobStatus.PROCESSING.value}, [fence]),
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
            docs.fenced(job_id, token),
            {
                "$set": {
                    "progress": docs.lossless(progress.model_dump(mode="json")),
                    "updated_at": utcnow(),
                }
            },
        )
        return bool(res.matched_count == 1)

    async def finish(
        self,
        job_id: str,
        token: str,
        outcome: Outcome,
        *,
        now: datetime,
        only_if_overdue: bool = False,
    ) -> bool:
        fence = docs.fenced(job_id, token)
        flt = docs.where(fence, [docs.overdue(now)]) if only_if_overdue else fence
        res = await self._jobs.update_one(flt, docs.finish_update(outcome, now))
        return bool(res.matched_count == 1)

    async def finish_many(
        self,
        items: Sequence[tuple[str, str, Outcome]],
        *,
        now: datetime,
        worker_id: str | None = None,
    ) -> list[bool]:
        """Fenced finishes in one unordered ``bulk_write`` (one command for the group).

        A bulk write reports only how many of its updates matched. So every finish of
        the group writes the same ``updated_at`` stamp (``now`` to the millisecond, as
        BSON keeps it); when fewer matched than were sent, one ``find`` of the group's
        jobs tells which show this group's write (``_mongo_docs.finished_here``): those
        applied, the others had lost their lease and were left alone. The same reading
        makes a retry with the same ``now`` (after a timeout or failover that hid
        whether the first try applied) answer True for the jobs the first try finished.
        """
        if not items:
            return []
        updates = [
            (docs.fenced(job_id, token), docs.finish_update(outcome, docs.millis(now)))
            for job_id, token, outcome in items
        ]
        if len(updates) == 1:  # the usual idle case: update_one is its own bulk of one
            matched = (await self._jobs.update_one(*updates[0])).matched_count
        else:
            matched = await compat.update_each(self._jobs, updates)
        if matched == len(items):
            return [True] * len(items)
        ids = [job_id for job_id, _, _ in items]
        cursor = self._jobs.find({"job_id": {"$in": ids}}, docs.FINISH_MARK)
        stored = {doc.get("job_id"): doc for doc in await cursor.to_list(None)}
        return [
            docs.finished_here(stored.get(job_id), update, worker_id)
            for job_id, (_, update) in zip(ids, updates, strict=True)
        ]

    async def append_logs(self, entries: Sequence[LogEntry]) -> None:
        if entries:
            await self._logs.insert_many(
                [docs.lossless(e.model_dump(mode="python")) for e in entries]
            )

    # -- watchdog --------------------------------------------------------------

    async def find_overdue(self, now: datetime, limit: int = 100) -> list[Job]:
        flt = docs.where({"status": JobStatus.PROCESSING.value}, [docs.overdue(now)])
        cursor = self._jobs.find(flt).limit(limit)
        return [self._job(doc) for doc in await cursor.to_list(None)]

    async def find_unleased(self, stalled_before: datetime, limit: int = 100) -> list[Job]:
        cursor = self._jobs.find(docs.unleased(stalled_before)).limit(limit)
        return [self._job(doc) for doc in await cursor.to_list(None)]

    async def finish_unleased(
        self, job_id: str, outcome: Outcome, *, stalled_before: datetime, now: datetime
    ) -> bool:
        update = docs.finish_update(outcome, now)
        update["$inc"] = {"attempts": 1}  # the attempt the earlier worker made
        res = await self._jobs.update_one(
            {**docs.unleased(stalled_before), "job_id": job_id}, update
        )
        if res.matched_count != 1:
            return False
        await self.recount_batches(await self._batches_of({"job_id": job_id}), now=now)
        return True

    # -- operator verbs --------------------------------------------------------

    async def ids_with_prefix(
        self, prefix: str, *, batches: bool = False, limit: int = 10
    ) -> list[str]:
        coll, field = (self._batches, "batch_id") if batches else (self._jobs, "job_id")
        rng: dict[str, str] = {"$gte": prefix}
        if prefix:
            rng["$lt"] = prefix[:-1] + chr(ord(prefix[-1]) + 1)
        cursor = coll.find({field: rng}, {"_id": 0, field: 1}).sort(field, 1).limit(limit)
        return [str(d[field]) for d in await cursor.to_list(None) if d.get(field) is not None]

    async def get_job(self, job_id: str) -> Job | None:
        doc = await self._jobs.find_one({"job_id": job_id})
        return self._job(doc) if doc else None

    async def list_jobs(
        self,
        flt: JobFilter | None = None,
        *,
        limit: int = 50,
        after: JobCursor | None = None,
        newest_first: bool = False,
    ) -> list[Job]:
        direction = DESCENDING if newest_first else ASCENDING
        keyset = docs.keyset(after, newest_first)
        cursor = (
            self._jobs.find(docs.job_filter(flt, *keyset, legacy=self.legacy_type))
            .sort([("created_at", direction), ("job_id", direction)])
            .limit(limit)
        )
        return [self._job(doc) for doc in await cursor.to_list(None)]

    async def count_jobs(self, flt: JobFilter | None = None) -> dict[str, int]:
        rows = await compat.aggregate(
            self._jobs,
            [
                {"$match": docs.job_filter(flt, legacy=self.legacy_type)},
                {"$group": {"_id": "$status", "n": {"$sum": 1}}},
            ],
        )
        return {str(r["_id"]): int(r["n"]) for r in rows if r["n"]}

    async def _batch_summaries(
        self, batches: Sequence[Batch], *, units: bool = False
    ) -> list[BatchSummary]:
        """One aggregation for any number of batches (counts never stored); with
        ``units``, one more for the unit tallies of the unfinished ones."""
        if not batches:
            return []
        ids = [b.batch_id for b in batches]
        rows = await compat.aggregate(
            self._jobs,
            docs.batch_counts_pipeline(ids),
            fallback=docs.batch_counts_pipeline(ids, with_times=False),
        )
        found = docs.summaries(batches, rows)
        running = [s.batch.batch_id for s in found if not s.finished]
        if units and running:
            docs.add_units(
                found, await compat.aggregate(self._jobs, docs.batch_units_pipeline(running))
            )
        return found

    async def recount_batches(self, batch_ids: Sequence[str | None], *, now: datetime) -> None:
        """Write the seed's counters into each batch document from a recount of its jobs.

        Recounts race (two engines finish jobs of one batch): each write carries the
        wall-clock time its count started (``counts_as_of``) and applies only over an
        older one, so a slow, stale count never overwrites a newer count.
        """
        ids = sorted({b for b in batch_ids if b})
        if not ids:
            return
        as_of = int(utcnow().timestamp() * 1_000_000)
        rows = await compat.aggregate(
            self._jobs,
            docs.batch_counts_pipeline(ids),
            fallback=docs.batch_counts_pipeline(ids, with_times=False),
        )
        for summary in docs.summaries([Batch(batch_id=b) for b in ids], rows):
            batch_id = summary.batch.batch_id
            fields = batch_counters(summary.counts, summary.last_completed_at or now)
            res = await self._batches.update_one(
                docs.where(
                    {"batch_id": batch_id},
                    [[{"counts_as_of": {"$eq": None}}, {"counts_as_of": {"$lt": as_of}}]],
                ),
                {"$set": {**fields, "counts_as_of": as_of, "updated_at": now}},
            )
            if res.matched_count:  # the newest count also decides the announcement
                flt, announce = docs.announce_step(batch_id, summary.finished)
                await self._batches.update_one(flt, {"$set": {"announce": announce}})

    async def claim_finished_batches(self, limit: int = 20) -> list[BatchSummary]:
        batches: list[Batch] = []
        while len(batches) < limit:
            doc = await self._batches.find_one_and_update(
                {"announce": docs.ANNOUNCE_DUE},
                {"$set": {"announce": docs.ANNOUNCE_SENT}},
                return_document=ReturnDocument.AFTER,
            )
            if doc is None:
                break
            batches.append(docs.to_batch(doc))
        return await self._batch_summaries(batches)

    async def _batches_of(self, scope: dict[str, Any]) -> list[str | None]:
        """The batch an operator verb's scope touched (that of its job, for one job)."""
        if "batch_id" in scope:
            return [scope["batch_id"]]
        doc = await self._jobs.find_one({"job_id": scope["job_id"]}, {"_id": 0, "batch_id": 1})
        return [doc.get("batch_id")] if doc else []

    async def get_batch(self, batch_id: str) -> BatchSummary | None:
        doc = await self._batches.find_one({"batch_id": batch_id})
        if doc is None:
            return None
        return (await self._batch_summaries([docs.to_batch(doc)], units=True))[0]

    async def list_batches(self, *, limit: int = 50) -> list[BatchSummary]:
        cursor = self._batches.find({}).sort([("created_at", DESCENDING)]).limit(limit)
        batches = [docs.to_batch(doc) for doc in await cursor.to_list(None)]
        return await self._batch_summaries(batches, units=True)

    async def tail_logs(
        self, job_id: str, *, limit: int = 200, after: datetime | None = None
    ) -> list[LogEntry]:
        flt: dict[str, Any] = {"job_id": job_id}
        if after is not None:
            flt["ts"] = {"$gt": after}
        cursor = self._logs.find(flt).sort([("ts", DESCENDING), ("seq", DESCENDING)]).limit(limit)
        rows = await cursor.to_list(None)
        return [LogEntry.model_validate(docs.plain(row)) for row in reversed(rows)]

    async def cancel_jobs(
        self, *, job_id: str | None = None, batch_id: str | None = None, now: datetime
    ) -> int:
        scope = docs.scope(job_id, batch_id)
        pending = await self._jobs.update_many(
            {**scope, "status": JobStatus.PENDING.value}, {"$set": docs.cancel_set(now)}
        )
        # Processing with no jobtui lease: no worker of ours will see a cancel request.
        orphaned = await self._jobs.update_many(
            {**scope, "status": JobStatus.PROCESSING.value, "lease": None},
            {"$set": docs.cancel_set(now)},
        )
        running = await self._jobs.update_many(
            {**scope, "status": JobStatus.PROCESSING.value},
            {"$set": {"cancel_requested": True, "updated_at": now}},
        )
        n = pending.matched_count + orphaned.matched_count + running.matched_count
        if n:
            await self.recount_batches(await self._batches_of(scope), now=now)
        return int(n)

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
        scope = docs.scope(job_id, batch_id)
        wanted = docs.one_of("status", [s.value for s in statuses])
        if job_id is not None:  # named: also one the seed's worker left processing
            wanted.append({"status": JobStatus.PROCESSING.value, "lease": {"$eq": None}})
        res = await self._jobs.update_many(
            docs.where(scope, [wanted]), {"$set": docs.retry_set(now)}
        )
        if res.matched_count:
            await self.recount_batches(await self._batches_of(scope), now=now)
        return int(res.matched_count)

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
            key = row["_id"] or self.legacy_type  # "", null and missing alike
            out[key] = out.get(key, 0) + int(row["n"])
        return out

    # -- retention ---------------------------------------------------------------

    async def purge_jobs(
        self,
        *,
        older_than: datetime,
        statuses: Sequence[JobStatus],
        batch_id: str | None = None,
        dry_run: bool = False,
    ) -> PurgeResult:
        """See ``Store.purge_jobs``; chunked finds and deletes in ``_mongo_purge``."""
        wanted = purgeable(statuses)
        run = purge.count if dry_run else purge.delete
        jobs, logs, batches = await run(
            self._jobs, self._logs, self._batches, wanted, older_than, batch_id
        )
        return PurgeResult(jobs, logs, batches, dry_run=dry_run)

    async def purge_logs(self, *, older_than: datetime, dry_run: bool = False) -> int:
        if dry_run:
            return await purge.count_logs(self._logs, older_than)
        return await purge.delete_logs(self._logs, older_than)

    async def _retune_ttl(self, collection: Any, keys: list[tuple[str, int]], ttl: int) -> None:
        """The TTL index exists with another period: change it in place (``collMod``);
        where that fails (mongomock has no collMod), warn and keep the old period."""
        try:
            await collection.database.command(
                {
                    "collMod": collection.name,
                    "index": {"keyPattern": dict(keys), "expireAfterSeconds": ttl},
                }
            )
        except (PyMongoError, TypeError, NotImplementedError) as exc:
            log.warning("TTL of index %s on %s not changed: %s", keys, collection.name, exc)

    # -- workers ---------------------------------------------------------------

    async def upsert_worker(self, info: WorkerInfo) -> None:
        doc = info.model_dump(mode="python")
        await self._workers.replace_one({"worker_id": info.worker_id}, doc, upsert=True)

    async def remove_worker(self, worker_id: str) -> None:
        await self._workers.delete_one({"worker_id": worker_id})

    async def list_workers(self) -> list[WorkerInfo]:
        rows = await self._workers.find({}).sort([("worker_id", ASCENDING)]).to_list(None)
        return [docs.to_worker(row) for row in rows]

    # -- wake-ups --------------------------------------------------------------
    # ``notify`` needs no write of its own here: the change stream sees the enqueue,
    # retry or cancel itself, in every process and on every machine.

    def watch_wakeups(
        self, ready: Callable[[], Awaitable[object]] | None = None
    ) -> AsyncIterator[Wake] | None:
        return self._watch(ready) if self._change_streams else None

    async def _watch(self, ready: Callable[[], Awaitable[object]] | None) -> AsyncIterator[Wake]:
        """Yield ``CLAIM`` on inserts and on updates that put a job back to
        ``pending``, ``CANCEL`` on cancel requests (``_mongo_docs.wake_for``).

        While ``ready`` holds the reads back the server keeps the events for this
        stream's cursor (a cursor left longer than the server's idle timeout is resumed
        by PyMongo from its resume token). Any error just ends the iterator; the worker
        then falls back to polling.
        """
        try:
            stream = await self._jobs.watch(docs.WATCH_PIPELINE, max_await_time_ms=1000)
            try:
                async for change in compat.paced_changes(stream, ready):
                    wake = docs.wake_for(change)
                    if wake is not None:
                        yield wake
            finally:
                await stream.close()
        except PyMongoError as exc:
            log.info("change stream ended (%s); polling instead", type(exc).__name__)

    # -- diagnostics (jobtui doctor) ----------------------------------------------

    def _index_specs(self) -> list[tuple[Any, list[tuple[str, int]], dict[str, Any]]]:
        """Every index the engine relies on: ``open`` creates them, doctor checks them."""
        return [
            (self._jobs, [("job_id", ASCENDING)], {"unique": True}),
            # sparse, not partial: nx-27017 ignores partial filters.
            (self._jobs, [("dedupe_key", ASCENDING)], {"unique": True, "sparse": True}),
            (self._jobs, [("status", 1), ("priority", -1), ("created_at", 1)], {}),
            (self._jobs, [("batch_id", 1), ("status", 1)], {}),
            (self._jobs, [("status", 1), ("lease.expires_at", 1)], {}),
            (self._jobs, [("created_at", 1), ("job_id", 1)], {}),
            (self._logs, [("job_id", 1), ("ts", 1)], {}),
            (self._jobs, [("status", 1), ("completed_at", 1)], {}),  # purge, retention
            *self._ttl_specs(),
            (self._batches, [("batch_id", 1)], {"unique": True}),
            (self._batches, [("created_at", 1)], {}),
            # The due batch.finished announcements, asked for after every recount;
            # sparse: the seed's batches, which carry no announce, are not in it.
            (self._batches, [("announce", 1)], {"sparse": True}),
            (self._workers, [("worker_id", 1)], {"unique": True}),
        ]

    def _ttl_specs(self) -> list[tuple[Any, list[tuple[str, int]], dict[str, Any]]]:
        """MongoDB itself deletes log lines older than the logs retention period."""
        if not self.logs_ttl_seconds:
            return []
        return [(self._logs, [("ts", 1)], {"expireAfterSeconds": int(self.logs_ttl_seconds)})]

    async def missing_indexes(self) -> list[str]:
        have: dict[str, set[tuple[tuple[str, int], ...]]] = {}
        missing = []
        for collection, keys, _ in self._index_specs():
            if collection.name not in have:
                info = await compat.maybe_await(collection.index_information())
                have[collection.name] = {
                    tuple((str(f), int(d)) for f, d in spec["key"]) for spec in info.values()
                }
            if not any(compat.same_index_keys(k, keys) for k in have[collection.name]):
                missing.append(f"{collection.name}: " + ", ".join(f"{f} {d}" for f, d in keys))
        return missing

    async def server_info(self) -> dict[str, Any]:
        """Server version, change streams, and the server's clock (``hello``'s
        ``localTime``) with the local time halfway through the round trip."""
        info: dict[str, Any] = {"kind": self.kind, "change_streams": self._change_streams}
        try:
            build = await self._client.admin.command("buildInfo")
            info["version"] = build.get("version")
        except (PyMongoError, NotImplementedError):
            pass
        try:
            before = utcnow()
            hello = await self._client.admin.command("hello")
            after = utcnow()
        except (PyMongoError, NotImplementedError):  # mongomock has no hello
            return info
        if hello.get("localTime") is not None:
            info["server_time"] = compat.fix_datetimes(hello["localTime"])
            info["local_time"] = before + (after - before) / 2
            info["round_trip_s"] = (after - before).total_seconds()
        info["replica_set"] = hello.get("setName")
        return info
