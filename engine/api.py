"""The operator API: everything the console and the CLI may do to the queue.

Neither the console nor the CLI touches a store, an engine module or a store module
directly: they import this module (and the vocabulary modules ``models``,
``errors``, ``paths``, ``config``, ``registry``), a rule that ``lint-imports``
checks (``[tool.importlinter]`` in pyproject.toml).

Steering verbs wake engines through the store (``Store.notify``), never through an
engine handle: an engine in this process that listens on the same store object
hears an enqueue, retry or cancel at once; engines elsewhere hear it as far as the
store carries it (MongoDB's change stream; the SQLite file's wake-up counter).

A front end that also runs work (the console, ``jobtui worker``, ``jobtui run``)
gets its engine from ``local_engine``; it sees it as a ``LocalEngine``, the few
verbs a front end needs, not the engine's module.
"""

from __future__ import annotations

import asyncio
import json
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol

from jobtui.engine.checks import FAIL as DOCTOR_FAIL
from jobtui.engine.checks import Check
from jobtui.engine.config import Settings
from jobtui.engine.enqueue import REASONS as SKIP_REASONS
from jobtui.engine.enqueue import PathEnqueueReport, dedupe_key, scan_paths
from jobtui.engine.ids import MIN_ID_PREFIX as MIN_ID_PREFIX
from jobtui.engine.ids import SHORT_ID as SHORT_ID
from jobtui.engine.ids import IdMatch, resolve_id
from jobtui.engine.ids import short_id as short_id
from jobtui.engine.liveness import (
    WORKER_ALIVE_S,
    LiveWorker,
    live_workers,
    unserved_types,
    waiting_for,
)
from jobtui.engine.models import (
    Batch,
    BatchSummary,
    Job,
    JobFilter,
    JobStatus,
    LogEntry,
    utcnow,
)
from jobtui.engine.outputs import output_paths as output_paths
from jobtui.engine.outputs import place_outputs as place_outputs
from jobtui.engine.params import check_parameters as check_parameters
from jobtui.engine.params import check_parameters_for as check_parameters_for
from jobtui.engine.redact import redact, redact_parameters
from jobtui.engine.registry import Registry, default_registry
from jobtui.engine.scan import type_taking
from jobtui.engine.store.base import ClaimScope as ClaimScope
from jobtui.engine.store.base import JobCursor, PurgeResult, Store, StoreError, Wake
from jobtui.engine.store.factory import describe_store, store_banner
from jobtui.engine.watchdog import TerminalHooks

__all__ = [
    "DOCTOR_FAIL",
    "SKIP_REASONS",
    "WORKER_ALIVE_S",
    "Check",
    "EnqueueResult",
    "JobCursor",
    "JobDetail",
    "JobPage",
    "LiveWorker",
    "LocalEngine",
    "OperatorAPI",
    "PathEnqueueReport",
    "PathPreview",
    "PurgeResult",
    "StoreError",
    "connect",
    "dedupe_key",
    "doctor_report",
    "legacy_log_entries",
    "local_engine",
    "preview_paths",
    "run_doctor",
    "start_worker_processes",
    "type_taking",
    "waiting_for",
]


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
class PathPreview:
    """What enqueueing some paths would take, before anything is hashed or written."""

    files: int  # files that would become jobs (before content dedupe)
    missing: list[str]  # a few of the paths that do not exist
    skipped: dict[str, int]  # reason (a key of SKIP_REASONS) -> count
    by_type: dict[str, int] = field(default_factory=dict)  # job type -> files
    examples: dict[str, list[str]] = field(default_factory=dict)  # reason -> a few paths


def preview_paths(
    paths: Sequence[str], job_type: str | None, recursive: bool, *, registry: Registry
) -> PathPreview:
    """What ``OperatorAPI.enqueue_paths`` would take, by the same walk: each file under
    ``job_type`` or (None) the type that declared its kind; nothing is hashed or
    written, and no store is needed. Blocking (it walks folders): run it in a thread."""
    scan = scan_paths(list(paths), job_type, recursive, registry=registry)
    return PathPreview(
        files=len(scan.files),
        missing=list(scan.examples.get("missing", [])),
        skipped=dict(scan.skipped),
        by_type=dict(Counter(c.job_type for c in scan.files)),
        examples=dict(scan.examples),
    )


class OperatorAPI:
    """The queue as an operator sees it, on one opened store.

    ``store``: an opened Store (``connect`` opens one from settings).
    ``registry``: the job types known here (defaults and retry policies at enqueue).
    """

    def __init__(self, store: Store, registry: Registry | None = None) -> None:
        self.store = store
        self.registry = registry or Registry()

    @property
    def description(self) -> str:
        """Where the data lives, safe to print (a URI never shows its password)."""
        return self.store.description

    def banner(self, settings: Settings) -> str:
        """The first line every command prints: which store, database and collections
        (``store_banner``; ``settings`` tell where the database name came from)."""
        return store_banner(settings, self.store)

    def describe_store(self, settings: Settings) -> str:
        """Which store, database and collections are in use (``describe_store``)."""
        return describe_store(settings, self.store)

    async def close(self) -> None:
        """Close the store (after ``connect``; an engine on it must be stopped first)."""
        await self.store.close()

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
        if res.inserted:
            await self.store.notify(Wake.CLAIM)
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
    ) -> PathEnqueueReport:
        """Scan files and folders, dedupe by content hash, enqueue one batch; each file
        under ``job_type``, or (None) under the job type that declared its kind.
        ``output_dir``: where the jobs' outputs go (None: each worker's own).

        The parameters are checked against the job type's model first: bad ones
        raise ``ConfigError("INVALID_PARAMETERS")`` and nothing is written.
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
        return await live_workers(self.store, now)

    async def unserved_types(
        self, now: datetime | None = None, workers: list[LiveWorker] | None = None
    ) -> dict[str, int]:
        """Pending job types that no live worker serves, with their counts (invariant 8).

        A pending job of such a type is *waiting for a worker that serves it*. Paused
        engines, watch-only ones and ``jobtui run``'s (which claim only their own
        batch) do not count as serving. ``workers``: what ``workers(now)`` returned,
        when the caller has read it already."""
        return await unserved_types(self.store, now, workers)

    # -- steering --------------------------------------------------------------

    async def retry_job(self, job_id: str) -> int:
        n = await self.store.retry_jobs(job_id=job_id, now=utcnow())
        await self._notify(Wake.CLAIM, n)
        return n

    async def retry_failed(self, batch_id: str) -> int:
        return await self.retry_batch(batch_id, (JobStatus.FAILED,))

    async def retry_batch(
        self,
        batch_id: str,
        statuses: Sequence[JobStatus] = (JobStatus.FAILED, JobStatus.CANCELLED),
    ) -> int:
        """Every job of the batch in ``statuses`` back to the queue, with a clean slate."""
        n = await self.store.retry_jobs(batch_id=batch_id, statuses=tuple(statuses), now=utcnow())
        await self._notify(Wake.CLAIM, n)
        return n

    async def cancel_job(self, job_id: str) -> int:
        n = await self.store.cancel_jobs(job_id=job_id, now=utcnow())
        await self._notify(Wake.CANCEL, n)
        return n

    async def cancel_batch(self, batch_id: str) -> int:
        n = await self.store.cancel_jobs(batch_id=batch_id, now=utcnow())
        await self._notify(Wake.CANCEL, n)
        return n

    async def _notify(self, wake: Wake, changed: int) -> None:
        if changed:
            await self.store.notify(wake)

    # -- retention -------------------------------------------------------------

    async def retention_preview(self, settings: Settings) -> tuple[str, PurgeResult]:
        """The retention in force (in words) and what its next sweep would delete now."""
        from jobtui.engine import retention

        counted = await retention.would_delete(self.store, settings)
        return retention.describe(settings, self.store.kind), counted

    async def purge(
        self,
        *,
        older_than: datetime,
        statuses: Sequence[JobStatus],
        batch_id: str | None = None,
        dry_run: bool = False,
    ) -> PurgeResult:
        """Delete (or, ``dry_run``, count) finished jobs of ``statuses`` completed
        before ``older_than``, their log lines and the batches left empty
        (``Store.purge_jobs``). Only ever on an operator's explicit request."""
        return await self.store.purge_jobs(
            older_than=older_than, statuses=statuses, batch_id=batch_id, dry_run=dry_run
        )


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


# -- for front ends that open the store or run work in their own process ---------------


async def connect(settings: Settings, registry: Registry | None = None) -> OperatorAPI:
    """Open the store the settings name and return the API on it (``close()`` it).

    Raises ``StoreError`` (a stable code, no password) when the store is unusable.
    ``registry`` defaults to every installed job type (``default_registry``).
    """
    from jobtui.engine.store.factory import open_store

    store = await open_store(settings)
    return OperatorAPI(store, registry if registry is not None else default_registry())


class WarmablePool(Protocol):
    async def warm(self) -> None: ...


class LocalEngine(Protocol):
    """What a front end does with the engine it runs in its own process.

    The engine listens on the API's store, so the API's enqueues, retries and
    cancels reach it at once; the front end only starts, pauses and stops it.
    """

    @property
    def worker_id(self) -> str: ...

    @property
    def registry(self) -> Registry: ...

    @property
    def running(self) -> dict[str, Job]: ...

    @property
    def paused(self) -> bool: ...

    def pause(self) -> None: ...

    def resume(self) -> None: ...

    def throughput(self, window: float = 60.0) -> float: ...

    def pool(self) -> WarmablePool: ...

    async def start(self) -> None: ...

    async def stop(self, grace: float | None = None) -> None: ...

    def hand_back_now(self) -> int: ...

    async def wait_batch(self, batch_id: str, poll: float = 0.25) -> None: ...

    def serve_also(self, job_ids: Iterable[str]) -> None: ...

    @property
    def terminal_hooks(self) -> TerminalHooks: ...

    @property
    def failed(self) -> asyncio.Event: ...  # set when the engine cannot go on (``fatal``)

    @property
    def fatal(self) -> StoreError | None: ...


def local_engine(
    api: OperatorAPI, settings: Settings, *, scope: ClaimScope | None = None
) -> LocalEngine:
    """An engine in this process on the API's store and job types (not started);
    ``scope`` narrows what it claims (``jobtui run``: its own batch)."""
    from jobtui.engine.worker import Engine

    return Engine(api.store, api.registry, settings, scope=scope)


def start_worker_processes(registry: Registry | None = None) -> None:
    """Start the server that CPU worker processes are forked from, loading what the
    registry's job types preload (``JobType.worker_preload``), in the background:
    call it early, before the folder is scanned (``procpool.start_forkserver``)."""
    from jobtui.engine.procpool import start_forkserver

    if registry is None:
        start_forkserver()
    else:
        from jobtui.engine.preload_cache import remember

        # For the next start's fork server (jobtui.engine.preload), which then need not
        # build a registry before its first worker.
        remember(registry.worker_preload())
        start_forkserver(("jobtui.engine.procpool", *registry.worker_preload()))


# The doctor (and what only it uses) is imported by the commands that run it, not by
# every command's start.


async def run_doctor(
    settings: Settings, registry: Registry, *, languages: str | None = None
) -> list[Check]:
    """``jobtui doctor``'s checks (``jobtui.engine.doctor``), one per line to show."""
    from jobtui.engine.doctor import run_checks

    return await run_checks(settings, registry, languages=languages)


def doctor_report(checks: list[Check]) -> dict[str, Any]:
    """``jobtui doctor --json``'s object: the worst verdict and every check."""
    from jobtui.engine.doctor import report

    return report(checks)
