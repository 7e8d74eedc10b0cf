"""The operator API: everything the console and the CLI may do to the queue.

Neither the console nor the CLI touches a store directly; they call these methods.
When an engine runs in the same process, enqueues and cancels wake it at once.
"""

from __future__ import annotations

import hashlib
import json
import socket
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel

from jobtui.engine.ids import MIN_ID_PREFIX as MIN_ID_PREFIX
from jobtui.engine.ids import SHORT_ID as SHORT_ID
from jobtui.engine.ids import IdMatch, resolve_id
from jobtui.engine.ids import short_id as short_id
from jobtui.engine.models import (
    Batch,
    BatchSummary,
    Job,
    JobFilter,
    JobStatus,
    LogEntry,
    WorkerInfo,
    utcnow,
)
from jobtui.engine.outputs import output_paths as output_paths
from jobtui.engine.outputs import place_outputs as place_outputs
from jobtui.engine.params import check_parameters as check_parameters
from jobtui.engine.params import check_parameters_for as check_parameters_for
from jobtui.engine.params import normalised_parameters
from jobtui.engine.redact import redact, redact_parameters
from jobtui.engine.registry import Registry
from jobtui.engine.store.base import ClaimScope as ClaimScope
from jobtui.engine.store.base import JobCursor, Store

if TYPE_CHECKING:
    from jobtui.engine.worker import Engine

WORKER_ALIVE_S = 15.0  # a worker whose heartbeat (one a second) is older than this is gone


@dataclass
class EnqueueResult:
    batch_id: str | None
    job_ids: list[str] = field(default_factory=list)
    duplicates: dict[str, str] = field(default_factory=dict)  # dedupe_key -> existing status


@dataclass
class JobPage:
    jobs: list[Job]
    next_cursor: JobCursor | None  # pass as ``after`` for the next page; None at the end


@dataclass
class JobDetail:
    job: Job
    logs: list[LogEntry]


@dataclass
class LiveWorker:
    info: WorkerInfo
    alive: bool


def dedupe_key(
    job_type: str,
    content_hash: str,
    parameters: dict[str, Any],
    params_model: type[BaseModel] | None = None,
) -> str:
    """The key that makes the same input with the same options one job. With the
    type's ``params_model`` the options are normalised first (``engine/params.py``):
    whatever front end enqueued, equal settings give equal keys."""
    opts = normalised_parameters(params_model, parameters)
    opt_hash = hashlib.sha256(json.dumps(opts, sort_keys=True, default=str).encode()).hexdigest()
    return f"{job_type}:{content_hash}:{opt_hash[:12]}"


class OperatorAPI:
    def __init__(
        self, store: Store, registry: Registry | None = None, engine: Engine | None = None
    ) -> None:
        self.store = store
        self.registry = registry or Registry()
        self.engine = engine

    # -- enqueue ---------------------------------------------------------------

    async def enqueue(
        self,
        job_type: str,
        parameters: Sequence[dict[str, Any]],
        *,
        batch_name: str | None = None,
        priority: int = 0,
        dedupe_keys: Sequence[str | None] | None = None,
        make_batch: bool = True,
        batch_id: str | None = None,
        output_dir: str | None = None,
    ) -> EnqueueResult:
        """Create one batch (when ``make_batch``) and one job per parameters dict.

        With ``batch_id`` the jobs join that batch (large enqueues write their jobs
        in chunks into one batch); the batch record is then created only when
        ``make_batch`` is also true.
        """
        jt = self.registry.get(job_type)
        max_attempts = jt.max_attempts if jt else 3
        keys = list(dedupe_keys) if dedupe_keys is not None else [None] * len(parameters)
        if make_batch:
            batch = Batch(
                name=batch_name or job_type, total_jobs=len(parameters), job_type=job_type
            )
            if batch_id is not None:
                batch.batch_id = batch_id
            batch_id = batch.batch_id
        jobs = [
            Job(
                job_type=job_type,
                parameters=dict(p),
                batch_id=batch_id,
                priority=priority,
                max_attempts=max_attempts,
                dedupe_key=k,
                output_dir=output_dir,
            )
            for p, k in zip(parameters, keys, strict=True)
        ]
        res = await self.store.insert_jobs(jobs)
        if make_batch:
            batch.total_jobs = len(res.inserted)
            await self.store.create_batch(batch)
        dup_status: dict[str, str] = {}
        if res.duplicates:
            existing = await self.store.find_by_dedupe_keys(res.duplicates)
            dup_status = {
                k: (existing[k].status.value if k in existing else "?") for k in res.duplicates
            }
        if self.engine is not None and res.inserted:
            self.engine.wake()
        return EnqueueResult(batch_id=batch_id, job_ids=res.inserted, duplicates=dup_status)

    async def enqueue_paths(
        self,
        paths: Sequence[str],
        *,
        job_type: str | None = None,
        parameters: dict[str, Any] | None = None,
        force: bool = False,
        recursive: bool = True,
        batch_name: str | None = None,
        on_progress: Callable[[int, int], None] | None = None,
        batch_id: str | None = None,
        output_dir: str | None = None,
    ) -> Any:
        """Scan files and folders, dedupe by content hash, enqueue one batch; each file
        under ``job_type``, or (None) under the job type that declared its kind.
        ``output_dir``: where the jobs' outputs go (None: each worker's own).

        The parameters are checked against the job type's model first: bad ones
        raise ``ConfigError("INVALID_PARAMETERS")`` and nothing is written.
        Returns an ``jobtui.engine.enqueue.PathEnqueueReport``.
        """
        from jobtui.engine.enqueue import enqueue_paths

        jt = self.registry.get(job_type) if job_type else None
        if jt is not None:  # without a type, enqueue_paths checks each type it uses
            check_parameters(jt, parameters or {})
        return await enqueue_paths(
            self,
            paths,
            job_type=job_type,
            parameters=parameters or {},
            force=force,
            recursive=recursive,
            batch_name=batch_name,
            on_progress=on_progress,
            batch_id=batch_id,
            output_dir=output_dir,
        )

    # -- reading ---------------------------------------------------------------

    async def list_jobs(
        self,
        flt: JobFilter | None = None,
        *,
        limit: int = 50,
        after: JobCursor | None = None,
        newest_first: bool = False,
    ) -> JobPage:
        jobs = await self.store.list_jobs(
            flt, limit=limit + 1, after=after, newest_first=newest_first
        )
        more = len(jobs) > limit
        jobs = jobs[:limit]
        cursor = (jobs[-1].created_at, jobs[-1].job_id) if more and jobs else None
        return JobPage(jobs=jobs, next_cursor=cursor)

    async def all_jobs(self, flt: JobFilter | None = None, page_size: int = 500) -> list[Job]:
        """Every matching job, fetched page by page (for the CLI's listings)."""
        out: list[Job] = []
        after: JobCursor | None = None
        while True:
            page = await self.list_jobs(flt, limit=page_size, after=after)
            out.extend(page.jobs)
            if page.next_cursor is None:
                return out
            after = page.next_cursor

    async def count_jobs(self, flt: JobFilter | None = None) -> dict[str, int]:
        return await self.store.count_jobs(flt)

    async def job_detail(self, job_id: str, log_limit: int = 1000) -> JobDetail | None:
        job = await self.store.get_job(job_id)
        if job is None:
            return None
        return JobDetail(job=job, logs=await self.tail_logs(job_id, limit=log_limit, job=job))

    async def tail_logs(
        self, job_id: str, *, limit: int = 200, job: Job | None = None
    ) -> list[LogEntry]:
        """Log lines of a job, oldest first; legacy ``logs`` arrays are merged in."""
        lines = await self.store.tail_logs(job_id, limit=limit)
        if job is None:
            job = await self.store.get_job(job_id)
        legacy = legacy_log_entries(job) if job is not None else []
        if legacy:
            lines = sorted(legacy + lines, key=lambda e: (e.ts, e.seq))[-limit:]
        return lines

    def shown_parameters(self, job: Job) -> Any:
        """The job's parameters as they may be shown: secrets redacted (engine/redact.py)."""
        jt = self.registry.get(job.job_type)
        return redact_parameters(job.parameters, jt.params_model if jt else None)

    def shown(self, value: Any) -> Any:
        """Results, error details...: values under secret-looking keys redacted."""
        return redact(value)

    async def resolve_id(self, given: str, *, kinds: Sequence[str] = ("job", "batch")) -> IdMatch:
        """The job or batch an operator means by ``given``: a whole id, or a unique
        prefix of at least ``MIN_ID_PREFIX`` characters (``ConfigError`` otherwise:
        ``ID_NOT_FOUND``, ``ID_AMBIGUOUS`` listing the candidates, ``ID_TOO_SHORT``)."""
        return await resolve_id(self.store, given, kinds)

    async def jobs_by_dedupe_keys(self, keys: Sequence[str]) -> dict[str, Job]:
        """The stored job of each dedupe key that has one."""
        return await self.store.find_by_dedupe_keys(list(keys)) if keys else {}

    async def batches(self, limit: int = 50) -> list[BatchSummary]:
        return await self.store.list_batches(limit=limit)

    async def batch(self, batch_id: str) -> BatchSummary | None:
        return await self.store.get_batch(batch_id)

    async def workers(self, now: datetime | None = None) -> list[LiveWorker]:
        """Every registered worker; alive when it heartbeat within ``WORKER_ALIVE_S`` of
        ``now`` (default: the current time; the console passes its own clock)."""
        cutoff = (now or utcnow()) - timedelta(seconds=WORKER_ALIVE_S)
        return [LiveWorker(w, w.heartbeat_at >= cutoff) for w in await self.store.list_workers()]

    async def unserved_types(self, now: datetime | None = None) -> dict[str, int]:
        """Pending job types that no live worker serves, with their counts (invariant 8).

        A pending job of such a type is *waiting for a worker that serves it*. Paused
        engines, watch-only ones and ``jobtui run``'s (which claim only their own
        batch) do not count as serving."""
        served: set[str] = set()
        for w in await self.workers(now):
            if w.alive and not w.info.paused and w.info.serves_queue:
                served.update(w.info.job_types)
        return {t: n for t, n in (await self.store.pending_job_types()).items() if t not in served}

    # -- steering --------------------------------------------------------------

    async def retry_job(self, job_id: str) -> int:
        n = await self.store.retry_jobs(job_id=job_id, now=utcnow())
        self._wake(n)
        return n

    async def retry_failed(self, batch_id: str) -> int:
        n = await self.store.retry_jobs(
            batch_id=batch_id, statuses=(JobStatus.FAILED,), now=utcnow()
        )
        self._wake(n)
        return n

    async def retry_batch(
        self,
        batch_id: str,
        statuses: Sequence[JobStatus] = (JobStatus.FAILED, JobStatus.CANCELLED),
    ) -> int:
        """Every job of the batch in ``statuses`` back to the queue, with a clean slate."""
        n = await self.store.retry_jobs(batch_id=batch_id, statuses=tuple(statuses), now=utcnow())
        self._wake(n)
        return n

    async def cancel_job(self, job_id: str) -> int:
        n = await self.store.cancel_jobs(job_id=job_id, now=utcnow())
        if self.engine is not None:
            self.engine.poke()
        return n

    async def cancel_batch(self, batch_id: str) -> int:
        n = await self.store.cancel_jobs(batch_id=batch_id, now=utcnow())
        if self.engine is not None:
            self.engine.poke()
        return n

    def _wake(self, n: int) -> None:
        if self.engine is not None and n:
            self.engine.wake()


def legacy_log_entries(job: Job) -> list[LogEntry]:
    """The seed's embedded ``logs`` array as log entries (it is never written again)."""
    out = []
    for i, raw in enumerate(job.logs or []):
        if isinstance(raw, str):  # some wire servers store pushed subdocuments as JSON text
            try:
                raw = json.loads(raw)
            except ValueError:
                raw = {"message": raw}
        if not isinstance(raw, dict):
            continue
        entry = {
            "job_id": job.job_id,
            "message": str(raw.get("message", "")),
            "level": str(raw.get("level", "info")),
            "seq": i,
        }
        if raw.get("timestamp") or raw.get("ts"):
            entry["ts"] = raw.get("timestamp") or raw.get("ts")
        try:
            out.append(LogEntry.model_validate(entry))
        except ValueError:
            out.append(LogEntry(job_id=job.job_id, message=str(raw.get("message", "")), seq=i))
    return out


def hostname() -> str:
    return socket.gethostname()
