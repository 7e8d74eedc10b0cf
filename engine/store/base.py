"""The engine's one narrow storage interface.

Everything the engine, the watchdog and the operator API do to stored state goes
through these verbs. Two implementations exist: ``MongoStore`` (PyMongo's async
client, or mongomock-motor in tests) and ``SQLiteStore`` (the embedded default).
Both pass one contract suite (``tests/store_contract.py``).

Rules every implementation keeps (they are DESIGN.md's invariants):

* ``claim`` is one conditional update per job (or one ``UPDATE ... RETURNING``, or
  one ``update_many`` whose filter re-checks claimability, for several), never
  read-then-update, and takes at most the free slots it is given.
* Every write by a running worker (``set_progress``, ``finish``) is fenced by
  ``job_id`` *and* ``lease.token``: a worker that lost its lease changes nothing.
* Batch counts are derived from job states at read time; the counters written into
  batch documents for the seed's readers (``recount_batches``) are recounts too.
* Timestamps go in and come out as timezone-aware UTC ``datetime``.
"""

from __future__ import annotations

import logging
from abc import ABC, abstractmethod
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any

from jobtui.engine.models import (
    Batch,
    BatchSummary,
    Job,
    JobFilter,
    JobStatus,
    LogEntry,
    Outcome,
    Progress,
    WorkerInfo,
)
from jobtui.engine.uri import redact_secrets

_log = logging.getLogger(__name__)

# Keyset cursor for job pages: (created_at, job_id) of the last row seen.
JobCursor = tuple[datetime, str]


class LeaseState(StrEnum):
    HELD = "held"  # renewed; keep working
    CANCEL = "cancel"  # renewed, but an operator asked to cancel: stop the work
    LOST = (
        "lost"  # the lease is no longer ours (expired and taken, or job reset): stop, write nothing
    )


class Wake(StrEnum):
    """Why engines are woken: the channels of ``Store.notify``."""

    CLAIM = "claim"  # jobs may have become claimable (an enqueue, a retry): claim now
    CANCEL = "cancel"  # an operator asked running jobs to stop: heartbeat now to see it


#: Called with each wake-up; runs on the event loop, so it must be quick (set an event).
WakeListener = Callable[[Wake], None]


@dataclass
class PurgeResult:
    """What ``Store.purge_jobs`` deleted (or, on a dry run, would delete)."""

    jobs: int = 0
    logs: int = 0  # log lines of those jobs
    batches: int = 0  # batches left with no jobs
    dry_run: bool = False
    note: str = ""  # what became of the freed space (the embedded store says)

    def __add__(self, other: PurgeResult) -> PurgeResult:
        return PurgeResult(
            self.jobs + other.jobs,
            self.logs + other.logs,
            self.batches + other.batches,
            self.dry_run and other.dry_run,
            other.note or self.note,
        )


def purgeable(statuses: Sequence[JobStatus]) -> list[JobStatus]:
    """The statuses a purge may take: terminal ones only (``ValueError`` otherwise)."""
    wanted = [JobStatus(s) for s in statuses]
    live = sorted(s.value for s in wanted if not s.terminal)
    if live:
        raise ValueError(f"only finished jobs can be purged, not {', '.join(live)}")
    return sorted(set(wanted), key=lambda s: s.value)


@dataclass(frozen=True)
class ClaimScope:
    """Narrows a claim to some jobs: those of ``batch_id`` and those whose id is in
    ``job_ids`` (either may be empty). ``jobtui run`` claims only the jobs of its own
    files this way, never other people's work queued in a shared store."""

    batch_id: str | None = None
    job_ids: frozenset[str] = frozenset()


@dataclass(frozen=True)
class ClaimRequest:
    """The arguments of one ``Store.claim``, carried by ``Store.finish_then_claim``."""

    worker_id: str
    slots: Mapping[str, int]
    limit: int
    lease_seconds: float
    timeouts: Mapping[str, float | None]
    now: datetime
    scope: ClaimScope | None = None


@dataclass
class InsertResult:
    inserted: list[str] = field(default_factory=list)  # job_ids written
    duplicates: list[str] = field(default_factory=list)  # dedupe_keys that already existed


class StoreError(Exception):
    """The store cannot be used (unreachable, not ours, corrupt, newer schema).

    ``code`` is stable (``STORE_UNREACHABLE``, ``STORE_NOT_OURS``, ``STORE_CORRUPT``,
    ``STORE_TOO_NEW``, ``STORE_READONLY``, ``STORE_REPLACED``, ``STORE_FULL``, ...); the message names the store without any password.
    """

    def __init__(self, code: str, message: str) -> None:
        message = redact_secrets(message)  # whatever a driver quoted: no password shown
        super().__init__(message)
        self.code = code
        self.message = message


class Store(ABC):
    """Abstract store. See the module docstring for the rules."""

    #: "mongodb", "mongomock" or "sqlite"
    kind: str = ""

    @property
    @abstractmethod
    def description(self) -> str:
        """Where the data lives, safe to print (a URI never shows its password)."""

    # -- lifecycle -------------------------------------------------------------

    @abstractmethod
    async def open(self) -> None:
        """Connect, create indexes or schema. Raises ``StoreError`` when unusable."""

    @abstractmethod
    async def close(self) -> None: ...

    @abstractmethod
    async def ping(self) -> bool:
        """True when the store answers now."""

    def verify_identity(self) -> None:
        """Raise ``StoreError`` (``STORE_REPLACED``) when the store this process writes
        to is no longer the one its name points at (the file was deleted or replaced).
        Cheap (one ``stat``): the engine calls it on every heartbeat. No-op by default."""

    # -- enqueue ---------------------------------------------------------------

    @abstractmethod
    async def create_batch(self, batch: Batch, *, placeholder: bool = False) -> None:
        """Write the batch's record. Its enqueuer (who made the id) writes it after the
        jobs, and replaces a record that is already there: a ``placeholder`` another
        enqueuer wrote meanwhile for jobs it found without one (an interrupted enqueue
        looks the same as one still under way). A placeholder is written only where no
        record exists."""

    @abstractmethod
    async def insert_jobs(self, jobs: Sequence[Job]) -> InsertResult:
        """Bulk insert. A job whose ``dedupe_key`` already exists is not inserted
        (the key is reported in ``duplicates``); concurrent inserters cannot both win."""

    @abstractmethod
    async def find_by_dedupe_keys(self, keys: Sequence[str]) -> dict[str, Job]:
        """Existing jobs by dedupe key (for reporting what a re-enqueue skipped)."""

    # -- worker verbs ----------------------------------------------------------

    @abstractmethod
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
        """Atomically move up to ``limit`` claimable jobs to ``processing``.

        Claimable: ``status=pending``, ``run_after`` unset or ``<= now``, not
        ``cancel_requested``, and ``job_type`` a key of ``slots`` whose value is > 0
        (an empty, null or missing ``job_type`` is the store's legacy type). At most
        ``slots[t]`` jobs of type ``t``. Order: ``priority`` descending, then
        ``created_at``. Each claimed job gets ``attempts + 1``, ``started_at=now``,
        ``worker_id``, a fresh ``lease {owner, token, expires_at=now+lease_seconds}``
        and ``timeout_at=now+timeouts[t]`` (None when no timeout). With ``scope``,
        only jobs inside it are claimable.
        """

    @abstractmethod
    async def heartbeat(
        self, leases: Mapping[str, str], expires_at: datetime
    ) -> dict[str, LeaseState]:
        """Renew the leases ``{job_id: token}`` still held; report each one's state."""

    @abstractmethod
    async def set_progress(self, job_id: str, token: str, progress: Progress) -> bool:
        """Fenced progress write. False when the lease is no longer held."""

    @abstractmethod
    async def finish(
        self,
        job_id: str,
        token: str,
        outcome: Outcome,
        *,
        now: datetime,
        only_if_overdue: bool = False,
    ) -> bool:
        """Fenced end of an attempt (``status=processing`` and ``lease.token=token``).

        ``outcome.status`` terminal: sets ``completed_at=now``, results or error,
        clears the lease. ``pending``: back to the queue with ``run_after`` (a
        retry), clears the lease and the progress (a waiting job has none);
        ``refund_attempt`` also takes ``attempts - 1``.
        With ``only_if_overdue`` (the watchdog) it also requires the lease to have
        expired or ``timeout_at`` to have passed at ``now``. Returns whether it applied.
        """

    async def finish_many(
        self,
        items: Sequence[tuple[str, str, Outcome]],
        *,
        now: datetime,
        worker_id: str | None = None,
    ) -> list[bool]:
        """``finish`` for several ``(job_id, token, outcome)`` at once, same fencing,
        one result per item. Stores that can do it in one round trip or transaction
        override this; the default finishes them one by one.

        ``worker_id`` is the worker that claimed them (a store may use it to tell its
        own writes from others'). Called again with the same items and the same ``now``
        after an error (the engine retries), an item this call already finished still
        answers True where the store can tell (MongoDB does: see ``MongoStore``)."""
        return [
            await self.finish(job_id, token, outcome, now=now) for job_id, token, outcome in items
        ]

    async def finish_then_claim(
        self,
        items: Sequence[tuple[str, str, Outcome]],
        claim: ClaimRequest,
        *,
        now: datetime,
        worker_id: str | None = None,
    ) -> tuple[list[bool], list[Job] | Exception]:
        """``finish_many``, then, once it succeeded, ``claim`` (for the slots those
        finishes free). The claim's error is returned, not raised: the finishes stand.
        When the finishes raise, nothing was claimed. A store that can do both in one
        transaction (SQLite: one commit instead of two) overrides this; the claim
        must never be visible before the finishes."""
        done = await self.finish_many(items, now=now, worker_id=worker_id)
        try:
            jobs = await self.claim_request(claim)
        except Exception as exc:  # noqa: BLE001 - the caller's to report
            return done, exc
        return done, jobs

    async def claim_request(self, req: ClaimRequest) -> list[Job]:
        """``claim`` with the arguments ``req`` carries."""
        return await self.claim(
            worker_id=req.worker_id,
            slots=req.slots,
            limit=req.limit,
            lease_seconds=req.lease_seconds,
            timeouts=req.timeouts,
            now=req.now,
            scope=req.scope,
        )

    @abstractmethod
    async def append_logs(self, entries: Sequence[LogEntry]) -> None: ...

    # -- watchdog --------------------------------------------------------------

    @abstractmethod
    async def find_overdue(self, now: datetime, limit: int = 100) -> list[Job]:
        """Jobs in ``processing`` whose lease expired or whose ``timeout_at`` passed."""

    @abstractmethod
    async def find_unleased(self, stalled_before: datetime, limit: int = 100) -> list[Job]:
        """Jobs in ``processing`` without a jobtui lease (left by the seed's worker, which
        took no leases) and not updated since ``stalled_before``. A jobtui claim writes
        status and lease together, so no job of ours ever matches."""

    @abstractmethod
    async def finish_unleased(
        self, job_id: str, outcome: Outcome, *, stalled_before: datetime, now: datetime
    ) -> bool:
        """End such a job's attempt as ``finish`` would (``outcome`` terminal or back to
        ``pending``), counting the attempt the earlier worker made (``attempts + 1``).
        Conditional on the job still matching ``find_unleased``: two watchdogs, or a
        watchdog and an operator's retry, cannot both apply. Returns whether it did."""

    # -- batch counters (the seed's ``event_batches`` readers) ----------------------

    @abstractmethod
    async def recount_batches(self, batch_ids: Sequence[str | None], *, now: datetime) -> None:
        """Write each batch's counters (``models.batch_counters``: ``total_jobs``,
        ``completed_jobs``, ``failed_jobs``, ``pending_jobs``, ``processing_jobs``,
        ``status``, ``completed_at``) from a count of its jobs by state, for readers
        of the stored batch (the seed's dashboard). Derived every time, so they cannot
        drift; jobtui's own views count at read time. ``None`` ids are skipped.
        ``create_batch``, ``cancel_jobs`` and ``retry_jobs`` recount what they touch;
        the engine recounts the batches of the jobs it ends."""

    @abstractmethod
    async def claim_finished_batches(self, limit: int = 20) -> list[BatchSummary]:
        """Batches with a webhook that finished since they were last announced, each
        handed to exactly one caller (a conditional write marks it announced), with its
        counts. A batch whose webhook was set at ``create_batch`` is due once its
        recount finds every job terminal, however the last one ended (run, recovered,
        cancelled while pending, in this process or another); a retry makes it due
        again when it finishes again."""

    # -- operator verbs --------------------------------------------------------

    @abstractmethod
    async def get_job(self, job_id: str) -> Job | None: ...

    @abstractmethod
    async def ids_with_prefix(
        self, prefix: str, *, batches: bool = False, limit: int = 10
    ) -> list[str]:
        """Up to ``limit`` job ids (batch ids with ``batches``) that start with
        ``prefix``, in order: one range of the id index, however many ids exist."""

    @abstractmethod
    async def list_jobs(
        self,
        flt: JobFilter | None = None,
        *,
        limit: int = 50,
        after: JobCursor | None = None,
        newest_first: bool = False,
    ) -> list[Job]:
        """One page of jobs ordered by ``(created_at, job_id)`` (descending when
        ``newest_first``), strictly after the keyset cursor ``after``."""

    async def batch_unfinished(self, batch_id: str) -> bool:
        """Whether any job of the batch is still pending or processing: one indexed
        lookup of at most one job, not a count of the batch."""
        unfinished = JobFilter(batch_id=batch_id, status=[JobStatus.PENDING, JobStatus.PROCESSING])
        return bool(await self.list_jobs(unfinished, limit=1))

    @abstractmethod
    async def count_jobs(self, flt: JobFilter | None = None) -> dict[str, int]:
        """Counts by status of the jobs that match (missing statuses are absent)."""

    @abstractmethod
    async def get_batch(self, batch_id: str) -> BatchSummary | None:
        """One batch as ``list_batches`` shows it."""

    @abstractmethod
    async def list_batches(self, *, limit: int = 50) -> list[BatchSummary]:
        """The newest batches first, each with counts derived from its jobs; an
        unfinished one also with its ``units`` (the work its processing and completed
        jobs report in units, for the ETA; a finished batch needs none, so none is
        summed for it)."""

    @abstractmethod
    async def tail_logs(
        self, job_id: str, *, limit: int = 200, after: datetime | None = None
    ) -> list[LogEntry]:
        """The last ``limit`` log lines of a job (or those after ``after``), oldest first."""

    @abstractmethod
    async def cancel_jobs(
        self, *, job_id: str | None = None, batch_id: str | None = None, now: datetime
    ) -> int:
        """Pending jobs become ``cancelled`` (error code ``CANCELLED``) at once, and so
        do processing ones without a jobtui lease (no worker of ours would see a
        request); processing ones get ``cancel_requested=True`` for their worker to
        see. Returns how many jobs were affected. Terminal jobs are left alone."""

    @abstractmethod
    async def retry_jobs(
        self,
        *,
        job_id: str | None = None,
        batch_id: str | None = None,
        statuses: Sequence[JobStatus] = (JobStatus.FAILED, JobStatus.CANCELLED),
        now: datetime,
    ) -> int:
        """Jobs in ``statuses`` go back to ``pending`` with a clean slate
        (attempts 0, no error, no lease, no cancel request). A job named by ``job_id``
        that is ``processing`` without a jobtui lease (see ``find_unleased``) is
        retried too. Returns the count."""

    @abstractmethod
    async def pending_job_types(self) -> dict[str, int]:
        """Pending jobs counted by job type (an empty, null or missing ``job_type``
        counts as the store's legacy type)."""

    # -- retention ---------------------------------------------------------------

    async def purge_jobs(
        self,
        *,
        older_than: datetime,
        statuses: Sequence[JobStatus],
        batch_id: str | None = None,
        dry_run: bool = False,
    ) -> PurgeResult:
        """Delete finished jobs of ``statuses`` whose ``completed_at`` is before
        ``older_than`` (within ``batch_id`` when given), their log lines, and the
        batches this leaves with no jobs (also any batch created before
        ``older_than`` that has none). Non-terminal statuses raise ``ValueError``.

        Works in bounded chunks (a few hundred jobs per statement or transaction), so
        purging 100,000 jobs never holds one giant transaction. ``dry_run`` counts the
        same set without deleting: with no changes in between, a real run right after
        deletes exactly what the dry run counted. Idempotent: safe in many engines at once.
        """
        raise NotImplementedError(f"{type(self).__name__} cannot purge")

    async def purge_logs(self, *, older_than: datetime, dry_run: bool = False) -> int:
        """Delete (or count) log lines with ``ts`` before ``older_than``, whatever
        their job's state, in bounded chunks. Returns how many."""
        raise NotImplementedError(f"{type(self).__name__} cannot purge logs")

    # -- workers ---------------------------------------------------------------

    @abstractmethod
    async def upsert_worker(self, info: WorkerInfo) -> None: ...

    async def beat(
        self, info: WorkerInfo, leases: Mapping[str, str], expires_at: datetime
    ) -> dict[str, LeaseState]:
        """One heartbeat of a worker: ``heartbeat`` for its leases and ``upsert_worker``
        for its record, together (the engine's only regular write while jobs run). The
        default runs both at once; SQLite makes them one transaction."""
        import asyncio

        states, _ = await asyncio.gather(
            self.heartbeat(leases, expires_at),  # no leases: answered without the store
            self.upsert_worker(info),
        )
        return states

    @abstractmethod
    async def remove_worker(self, worker_id: str) -> None: ...

    @abstractmethod
    async def list_workers(self) -> list[WorkerInfo]: ...

    # -- wake-ups ----------------------------------------------------------------
    #
    # As saq's ``Queue.notify`` and procrastinate's NOTIFY: whoever changes the queue
    # (the operator API) tells the store, and engines listen to the store. So the API
    # needs no handle on an engine, and an engine hears the same news whether the
    # enqueue happened in its own process or in another one (as far as the store can
    # carry it there: see ``notify`` and ``watch_wakeups`` of each store).

    _listeners: list[WakeListener] | None = None  # per instance, made on first listen

    async def notify(self, wake: Wake) -> None:
        """Wake the engines listening on this store (after the change is written).

        Every listener added to *this store object* (``listen``) hears it at once,
        in this call. Other processes hear it through their ``watch_wakeups``, as far
        as the store can carry it: stores that need a write for that override this
        (and call it). A listener that raises is logged, never propagated: the
        operator's change is already written and must be reported as done.
        """
        for listener in list(self._listeners or ()):
            try:
                listener(wake)
            except Exception:  # noqa: BLE001 - a broken listener must not fail the caller
                _log.exception("wake-up listener %r failed", listener)

    def listen(self, listener: WakeListener) -> Callable[[], None]:
        """Call ``listener`` on every ``notify`` made through this store object in this
        process; returns the function that stops it."""
        if self._listeners is None:
            self._listeners = []
        self._listeners.append(listener)

        def stop() -> None:
            if self._listeners is not None and listener in self._listeners:
                self._listeners.remove(listener)

        return stop

    def watch_wakeups(
        self, ready: Callable[[], Awaitable[object]] | None = None
    ) -> AsyncIterator[Wake] | None:
        """Wake-ups that come from elsewhere (other processes, other machines): an
        iterator that yields a ``Wake`` whenever jobs may have become claimable or a
        cancel was asked for, or None when the store cannot tell (then engines poll
        for work every ``poll_interval`` and see cancels at their next heartbeat).
        Ending (or raising) means the same as None from then on.

        ``ready``, when given, is awaited before each read from the store: a consumer
        with no use for news just now (an engine claiming anyway, or with every slot
        full) holds the reads back and the store is asked nothing meanwhile. What
        happened in between is not lost: it is read once ``ready`` returns."""
        return None

    # -- diagnostics (jobtui doctor) -------------------------------------------

    async def server_info(self) -> dict[str, Any]:
        """What ``jobtui doctor`` shows about the store: version, file, schema,
        change streams, the server's clock. Keys vary by store; {} when unknown."""
        return {}

    async def missing_indexes(self) -> list[str]:
        """Indexes the engine expects that the store lacks (each named for a human)."""
        return []
