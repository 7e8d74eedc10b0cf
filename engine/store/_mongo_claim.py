"""Claiming several jobs on MongoDB in three commands instead of one each.

MongoDB has no ``UPDATE ... RETURNING`` for many documents. A round here:

1. ``find`` the best claimable jobs (``_id``-less projection of ``job_id`` and
   ``job_type``, in claim order, as many as the free slots): only a nomination;
2. ``update_many`` those ``job_id``s *with the whole claimable filter again*, writing one
   fresh lease token: each document's update is atomic and re-checks that the job is
   still pending, due and not cancelled, so a job another engine claimed in between is
   simply not matched (two engines never both claim one job: invariant 1);
3. ``find`` the nominated jobs that carry this token: exactly the ones this round took.

A round that lost every nominee to other engines is followed by another while
nominees keep coming; one that finds none ends the claim. One ``update_many`` per
distinct deadline (``timeout_at``: job types may differ in timeout), usually one.
The token is shared by the round's jobs; every fenced write pairs it with a
``job_id``, so it still names one attempt of one job.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from pymongo import ASCENDING, DESCENDING

from jobtui.engine.models import Job, new_token
from jobtui.engine.store import _mongo_compat as compat
from jobtui.engine.store import _mongo_docs as docs
from jobtui.engine.store.base import ClaimScope

CLAIM_SORT = [("priority", DESCENDING), ("created_at", ASCENDING)]


async def claim_rounds(
    jobs: Any,
    *,
    worker_id: str,
    free: dict[str, int],
    limit: int,
    lease_seconds: float,
    timeouts: Mapping[str, float | None],
    now: datetime,
    scope: ClaimScope | None,
    legacy: str,
) -> list[Job]:
    """Claim up to ``limit`` jobs within the ``free`` slots per type (which it
    decrements), in rounds of the three commands above."""
    claimed: list[Job] = []
    while len(claimed) < limit and free:
        types = sorted(free)
        cursor = (
            jobs.find(
                docs.claimable(types, now, scope, legacy), {"_id": 0, "job_id": 1, "job_type": 1}
            )
            .sort(CLAIM_SORT)
            .limit(limit - len(claimed))
        )
        nominees = _within_slots(await cursor.to_list(None), free, legacy)
        if not nominees:
            break
        took = await _take(jobs, nominees, types, worker_id, lease_seconds, timeouts, now, legacy)
        for job in took:
            kind = job.job_type if job.job_type in free else legacy
            free[kind] = free.get(kind, 1) - 1
            if free[kind] <= 0:
                del free[kind]
        claimed.extend(took)
    return claimed


def _within_slots(
    rows: list[dict[str, Any]], free: Mapping[str, int], legacy: str
) -> list[tuple[str, str]]:
    """The nominees' ``(job_id, job type)``, in order, no more of a type than it has
    free slots (an empty, null or missing ``job_type`` is ``legacy``)."""
    left = dict(free)
    chosen = []
    for row in rows:
        kind = row.get("job_type") or legacy
        if left.get(kind, 0) > 0 and row.get("job_id"):
            left[kind] -= 1
            chosen.append((str(row["job_id"]), kind))
    return chosen


async def _take(
    jobs: Any,
    nominees: list[tuple[str, str]],
    types: list[str],
    worker_id: str,
    lease_seconds: float,
    timeouts: Mapping[str, float | None],
    now: datetime,
    legacy: str,
) -> list[Job]:
    token = new_token()
    by_deadline: dict[datetime | None, list[str]] = {}
    for job_id, kind in nominees:
        by_deadline.setdefault(docs.deadline(now, timeouts.get(kind)), []).append(job_id)
    for deadline, ids in by_deadline.items():
        fields = docs.claim_set(worker_id, token, now, lease_seconds)
        fields["timeout_at"] = deadline  # None too: an earlier attempt's must not stay
        await compat.update_many(
            jobs,
            docs.claimable(types, now, ClaimScope(job_ids=frozenset(ids)), legacy),
            {"$set": fields, "$inc": {"attempts": 1}},
        )
    ids = [job_id for job_id, _ in nominees]
    cursor = jobs.find({"job_id": {"$in": ids}, "lease.token": token})
    order = {job_id: i for i, job_id in enumerate(ids)}
    took = [docs.to_job(doc, legacy) for doc in await cursor.to_list(None)]
    return sorted(took, key=lambda job: order.get(job.job_id, len(order)))
