"""The engine's data: jobs, batches, workers, log lines, and their states.

Field names follow the seed's ``event_jobs`` / ``event_batches`` documents where
they overlap (``job_id``, ``job_type``, ``status``, ``parameters``, ``results``,
``error``, ``progress``, ``batch_id``, timestamps), so the engine can run on an
existing collection. Everything the invariants need is added beside them.

Every model is built (its validator and serializer compiled by pydantic, 1-7 ms each)
on first use, not at import (``defer_build``): ``jobtui run`` claims its first job
before it has used half of them.
"""

from __future__ import annotations

import secrets
import uuid
from datetime import UTC, datetime
from enum import StrEnum
from typing import Annotated, Any

from pydantic import AfterValidator, BaseModel, ConfigDict, Field

# Defined with the exceptions (no pydantic there), so worker-side modules share it.
from jobtui.engine.errors import ErrorCode as ErrorCode


def utcnow() -> datetime:
    """Timezone-aware now; stores keep UTC and hand back aware datetimes."""
    return datetime.now(UTC)


def _aware(value: datetime) -> datetime:
    # Legacy documents and some drivers hand back naive datetimes; they are UTC.
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


#: A datetime that is always timezone-aware UTC, whatever the document held.
UTCDateTime = Annotated[datetime, AfterValidator(_aware)]


def new_id() -> str:
    return uuid.uuid4().hex


def new_token() -> str:
    return secrets.token_hex(8)


class JobStatus(StrEnum):
    PENDING = "pending"  # waiting to be claimed (maybe not before run_after)
    PROCESSING = "processing"  # claimed; a worker holds its lease
    COMPLETED = "completed"  # the handler returned; terminal
    FAILED = "failed"  # gave up (error recorded, TIMEOUT, LEASE_EXPIRED...); terminal
    CANCELLED = "cancelled"  # an operator cancelled it; terminal, never retried automatically

    @property
    def terminal(self) -> bool:
        return self in TERMINAL


TERMINAL = frozenset({JobStatus.COMPLETED, JobStatus.FAILED, JobStatus.CANCELLED})


class JobError(BaseModel):
    model_config = ConfigDict(extra="allow", defer_build=True)

    code: str
    message: str = ""
    details: dict[str, Any] | None = None


class Progress(BaseModel):
    model_config = ConfigDict(extra="allow", defer_build=True)

    percent: float = 0.0
    step: str | None = None
    message: str | None = None
    # The work measured in a unit the job type chose ("pages", "s" of recording), so a
    # batch's ETA can weigh a 2,400-page PDF as more than a 1-page one. All or none.
    done: float | None = None
    total: float | None = None
    unit: str | None = None


class Lease(BaseModel):
    model_config = ConfigDict(defer_build=True)

    owner: str  # worker id
    token: str  # fences every write of this attempt
    expires_at: UTCDateTime


class Job(BaseModel):
    """One unit of work. ``extra='allow'`` keeps unknown legacy fields intact."""

    model_config = ConfigDict(extra="allow", defer_build=True)

    job_id: str = Field(default_factory=new_id)
    job_type: str = "session"  # legacy documents without job_type are session jobs
    status: JobStatus = JobStatus.PENDING
    parameters: dict[str, Any] = Field(default_factory=dict)
    results: dict[str, Any] | None = None
    error: JobError | None = None
    progress: Progress | None = None
    batch_id: str | None = None
    created_at: UTCDateTime = Field(default_factory=utcnow)
    updated_at: UTCDateTime | None = None
    started_at: UTCDateTime | None = None
    completed_at: UTCDateTime | None = None
    lease: Lease | None = None
    attempts: int = 0
    max_attempts: int = 3
    run_after: UTCDateTime | None = None
    priority: int = 0
    cancel_requested: bool = False
    dedupe_key: str | None = None
    timeout_at: UTCDateTime | None = None
    worker_id: str | None = None  # who ran (or runs) the last attempt
    webhook: dict[str, Any] | None = None
    # Where this job's outputs go, chosen when it was enqueued (the console's enqueue
    # dialog); None: the output_dir of the worker that runs it.
    output_dir: str | None = None
    logs: list[dict[str, Any]] | None = None  # legacy embedded log array (read only)

    def adopt_type_policy(self, max_attempts: int) -> None:
        """A legacy document carries no ``max_attempts``: its job type's applies (the
        model's default of 3 is only for documents that say nothing at all)."""
        if "max_attempts" not in self.model_fields_set:
            self.max_attempts = max_attempts

    @property
    def path(self) -> str | None:
        p = self.parameters.get("path") if isinstance(self.parameters, dict) else None
        return str(p) if p is not None else None

    def summary(self) -> dict[str, Any]:
        """The flat shape ``jobtui run --json`` and ``jobtui jobs --json`` print."""
        out: dict[str, Any] = {
            "job_id": self.job_id,
            "job_type": self.job_type,
            "status": self.status.value,
            "error_code": self.error.code if self.error else None,
            "attempts": self.attempts,
            "batch_id": self.batch_id,
        }
        if self.path is not None:
            out["path"] = self.path
        if self.error:
            out["error_message"] = self.error.message
        for key, value in (self.results or {}).items():
            out.setdefault(key, value)
        return out


#: The job type of the seed's documents when none is configured (``legacy_job_type``).
LEGACY_JOB_TYPE = "session"


def job_from_document(doc: dict[str, Any], legacy_type: str = LEGACY_JOB_TYPE) -> Job:
    """A stored job, tolerating the seed's legacy ``event_jobs`` documents: an empty,
    null or missing ``job_type`` means ``legacy_type`` (the seed's code writes ``""``),
    ``null`` elsewhere means the field's default, a string error or a bare number for
    progress are wrapped. Both stores read jobs through this."""
    if not doc.get("job_type"):
        doc["job_type"] = legacy_type
    for name in _DEFAULTED_FIELDS:
        if name in doc and doc[name] is None:
            del doc[name]
    if isinstance(doc.get("error"), str):
        doc["error"] = {"code": ErrorCode.HANDLER_ERROR.value, "message": doc["error"]}
    if isinstance(doc.get("progress"), (int, float)):
        doc["progress"] = {"percent": float(doc["progress"])}
    return Job.model_validate(doc)


_DEFAULTED_FIELDS = [
    name for name, f in Job.model_fields.items() if f.default is not None or f.default_factory
]


class Batch(BaseModel):
    model_config = ConfigDict(extra="allow", defer_build=True)

    batch_id: str = Field(default_factory=new_id)
    name: str = ""
    total_jobs: int = 0
    created_at: UTCDateTime = Field(default_factory=utcnow)
    job_type: str | None = None
    webhook: dict[str, Any] | None = None


#: The jobs a batch's unit tallies sum over: cancelled and failed work is not progress.
UNIT_STATUSES = (JobStatus.PROCESSING.value, JobStatus.COMPLETED.value)


class UnitTally(BaseModel):
    """A batch's work in one unit (``Progress.unit``), summed over its processing and
    completed jobs that report it. A completed job counts its whole total as done (its
    last progress write may not have landed); one that reported no progress but
    returned ``results["pages"]`` counts as that many pages."""

    model_config = ConfigDict(defer_build=True)

    unit: str
    done: float = 0.0
    total: float = 0.0
    jobs: int = 0  # how many jobs the totals come from
    processing: int = 0  # of those, still processing

    def add(self, status: str, jobs: int, done: float | None, total: float | None) -> None:
        total = float(total or 0.0)
        self.jobs += jobs
        self.total += total
        if status == JobStatus.COMPLETED:
            self.done += total
        else:
            self.processing += jobs
            self.done += float(done or 0.0)


class BatchSummary(BaseModel):
    """A batch with counts derived from its jobs' states (never stored counters)."""

    model_config = ConfigDict(defer_build=True)

    batch: Batch
    counts: dict[str, int]
    first_started_at: UTCDateTime | None = None
    last_completed_at: UTCDateTime | None = None
    #: unit -> tally; filled for unfinished batches by the console's reads
    #: (``list_batches``, ``get_batch``) only, empty otherwise
    units: dict[str, UnitTally] = Field(default_factory=dict)

    def add_units(
        self, status: str, unit: str, jobs: int, done: float | None, total: float | None
    ) -> None:
        """Fold one row of a store's per (status, unit) aggregate into ``units``."""
        self.units.setdefault(unit, UnitTally(unit=unit)).add(status, jobs, done, total)

    @property
    def total(self) -> int:
        return sum(self.counts.values())

    @property
    def done(self) -> int:
        return sum(self.counts.get(s.value, 0) for s in TERMINAL)

    @property
    def finished(self) -> bool:
        return self.total > 0 and self.done == self.total

    @property
    def status(self) -> str:
        if not self.finished:
            return "running" if self.counts.get("processing", 0) else "pending"
        if self.counts.get("failed", 0) or self.counts.get("cancelled", 0):
            return "finished with errors"
        return "completed"


#: The seed's ``event_batches.status`` words (jobtui's own views say more; see
#: ``BatchSummary.status`` and docs/migrating.md for the mapping).
SEED_BATCH_STATUS = ("pending", "processing", "completed", "failed")


def batch_counters(counts: dict[str, int], last_completed_at: datetime | None) -> dict[str, Any]:
    """The seed's ``event_batches`` fields, derived from a batch's job counts by status.

    ``failed_jobs`` includes cancelled ones (the seed knew no cancel, and its dashboard
    shows progress as completed + failed of total); ``cancelled_jobs`` says how many.
    ``status``: ``pending`` until a job starts, ``processing`` while any is left,
    ``completed`` when every job completed, ``failed`` when all ended and any did not.
    """
    pending = counts.get(JobStatus.PENDING.value, 0)
    processing = counts.get(JobStatus.PROCESSING.value, 0)
    completed = counts.get(JobStatus.COMPLETED.value, 0)
    failed = counts.get(JobStatus.FAILED.value, 0)
    cancelled = counts.get(JobStatus.CANCELLED.value, 0)
    total = pending + processing + completed + failed + cancelled
    finished = total > 0 and pending + processing == 0
    if finished:
        status = "completed" if failed + cancelled == 0 else "failed"
    else:
        status = "pending" if processing + completed + failed + cancelled == 0 else "processing"
    return {
        "total_jobs": total,
        "completed_jobs": completed,
        "failed_jobs": failed + cancelled,
        "cancelled_jobs": cancelled,
        "pending_jobs": pending,
        "processing_jobs": processing,
        "status": status,
        "completed_at": last_completed_at if finished else None,
    }


class LogEntry(BaseModel):
    model_config = ConfigDict(defer_build=True)

    job_id: str
    ts: UTCDateTime = Field(default_factory=utcnow)
    level: str = "info"
    message: str = ""
    seq: int = 0  # orders lines with the same timestamp


class WorkerInfo(BaseModel):
    model_config = ConfigDict(extra="allow", defer_build=True)

    worker_id: str
    host: str
    pid: int
    job_types: list[str]
    concurrency: int
    running: int = 0
    started_at: UTCDateTime = Field(default_factory=utcnow)
    heartbeat_at: UTCDateTime = Field(default_factory=utcnow)
    paused: bool = False
    # False when it claims nothing (watch-only) or only its own batch (``jobtui run``):
    # then it does not count as serving its types for the queue's other jobs.
    serves_queue: bool = True


class JobFilter(BaseModel):
    """What the operator API can filter jobs by. All given fields must match."""

    model_config = ConfigDict(defer_build=True)

    status: list[JobStatus] | None = None
    job_type: list[str] | None = None
    batch_id: str | None = None
    text: str | None = None  # substring of job_id, path or error code


class Outcome(BaseModel):
    """How an attempt ends; applied by ``Store.finish`` under the lease fence."""

    model_config = ConfigDict(defer_build=True)

    status: JobStatus
    results: dict[str, Any] | None = None
    error: JobError | None = None
    run_after: UTCDateTime | None = None  # for status=pending (retry later)
    refund_attempt: bool = False  # graceful hand-back: the attempt is not burned
