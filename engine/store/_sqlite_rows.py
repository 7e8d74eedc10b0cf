"""How the SQLite store maps models to rows, and its statements.

* Timestamps are INTEGER microseconds since the Unix epoch, UTC: exact round trips
  (no float rounding in keyset cursors), numeric sort order, aware datetimes back.
* Every ``Job`` field the store filters or orders on has its own column; the rest
  (parameters, results, error, progress, webhook, legacy ``logs`` and unknown extra
  fields) lives in ``doc``, a JSON object. Datetimes inside ``doc`` are tagged
  ``{"$date": <microseconds>}`` so legacy extras come back as datetimes, as they
  would from MongoDB.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar, overload

from jobtui.engine.models import ErrorCode, Job, JobFilter, JobStatus, Outcome, job_from_document

T = TypeVar("T")

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_US = timedelta(microseconds=1)

COLUMNS = (
    "job_id", "job_type", "status", "priority", "created_at", "run_after",
    "cancel_requested", "batch_id", "dedupe_key", "lease_owner", "lease_token",
    "lease_expires_at", "timeout_at", "attempts", "max_attempts", "started_at",
    "completed_at", "updated_at", "worker_id",
)  # fmt: skip
#: The select list of a whole job row (``doc`` last).
SELECT = ", ".join(COLUMNS) + ", doc"
_TIME_COLUMNS = frozenset(
    {"created_at", "run_after", "lease_expires_at", "timeout_at", "started_at",
     "completed_at", "updated_at"}
)  # fmt: skip
# Fields of Job that have their own column (``lease`` is spread over three).
_COLUMN_FIELDS = frozenset(COLUMNS) | {"lease"}
# Known optional fields not worth storing when empty.
_DROP_IF_NONE = frozenset({"results", "error", "progress", "webhook", "logs"})
# Fields whose model default is not None: a legacy ``null`` there means "default".
_CHUNK = 500  # keeps IN (...) lists far below SQLite's variable limit


@overload
def to_us(value: datetime) -> int: ...
@overload
def to_us(value: datetime | None) -> int | None: ...
def to_us(value: datetime | None) -> int | None:
    """Aware (or naive-as-UTC) datetime -> integer microseconds since the epoch."""
    if value is None:
        return None
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return (value - _EPOCH) // _US


@overload
def from_us(value: int) -> datetime: ...
@overload
def from_us(value: int | None) -> datetime | None: ...
def from_us(value: int | None) -> datetime | None:
    return None if value is None else _EPOCH + timedelta(microseconds=value)


def _json_default(obj: Any) -> Any:
    if isinstance(obj, datetime):
        return {"$date": to_us(obj)}
    if hasattr(obj, "model_dump"):  # a pydantic model nested in an extra field
        return obj.model_dump()
    if isinstance(obj, (set, tuple)):
        return list(obj)
    return str(obj)  # ObjectId, Path, Decimal...: keep something readable


def _json_hook(obj: dict[str, Any]) -> Any:
    if len(obj) == 1 and "$date" in obj and isinstance(obj["$date"], int):
        return from_us(obj["$date"])
    return obj


def text_cell(text: str) -> str | bytes:
    """A string for a TEXT column. One SQLite cannot take as UTF-8 (lone surrogates:
    the undecodable bytes of a file name) goes in as its bytes (a BLOB in that cell);
    ``cell_text`` turns it back. JSON columns need none of this: ``dumps`` escapes."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return text.encode("utf-8", "surrogateescape")
    return text


def cell_text(value: str | bytes) -> str:
    return value.decode("utf-8", "surrogateescape") if isinstance(value, bytes) else value


def dumps(value: Any) -> str:
    return json.dumps(value, default=_json_default, separators=(",", ":"))


def loads(text: str | None) -> Any:
    if not text:
        return {}
    if '"$date"' not in text:  # the usual job: no hook call per JSON object
        return json.loads(text)
    return json.loads(text, object_hook=_json_hook)


def marks(values: Sequence[Any]) -> str:
    """``?, ?, ?`` for an IN list (``NULL`` when empty: matches nothing)."""
    return ", ".join("?" * len(values)) if values else "NULL"


def chunks(values: Sequence[T]) -> list[Sequence[T]]:
    return [values[i : i + _CHUNK] for i in range(0, len(values), _CHUNK)]


# -- jobs ----------------------------------------------------------------------------


def job_row(job: Job) -> tuple[Any, ...]:
    """The INSERT values of a job, in ``SELECT`` order."""
    data = job.model_dump()
    lease = data.get("lease") or {}
    doc = {
        k: v
        for k, v in data.items()
        if k not in _COLUMN_FIELDS and not (v is None and k in _DROP_IF_NONE)
    }
    values: list[Any] = []
    for col in COLUMNS:
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


# Where the columns go when a row becomes a job (worked out once: claim reads many
# rows per call). The lease_* columns are folded into ``lease``.
_TIMES = [(i, c) for i, c in enumerate(COLUMNS) if c in _TIME_COLUMNS and "lease_" not in c]
_CANCEL_REQUESTED = COLUMNS.index("cancel_requested")
_OWNER, _TOKEN, _EXPIRES = (
    COLUMNS.index(c) for c in ("lease_owner", "lease_token", "lease_expires_at")
)


def row_job(row: Sequence[Any]) -> Job:
    """A job from a row selected with ``SELECT``."""
    data: dict[str, Any] = loads(row[-1])
    data.update(zip(COLUMNS, row))  # the columns win over ``doc``; ``doc`` itself is last
    for i, col in _TIMES:
        value = row[i]
        if value is not None:
            data[col] = _EPOCH + timedelta(microseconds=value)
    data["cancel_requested"] = bool(row[_CANCEL_REQUESTED])
    del data["lease_owner"], data["lease_token"], data["lease_expires_at"]
    token = row[_TOKEN]
    data["lease"] = (
        {"owner": row[_OWNER], "token": token, "expires_at": from_us(row[_EXPIRES])}
        if token
        else None
    )
    return Job.model_validate(data)


def legacy_job(raw: Mapping[str, Any], legacy_type: str) -> Job:
    """Read a seed-era ``event_jobs`` document the way ``MongoStore`` does: an empty,
    null or missing ``job_type`` means ``legacy_type``, ``null`` means the default, a
    string error or a bare number for progress are wrapped."""
    doc = {k: v for k, v in raw.items() if k != "_id"}
    return job_from_document(doc, legacy_type)


def job_where(flt: JobFilter | None) -> tuple[str, list[Any]]:
    """SQL conditions (joined with AND, or ``1``) and parameters for a filter."""
    clauses: list[str] = []
    params: list[Any] = []
    if flt is not None:
        if flt.status:
            clauses.append(f"status IN ({marks(flt.status)})")
            params += [str(s) for s in flt.status]
        if flt.job_type:
            clauses.append(f"job_type IN ({marks(flt.job_type)})")
            params += list(flt.job_type)
        if flt.batch_id is not None:
            clauses.append("batch_id = ?")
            params.append(flt.batch_id)
        if flt.text:
            # A substring search scans either way; instr() needs no LIKE escaping,
            # so "a.b" or "50%" match literally.
            clauses.append(
                "(instr(lower(job_id), ?) > 0"
                " OR instr(lower(json_extract(doc, '$.parameters.path')), ?) > 0"
                " OR instr(lower(json_extract(doc, '$.error.code')), ?) > 0)"
            )
            params += [flt.text.lower()] * 3
    return (" AND ".join(clauses) or "1"), params


def scope_where(job_id: str | None, batch_id: str | None) -> tuple[str, list[Any]]:
    """Which jobs an operator verb touches; "everything" is refused, as in MongoStore."""
    if job_id is None and batch_id is None:
        raise ValueError("give job_id or batch_id")
    clauses, params = [], []
    if job_id is not None:
        clauses.append("job_id = ?")
        params.append(job_id)
    if batch_id is not None:
        clauses.append("batch_id = ?")
        params.append(batch_id)
    return " AND ".join(clauses), params


# -- statements ------------------------------------------------------------------

INSERT_JOB = (
    f"INSERT INTO jobs ({SELECT}) VALUES ({marks(COLUMNS + ('doc',))})"
    # Only a dedupe clash is ignored (a clashing job_id still raises). The unique
    # index decides, so two inserters, even in two processes, cannot both win.
    " ON CONFLICT(dedupe_key) DO NOTHING"
)
FENCE = "job_id = ? AND lease_token = ? AND status = 'processing'"
OVERDUE = "(lease_expires_at < ? OR timeout_at < ?)"
# Processing with no jobtui lease, not updated since ? (see Store.find_unleased).
UNLEASED = (
    "status = 'processing' AND lease_token IS NULL AND (updated_at IS NULL OR updated_at < ?)"
)
CLEAR_LEASE = "lease_owner = NULL, lease_token = NULL, lease_expires_at = NULL"
# A job ended as cancelled without an error still says why (as MongoStore does).
_CANCELLED_ANYWAY = {"code": ErrorCode.CANCELLED.value, "message": "cancelled"}
CANCELLED_BY_OPERATOR = {"code": ErrorCode.CANCELLED.value, "message": "cancelled by an operator"}


def _json_cell(value: Any) -> str:
    """``dumps``, with the values of most finishes (nothing, an empty dict) known."""
    if value is None:
        return "null"
    if value == {} and type(value) is dict:
        return "{}"
    return dumps(value)


@functools.lru_cache(maxsize=64)
def _finish_sql(terminal: bool, paths: tuple[str, ...], refund: bool) -> str:
    """The text of a fenced finish of one shape (few shapes: cached)."""
    sets = [f"status = ?, updated_at = ?, timeout_at = NULL, {CLEAR_LEASE}"]
    sets.append("completed_at = ?" if terminal else "run_after = ?")
    if refund:
        sets.append("attempts = attempts - 1")
    if paths:
        sets.append("doc = json_set(doc, " + ", ".join(f"{p}, json(?)" for p in paths) + ")")
    return f"UPDATE jobs SET {', '.join(sets)} WHERE {FENCE}"


def finish_statement(outcome: Outcome, now_us: int | None) -> tuple[str, list[Any]]:
    """The fenced UPDATE that ends an attempt (as ``MongoStore``'s finish_update);
    its parameters end before the fence's ``job_id, lease_token``."""
    status = outcome.status
    error = outcome.error.model_dump() if outcome.error is not None else None
    params: list[Any] = [status.value, now_us]
    if status.terminal:
        params.append(now_us)  # completed_at
        if status is JobStatus.CANCELLED and error is None:
            error = _CANCELLED_ANYWAY
        params.append(_json_cell(error))
        if outcome.results is not None or status is JobStatus.COMPLETED:
            params.append(_json_cell(outcome.results))
            paths: tuple[str, ...] = ("'$.error'", "'$.results'")
        else:
            paths = ("'$.error'",)
    else:
        params.append(to_us(outcome.run_after))  # run_after
        params.append("null")  # back in the queue: no progress ("pending 55%")
        if error is not None:  # keep why the last attempt failed, for the console
            params.append(_json_cell(error))
            paths = ("'$.progress'", "'$.error'")
        else:
            paths = ("'$.progress'",)
    return _finish_sql(status.terminal, paths, outcome.refund_attempt), params


def claim_statement(
    *,
    worker_id: str,
    slots: Mapping[str, int],
    limit: int,
    lease_seconds: float,
    timeouts: Mapping[str, float | None],
    now: datetime,
    scope: tuple[str | None, Sequence[str]] | None = None,
) -> tuple[str, list[Any]]:
    """The claim: one ``UPDATE ... RETURNING`` over the job types with free slots
    (``slots`` holds only those). ``scope``: ``(batch_id, job_ids)``, the only jobs
    it may take (``ClaimScope``). Exposed so a test can EXPLAIN its query plan."""
    types = sorted(slots)
    now_us = to_us(now)
    # "?" are numbered in textual order: the SET parameters come first.
    params: list[Any] = [now_us, now_us, worker_id, worker_id]
    params.append(to_us(now + timedelta(seconds=lease_seconds)))
    timed = [(t, timeouts[t]) for t in types if timeouts.get(t) is not None]
    for t, secs in timed:
        params += [t, to_us(now + timedelta(seconds=float(secs or 0)))]
    named = scope is not None and bool(scope[1])
    if scope is not None and scope[1]:  # the named jobs, once for all types (_claim_sql)
        params.append(dumps(sorted(scope[1])))
    for t in types:
        n = min(slots[t], limit)
        if scope is None:
            params += [t, now_us, n]
        else:  # the batch's pick, then the named jobs'
            params += [scope[0], t, now_us, n]
            if named:
                params += [t, now_us, n]
    params.append(limit)
    return _claim_sql(len(types), len(timed), scope is not None, named), params


def _ready(t: str = "") -> str:
    """A claimable row: pending, of the type ``?``, not cancelled, due at ``?``
    (``t``: the table's alias and a dot, or nothing)."""
    return (
        f"{t}status = 'pending' AND {t}job_type = ? AND {t}cancel_requested = 0"
        f" AND ({t}run_after IS NULL OR {t}run_after <= ?)"
    )


@functools.lru_cache(maxsize=64)
def _claim_sql(n_types: int, n_timed: int, scoped: bool, named: bool = False) -> str:
    """The claim's text for one shape (the job types are parameters): built once, not
    per claim."""
    timeout_sql = "NULL"
    if n_timed:
        timeout_sql = "CASE job_type " + "WHEN ? THEN ? " * n_timed + "END"
    # One limited pick per job type, each an O(log n) range of jobs_claim (scoped:
    # of jobs_claim_batch, plus the named jobs by primary key), merged
    # in claim order under the overall limit: at most slots[t] jobs of type t and
    # `limit` in all, in one statement. Each row gets its own random token.
    ready = _ready()
    order = " ORDER BY priority DESC, created_at, job_id LIMIT ?"
    cols = "rowid AS id, priority, created_at, job_id"
    pick = f"SELECT * FROM (SELECT {cols} FROM jobs WHERE {ready}{order})"
    with_named = ""
    if scoped:
        # The batch's pick is a range of jobs_claim_batch in claim order (it used to
        # list and sort all the batch's pending jobs: a cost growing with the batch).
        # Everyone else's pending jobs are never read.
        pick = f"SELECT * FROM (SELECT {cols} FROM jobs WHERE batch_id = ? AND {ready}{order})"
        if named:
            # The named jobs, looked up one by one (CROSS JOIN: from the list, never
            # a scan of the type's queue). The list is parsed once for all types: a
            # json_each per type made three or more types cost ~0.1 ms each, even
            # with an empty list. Without names there is no such branch at all.
            with_named = "WITH named(value) AS MATERIALIZED (SELECT value FROM json_each(?)) "
            pick = (
                f"SELECT * FROM ({pick} UNION ALL"
                " SELECT j.rowid AS id, j.priority, j.created_at, j.job_id"
                " FROM named AS e CROSS JOIN jobs AS j ON j.job_id = e.value"
                f" WHERE {_ready('j.')}{order})"
            )
    return (
        "UPDATE jobs SET status = 'processing', attempts = attempts + 1,"
        " started_at = ?, updated_at = ?, worker_id = ?, lease_owner = ?,"
        " lease_token = lower(hex(randomblob(8))), lease_expires_at = ?,"
        f" timeout_at = {timeout_sql}"
        # rowid: the update seeks each picked row directly, whatever the planner
        # would guess for a job_id lookup.
        f" WHERE rowid IN ({with_named}SELECT id FROM ({' UNION ALL '.join([pick] * n_types)})"
        f" ORDER BY priority DESC, created_at, job_id LIMIT ?) RETURNING {SELECT}"
    )
