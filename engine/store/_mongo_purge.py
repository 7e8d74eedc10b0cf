"""``MongoStore``'s retention: purge old finished jobs and expire old log lines.

A purge collects ``job_id``s ``CHUNK`` at a time (one status at a time, filter
``{status, completed_at: {$lt}, batch_id}``: equalities and a range, the shape every
backend evaluates alike), then deletes those jobs and their log lines by ``job_id``
``$in`` that chunk. No single command carries more than ``CHUNK`` ids, so purging
100,000 jobs is a few hundred small commands, not one giant ``$in``.

The job delete repeats the status next to the ids, so a job retried between the
find and the delete survives; its log lines are kept too (only the ids that are
really gone lose their logs). The dry run walks the same finds and counts instead.

Why not the whole filter in the delete, or ``count_documents`` for the dry run:
nx-27017 stores a ``completed_at`` written by ``$set`` as text, and while its
``find`` compares that text with a datetime range correctly, ``count_documents`` and
a filter with ``$in`` beside the range match nothing (measured). Counting what the
finds return, and deleting by ``{status, job_id: {$in}}``, is right everywhere.

Batches left with no jobs go last: those touched by the purge, and those created
before the cutoff that hold no job (an empty batch a crash left behind).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from datetime import datetime
from typing import Any

from jobtui.engine.models import JobStatus
from jobtui.engine.store import _mongo_compat as compat

CHUNK = 500
LOG_CHUNK = 5000


def job_scope(status: JobStatus, older_than: datetime, batch_id: str | None) -> dict[str, Any]:
    flt: dict[str, Any] = {"status": status.value, "completed_at": {"$lt": older_than}}
    if batch_id is not None:
        flt["batch_id"] = batch_id
    return flt


async def _chunks(cursor: Any, size: int = CHUNK) -> AsyncIterator[list[dict[str, Any]]]:
    part: list[dict[str, Any]] = []
    async for doc in cursor:
        part.append(doc)
        if len(part) >= size:
            yield part
            part = []
    if part:
        yield part


async def _jobs_per_batch(jobs: Any, batch_ids: Sequence[str]) -> dict[str, int]:
    """How many jobs each of these batches holds now (absent: none)."""
    out: dict[str, int] = {}
    ids = list(batch_ids)
    for i in range(0, len(ids), CHUNK):
        part = ids[i : i + CHUNK]
        rows = await compat.aggregate(
            jobs,
            [
                {"$match": {"batch_id": {"$in": part}}},
                {"$group": {"_id": "$batch_id", "n": {"$sum": 1}}},
            ],
        )
        out.update({str(r["_id"]): int(r["n"]) for r in rows if r["n"]})
    return out


async def _old_batches(batches: Any, older_than: datetime, batch_id: str | None) -> set[str]:
    flt: dict[str, Any] = {"created_at": {"$lt": older_than}}
    if batch_id is not None:
        flt["batch_id"] = batch_id
    cursor = batches.find(flt, {"_id": 0, "batch_id": 1})
    return {str(d["batch_id"]) async for d in cursor if d.get("batch_id") is not None}


async def count(
    jobs: Any,
    logs: Any,
    batches: Any,
    statuses: Sequence[JobStatus],
    older_than: datetime,
    batch_id: str | None,
) -> tuple[int, int, int]:
    """(jobs, log lines, batches) a purge would delete."""
    n_jobs = n_logs = 0
    purged_in: dict[str, int] = {}
    for status in statuses:
        cursor = jobs.find(
            job_scope(status, older_than, batch_id), {"_id": 0, "job_id": 1, "batch_id": 1}
        )
        async for part in _chunks(cursor):
            n_jobs += len(part)
            ids = [d["job_id"] for d in part]
            n_logs += await logs.count_documents({"job_id": {"$in": ids}})
            for d in part:
                if d.get("batch_id") is not None:
                    purged_in[d["batch_id"]] = purged_in.get(d["batch_id"], 0) + 1
    candidates = set(purged_in) | await _old_batches(batches, older_than, batch_id)
    held = await _jobs_per_batch(jobs, sorted(candidates))
    empty = [b for b in candidates if held.get(b, 0) == purged_in.get(b, 0)]
    n_batches = 0
    for i in range(0, len(empty), CHUNK):
        n_batches += await batches.count_documents({"batch_id": {"$in": empty[i : i + CHUNK]}})
    return n_jobs, n_logs, n_batches


async def delete(
    jobs: Any,
    logs: Any,
    batches: Any,
    statuses: Sequence[JobStatus],
    older_than: datetime,
    batch_id: str | None,
) -> tuple[int, int, int]:
    """Delete what ``count`` counts, ``CHUNK`` jobs per command."""
    n_jobs = n_logs = 0
    touched: set[str] = set()
    for status in statuses:
        scope = job_scope(status, older_than, batch_id)
        while True:
            cursor = jobs.find(scope, {"_id": 0, "job_id": 1, "batch_id": 1}).limit(CHUNK)
            part = await cursor.to_list(None)
            if not part:
                break
            ids = [d["job_id"] for d in part]
            res = await jobs.delete_many({"status": status.value, "job_id": {"$in": ids}})
            survivors = {
                d["job_id"]
                async for d in jobs.find({"job_id": {"$in": ids}}, {"_id": 0, "job_id": 1})
            }
            gone = [i for i in ids if i not in survivors]
            if gone:
                n_logs += (await logs.delete_many({"job_id": {"$in": gone}})).deleted_count
            n_jobs += res.deleted_count
            touched.update(d["batch_id"] for d in part if d.get("batch_id") is not None)
            if res.deleted_count == 0 or len(part) < CHUNK:
                break  # done (or someone else is deleting the same jobs right now)
    candidates = sorted(touched | await _old_batches(batches, older_than, batch_id))
    held = await _jobs_per_batch(jobs, candidates)
    empty = [b for b in candidates if not held.get(b)]
    n_batches = 0
    for i in range(0, len(empty), CHUNK):
        res = await batches.delete_many({"batch_id": {"$in": empty[i : i + CHUNK]}})
        n_batches += res.deleted_count
    return n_jobs, n_logs, n_batches


async def count_logs(logs: Any, older_than: datetime) -> int:
    return int(await logs.count_documents({"ts": {"$lt": older_than}}))


async def delete_logs(logs: Any, older_than: datetime) -> int:
    """Delete log lines older than ``older_than``, ``LOG_CHUNK`` per command."""
    total = 0
    while True:
        cursor = logs.find({"ts": {"$lt": older_than}}, {"_id": 1}).limit(LOG_CHUNK)
        ids = [d["_id"] for d in await cursor.to_list(None)]
        if not ids:
            return total
        res = await logs.delete_many({"_id": {"$in": ids}})
        total += res.deleted_count
        if res.deleted_count == 0 or len(ids) < LOG_CHUNK:
            return int(total)
