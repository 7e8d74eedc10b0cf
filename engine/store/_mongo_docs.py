"""What ``MongoStore`` writes and asks: job documents, filters, aggregation folds.

Kept apart from the store's verbs so each stays small and so the document and query
shapes can be read (and reviewed against a real server) in one place.

Query shapes. Filters are plain MongoDB, but written in the subset the ``nx-27017``
test server evaluates correctly. Measured there: it drops the parentheses around a
top-level ``$or`` next to other fields (``a AND b OR c``), mis-evaluates ``$in``/``$ne``
beside logical operators, and never matches a *missing* field with ``$ne``. So a
filter here is: plain equalities at the top, plus ``$and: [{$or: [...]}, ...]`` for
every disjunction, "one of these values" spelled as an ``$or`` of equalities, and
"not true" spelled ``$or: [{f: false}, {f: null}]``. ``$in`` appears only in filters
without logical operators. Real MongoDB evaluates and plans these the same way.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from datetime import datetime, timedelta
from typing import Any, cast

from bson import Binary
from pydantic import BaseModel
from pydantic_core import to_jsonable_python

from jobtui.engine.models import (
    LEGACY_JOB_TYPE,
    UNIT_STATUSES,
    Batch,
    BatchSummary,
    ErrorCode,
    Job,
    JobFilter,
    JobStatus,
    Outcome,
    WorkerInfo,
    job_from_document,
)
from jobtui.engine.store import _mongo_compat as compat
from jobtui.engine.store.base import ClaimScope, Wake

Query = dict[str, Any]
Branches = list[dict[str, Any]]


def where(eq: Mapping[str, Any], ors: Sequence[Branches] = ()) -> Query:
    """Equalities at the top, each disjunction as one ``$and`` member (see above)."""
    query = dict(eq)
    if ors:
        query["$and"] = [{"$or": list(branches)} for branches in ors]
    return query


def one_of(field: str, values: Sequence[Any]) -> Branches:
    return [{field: v} for v in values]


def types_clause(types: Sequence[str], legacy: str = LEGACY_JOB_TYPE) -> Branches:
    """``job_type`` in ``types``, where an empty, null or missing one is ``legacy``.

    ``{job_type: {$eq: null}}`` matches null *and* missing fields on a real server, so
    the legacy branches mean ``$in: ["", null]``. Spelled this way because nx-27017
    mis-evaluates that ``$in`` inside an ``$or`` beside other clauses, and inside an
    ``$or`` its ``{job_type: null}`` matches only missing fields (measured); ``$eq``
    is right on all three backends.
    """
    branches = one_of("job_type", list(types))
    if legacy in types:
        branches += [{"job_type": ""}, {"job_type": {"$eq": None}}]
    return branches


def claimable(
    types: Sequence[str],
    now: datetime,
    scope: ClaimScope | None = None,
    legacy: str = LEGACY_JOB_TYPE,
) -> Query:
    """Pending, due, not cancelled, of a type some free slot can take (in ``scope``)."""
    ors: list[Branches] = [
        [{"cancel_requested": False}, {"cancel_requested": None}],
        [{"run_after": None}, {"run_after": {"$lte": now}}],
        types_clause(types, legacy),
    ]
    if scope is not None:
        batch: Branches = [] if scope.batch_id is None else [{"batch_id": scope.batch_id}]
        ors.append([*batch, *one_of("job_id", sorted(scope.job_ids))])
    return where({"status": JobStatus.PENDING.value}, ors)


def overdue(now: datetime) -> Branches:
    """The lease expired or the job ran past its timeout."""
    return [{"lease.expires_at": {"$lt": now}}, {"timeout_at": {"$lt": now}}]


def unleased(stalled_before: datetime) -> Query:
    """``processing`` with no jobtui lease (the seed's worker left it there) and not
    updated since ``stalled_before``. A jobtui claim writes the lease together with
    the status, so a job of ours is never processing without one."""
    return where(
        {"status": JobStatus.PROCESSING.value, "lease": None},
        [[{"updated_at": {"$eq": None}}, {"updated_at": {"$lt": stalled_before}}]],
    )


def job_filter(flt: JobFilter | None, *extra: Branches, legacy: str = LEGACY_JOB_TYPE) -> Query:
    """The operator's ``JobFilter`` (all given fields must match) plus extra clauses."""
    eq: dict[str, Any] = {}
    ors: list[Branches] = []
    if flt is not None:
        if flt.status:
            ors.append(one_of("status", [s.value for s in flt.status]))
        if flt.job_type:
            ors.append(types_clause(flt.job_type, legacy))
        if flt.batch_id is not None:
            eq["batch_id"] = flt.batch_id
        if flt.text:
            rx = {"$regex": re.escape(flt.text), "$options": "i"}
            ors.append([{"job_id": rx}, {"parameters.path": rx}, {"error.code": rx}])
    ors.extend(extra)
    return where(eq, ors)


def keyset(after: tuple[datetime, str] | None, newest_first: bool) -> list[Branches]:
    """Strictly after the cursor ``(created_at, job_id)`` in the listing order."""
    if after is None:
        return []
    op = "$lt" if newest_first else "$gt"
    created, job_id = after
    return [[{"created_at": {op: created}}, {"created_at": created, "job_id": {op: job_id}}]]


def scope(job_id: str | None, batch_id: str | None) -> Query:
    """Which jobs an operator verb touches; refusing "everything" by omission."""
    if job_id is None and batch_id is None:
        raise ValueError("give job_id or batch_id")
    out: Query = {}
    if job_id is not None:
        out["job_id"] = job_id
    if batch_id is not None:
        out["batch_id"] = batch_id
    return out


# -- updates ---------------------------------------------------------------------


def deadline(now: datetime, seconds: float | None) -> datetime | None:
    return None if seconds is None else now + timedelta(seconds=seconds)


def claim_set(worker_id: str, token: str, now: datetime, lease_seconds: float) -> Query:
    """The ``$set`` of a claim (``timeout_at`` is added by the caller when known)."""
    return {
        "status": JobStatus.PROCESSING.value,
        "lease": {
            "owner": worker_id,
            "token": token,
            "expires_at": now + timedelta(seconds=lease_seconds),
        },
        "started_at": now,
        "processing_started_at": now,  # the seed's name for it; its dashboard reads it
        "worker_id": worker_id,
        "updated_at": now,
    }


def finish_update(outcome: Outcome, now: datetime) -> Query:
    """End of an attempt: terminal (results or error, ``completed_at``) or back to
    ``pending`` (``run_after``, the attempt refunded on a graceful hand-back)."""
    error = outcome.error.model_dump(mode="json") if outcome.error else None
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
            fields["results"] = free_form(outcome.results)
    else:
        fields["run_after"] = outcome.run_after
        fields["progress"] = None  # back in the queue: no progress ("pending 55%")
        if error is not None:  # keep why the last attempt failed, for the console
            fields["error"] = error
    update: Query = {"$set": lossless(fields)}
    if outcome.refund_attempt:
        update["$inc"] = {"attempts": -1}
    return update


def fenced(job_id: str, token: str) -> Query:
    """A running worker's write applies only while its lease holds (invariant 2)."""
    return {"job_id": job_id, "lease.token": token, "status": JobStatus.PROCESSING.value}


def millis(now: datetime) -> datetime:
    """``now`` as BSON keeps it (whole milliseconds), so a stamp written can be
    compared with the one read back."""
    return now.replace(microsecond=now.microsecond // 1000 * 1000)


#: What ``finished_here`` reads back of a job (small: no results, no parameters).
FINISH_MARK = {"_id": 0, "job_id": 1, "status": 1, "updated_at": 1, "worker_id": 1, "error": 1}


def finished_here(doc: Mapping[str, Any] | None, update: Query, worker_id: str | None) -> bool:
    """Whether the stored ``doc`` (``FINISH_MARK`` fields) shows the ``finish_update``
    ``update``, written with its exact ``updated_at`` stamp by ``worker_id`` (who
    claimed the job: a claim writes it, a finish keeps it), rather than another
    writer's. The fence admits one writer per attempt; the others that could write
    the same status in the same millisecond are another worker that claimed the job
    since (``worker_id`` tells) and a watchdog recovering it (its outcomes carry
    ``LEASE_EXPIRED`` or ``TIMEOUT``: the error code tells, except a ``TIMEOUT``
    against a ``TIMEOUT``, which is the same outcome)."""
    if doc is None:
        return False
    wrote = update["$set"]
    if doc.get("status") != wrote["status"]:
        return False
    if compat.as_datetime(doc.get("updated_at")) != millis(wrote["updated_at"]):
        return False
    if worker_id is not None and doc.get("worker_id") != worker_id:
        return False
    if "error" in wrote:
        stored = doc.get("error")
        code = stored.get("code") if isinstance(stored, Mapping) else None
        if code != (wrote["error"] or {}).get("code"):
            return False
    return True


def cancel_set(now: datetime) -> Query:
    return {
        "status": JobStatus.CANCELLED.value,
        "error": {"code": ErrorCode.CANCELLED.value, "message": "cancelled by an operator"},
        "lease": None,
        "completed_at": now,
        "updated_at": now,
    }


def retry_set(now: datetime) -> Query:
    """A clean slate: the job looks freshly enqueued (its history stays in the logs)."""
    cleared = ("error", "lease", "run_after", "started_at", "completed_at", "timeout_at")
    return {
        **dict.fromkeys(cleared + ("progress", "results")),
        "status": JobStatus.PENDING.value,
        "attempts": 0,
        "cancel_requested": False,
        "updated_at": now,
    }


# -- batch.finished announcements ----------------------------------------------------

# A batch with a webhook carries ``announce``: "pending" while jobs are left, "due" once
# a recount found it finished, "sent" once an engine claimed the announcement.
ANNOUNCE_PENDING, ANNOUNCE_DUE, ANNOUNCE_SENT = "pending", "due", "sent"


def announce_step(batch_id: str, finished: bool) -> tuple[Query, str]:
    """(filter, new value) of the announcement after a recount: a finished batch
    becomes due (once); one with jobs left again (a retry) is pending again."""
    if finished:
        return {"batch_id": batch_id, "announce": ANNOUNCE_PENDING}, ANNOUNCE_DUE
    return (
        where({"batch_id": batch_id}, [one_of("announce", [ANNOUNCE_DUE, ANNOUNCE_SENT])]),
        ANNOUNCE_PENDING,
    )


# -- documents ---------------------------------------------------------------------


#: BSON binary subtype (user-defined range) of a string that is not valid UTF-8: a file
#: name read from a non-UTF-8 file system (Python keeps its bytes as surrogate escapes).
SURROGATE_STR = 0x80


def lossless(value: Any) -> Any:
    """``value`` with every string BSON cannot hold (lone surrogates: undecodable bytes
    of a file name) as binary of subtype ``SURROGATE_STR``; ``plain`` turns them back.
    Other strings, the common case, are left as they are (one failed encode tells)."""
    if isinstance(value, str):
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            return Binary(value.encode("utf-8", "surrogateescape"), SURROGATE_STR)
        return value
    if isinstance(value, dict):
        return {k: lossless(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [lossless(v) for v in value]
    return value


def _restore(value: Any) -> Any:
    # By subtype; or plain bytes, which a server that drops the subtype (the nx-27017
    # wire server) hands back. jobtui writes no other binary: its data is JSON.
    if isinstance(value, bytes) and (
        not isinstance(value, Binary) or value.subtype in (0, SURROGATE_STR)
    ):
        return bytes(value).decode("utf-8", "surrogateescape")
    if isinstance(value, dict):
        return {k: _restore(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_restore(v) for v in value]
    return value


def free_form(value: Any) -> Any:
    """Handler-supplied data (parameters, results, error details) as JSON values.

    BSON cannot store a ``Path`` or a set, and the SQLite store keeps JSON: both
    stores hand back the same thing for the same input.
    """
    return to_jsonable_python(value)


_FREE_FORM = ("parameters", "results", "webhook", "error", "progress")


def job_doc(job: Job) -> dict[str, Any]:
    doc = job.model_dump(mode="python")
    doc.update(job.model_dump(mode="json", include=set(_FREE_FORM)))
    doc["status"] = job.status.value
    # A sparse unique index skips *missing* keys, not nulls: no key means no field.
    if doc.get("dedupe_key") is None:
        doc.pop("dedupe_key", None)
    if doc.get("logs") is None:
        doc.pop("logs", None)
    return cast("dict[str, Any]", lossless(doc))


# Fields whose model default is not None: a legacy ``null`` there means "default".
def _datetime_fields(model: type[BaseModel]) -> list[str]:
    return [n for n, f in model.model_fields.items() if "datetime" in str(f.annotation)]


# Where a datetime may have been written by ``$set`` (see ``_mongo_compat``).
_JOB_DATETIMES = [*_datetime_fields(Job), "lease.expires_at"]
_WORKER_DATETIMES = _datetime_fields(WorkerInfo)


def plain(raw: Mapping[str, Any], datetimes: Sequence[str] = ()) -> dict[str, Any]:
    """A stored document without ``_id``, datetimes aware UTC."""
    doc = compat.fix_datetimes(_restore(dict(raw)))
    doc.pop("_id", None)
    compat.parse_text_datetimes(doc, datetimes)
    return cast("dict[str, Any]", doc)


def to_job(raw: Mapping[str, Any], legacy: str = LEGACY_JOB_TYPE) -> Job:
    """Read a stored job, tolerating the seed's legacy ``event_jobs`` documents."""
    doc = plain(raw, _JOB_DATETIMES)
    compat.fix_legacy_logs(doc)
    return job_from_document(doc, legacy)


def to_batch(raw: Mapping[str, Any]) -> Batch:
    return Batch.model_validate(plain(raw))


def to_worker(raw: Mapping[str, Any]) -> WorkerInfo:
    return WorkerInfo.model_validate(plain(raw, _WORKER_DATETIMES))


# -- aggregations --------------------------------------------------------------------

_SEP = "|"  # status values never contain it, so the first one splits the key


def batch_counts_pipeline(
    batch_ids: Sequence[str], *, with_times: bool = True
) -> list[dict[str, Any]]:
    """One ``$group`` for any number of batches, keyed ``"<status>|<batch_id>"``
    (a string key: nx-27017 cannot group by a sub-document). ``with_times=False``
    leaves out first start / last completion (the nx-27017 fallback)."""
    ids = list(batch_ids)
    match = {"batch_id": ids[0]} if len(ids) == 1 else {"batch_id": {"$in": ids}}
    return [
        {"$match": match},
        {
            "$group": {
                "_id": {"$concat": ["$status", _SEP, "$batch_id"]},
                "n": {"$sum": 1},
                **(
                    {"first": {"$min": "$started_at"}, "last": {"$max": "$completed_at"}}
                    if with_times
                    else {}
                ),
            }
        },
    ]


def batch_units_pipeline(batch_ids: Sequence[str]) -> list[dict[str, Any]]:
    """The work in units (``progress.done``/``total`` of ``progress.unit``) of the
    batches' processing and completed jobs, one ``$group`` keyed
    ``"<status>|<unit>|<batch_id>"``. ``$sum`` skips values that are not numbers, so a
    missing ``done`` adds nothing. A job with no unit that returned a number of
    ``results.pages`` counts in pages (small PDFs are read in one go, with no progress)."""
    ids = list(batch_ids)
    return [
        {
            "$match": {
                "batch_id": ids[0] if len(ids) == 1 else {"$in": ids},
                "status": {"$in": list(UNIT_STATUSES)},
                "$or": [
                    {"progress.unit": {"$type": "string"}},
                    {"results.pages": {"$type": "number"}},
                ],
            }
        },
        {
            "$group": {
                "_id": {
                    "$concat": [
                        "$status",
                        _SEP,
                        {"$ifNull": ["$progress.unit", "pages"]},
                        _SEP,
                        "$batch_id",
                    ]
                },
                "n": {"$sum": 1},
                "done": {"$sum": "$progress.done"},
                "total": {"$sum": {"$ifNull": ["$progress.total", "$results.pages"]}},
            }
        },
    ]


def add_units(summaries: Sequence[BatchSummary], rows: list[dict[str, Any]]) -> None:
    """Fold the ``batch_units_pipeline`` rows into the summaries' unit tallies."""
    by_id = {s.batch.batch_id: s for s in summaries}
    # Longest first: a batch id or a unit may hold the separator too (a seed batch id
    # is any string), so the key's end is matched against the ids asked for.
    longest = sorted(by_id, key=len, reverse=True)
    for row in rows:
        status, _, rest = str(row["_id"]).partition(_SEP)  # statuses hold none
        batch_id = next((b for b in longest if rest.endswith(_SEP + b)), None)
        if batch_id is not None:
            unit = rest[: -len(batch_id) - 1]
            by_id[batch_id].add_units(status, unit, int(row["n"]), row["done"], row["total"])


def summaries(batches: Sequence[Batch], rows: list[dict[str, Any]]) -> list[BatchSummary]:
    """Fold the ``batch_counts_pipeline`` rows into one summary per batch."""
    counts: dict[str, dict[str, int]] = {b.batch_id: {} for b in batches}
    first: dict[str, datetime] = {}
    last: dict[str, datetime] = {}
    for row in rows:
        status, _, batch_id = str(row["_id"]).partition(_SEP)
        if batch_id not in counts:
            continue
        counts[batch_id][status] = counts[batch_id].get(status, 0) + int(row["n"])
        started = compat.as_datetime(row.get("first"))
        completed = compat.as_datetime(row.get("last"))
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


# -- change streams -------------------------------------------------------------------

_UPDATED = "$updateDescription.updatedFields"

#: The server sends only what may wake an engine (``wake_for`` decides on what comes):
#: inserts and replacements, and updates that set ``status`` to pending, move
#: ``run_after`` or ask for a cancel; claims, finishes, heartbeats and progress writes,
#: the bulk of the traffic, stay on the server. The update test is a ``$redact``
#: expression (allowed in change streams; ``$$PRUNE`` at the root drops the event):
#: nx-27017 evaluates only equalities in ``$match`` and passes stages it does not know,
#: so it still sends every event, and ``wake_for`` sorts them here.
WATCH_PIPELINE: list[dict[str, Any]] = [
    {"$match": {"operationType": {"$in": ["insert", "update", "replace"]}}},
    {
        "$redact": {
            "$cond": [
                {
                    "$or": [
                        {"$ne": ["$operationType", "update"]},
                        {"$eq": [f"{_UPDATED}.status", JobStatus.PENDING.value]},
                        {"$eq": [f"{_UPDATED}.cancel_requested", True]},
                        {"$ne": [{"$type": f"{_UPDATED}.run_after"}, "missing"]},
                    ]
                },
                "$$KEEP",
                "$$PRUNE",
            ]
        }
    },
]


def wake_for(change: Mapping[str, Any]) -> Wake | None:
    """What a change means to engines: ``CLAIM`` for inserts and updates that put a
    job back to ``pending`` (or move ``run_after``), ``CANCEL`` for a cancel request
    on a running job, None for the rest.

    Heartbeats and progress writes are updates too; they must not wake every worker.
    """
    if change.get("operationType") != "update":
        return Wake.CLAIM
    fields = (change.get("updateDescription") or {}).get("updatedFields")
    if not isinstance(fields, dict):  # nx-27017 sends the full document instead
        full = change.get("fullDocument")
        if not isinstance(full, dict):
            return Wake.CLAIM  # cannot tell: waking up once too often is cheap
        # No CANCEL from a full document: every later heartbeat of that job would
        # carry cancel_requested again and poke another heartbeat (a loop).
        return Wake.CLAIM if full.get("status") == JobStatus.PENDING.value else None
    if fields.get("status") == JobStatus.PENDING.value or "run_after" in fields:
        return Wake.CLAIM
    return Wake.CANCEL if fields.get("cancel_requested") is True else None
