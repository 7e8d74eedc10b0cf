"""The watchdog: recovers jobs whose worker vanished or whose time ran out.

Every engine may run one: each recovery is a conditional write (``finish`` with
``only_if_overdue``, fenced by the expired lease's token), so two watchdogs, or a
watchdog and a worker that was only late, can never both win.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

from jobtui.engine.logsink import LogSink
from jobtui.engine.models import ErrorCode, Job, JobError, JobStatus, LogEntry, Outcome, utcnow
from jobtui.engine.registry import Registry
from jobtui.engine.store.base import Store

log = logging.getLogger(__name__)

DEFAULT_BACKOFF_BASE = 1.0
DEFAULT_BACKOFF_MAX = 300.0


TerminalHook = Callable[[Job, Outcome], None]


class TerminalHooks:
    """Callbacks for jobs reaching a terminal state. A hook must not block: it gets the
    job (as claimed) and its outcome, and schedules its own work. A failing hook is
    logged and never changes the job's outcome."""

    def __init__(self) -> None:
        self._hooks: list[TerminalHook] = []

    def add(self, hook: TerminalHook) -> None:
        self._hooks.append(hook)

    def notify(self, job: Job, outcome: Outcome) -> None:
        for hook in self._hooks:
            try:
                hook(job, outcome)
            except Exception:
                log.exception("terminal hook %r failed for job %s", hook, job.job_id)


class Watchdog:
    """``stall_timeout``: seconds after which a job left ``processing`` without a jobtui
    lease (by the seed's worker, which took none) is adopted; see ``adopt_stalled``."""

    def __init__(
        self,
        store: Store,
        registry: Registry,
        logs: LogSink | None = None,
        hooks: TerminalHooks | None = None,
        *,
        stall_timeout: float = 3600.0,
    ) -> None:
        self.store = store
        self.registry = registry
        self.logs = logs
        self.hooks = hooks or TerminalHooks()
        self.stall_timeout = stall_timeout
        self.recovered = 0
        self.adopted = 0

    async def run(self, interval: float) -> None:
        while True:
            try:
                await self.sweep()
            except Exception as exc:  # noqa: BLE001 - store outage: try again next round
                log.warning(
                    "watchdog sweep failed: %s: %s",
                    type(exc).__name__,
                    str(exc).splitlines()[0][:160] if str(exc) else "",
                )
            await asyncio.sleep(interval)

    def outcome_for(self, job: Job) -> Outcome:
        """What an overdue job becomes (pure: the tests check it case by case)."""
        now = utcnow()
        jt = self.registry.get(job.job_type)
        if jt is not None:
            job.adopt_type_policy(jt.max_attempts)  # a legacy document names none
        if job.cancel_requested:
            return Outcome(
                status=JobStatus.CANCELLED,
                error=JobError(
                    code=ErrorCode.CANCELLED, message="cancelled; its worker stopped answering"
                ),
            )
        if job.timeout_at is not None and job.timeout_at <= now:
            return Outcome(
                status=JobStatus.FAILED,
                error=JobError(code=ErrorCode.TIMEOUT, message="ran past its job type's timeout"),
            )
        owner = job.lease.owner if job.lease else "?"
        if job.attempts < job.max_attempts:
            delay = (
                jt.backoff(job.attempts)
                if jt
                else min(DEFAULT_BACKOFF_MAX, DEFAULT_BACKOFF_BASE * 2 ** max(job.attempts - 1, 0))
            )
            return Outcome(
                status=JobStatus.PENDING,
                run_after=now + timedelta(seconds=delay),
                error=JobError(
                    code=ErrorCode.LEASE_EXPIRED,
                    message=f"lease of worker {owner} expired; retrying",
                ),
            )
        return Outcome(
            status=JobStatus.FAILED,
            error=JobError(
                code=ErrorCode.LEASE_EXPIRED,
                message=f"lease of worker {owner} expired on the last of "
                f"{job.max_attempts} attempts",
            ),
        )

    def stalled_outcome(self, job: Job, stalled_for: timedelta) -> Outcome:
        """What a job the seed's worker left ``processing`` becomes (pure). The earlier
        worker's run counts as an attempt; the job type's ``max_attempts`` applies."""
        jt = self.registry.get(job.job_type)
        if jt is not None:
            job.adopt_type_policy(jt.max_attempts)
        attempts = job.attempts + 1
        why = (
            f"stalled: processing for {_ago(stalled_for)} with no jobtui lease "
            f"(left by an earlier worker; stall timeout {self.stall_timeout:g}s)"
        )
        if attempts < job.max_attempts:
            return Outcome(
                status=JobStatus.PENDING,
                run_after=None,
                error=JobError(code=ErrorCode.TIMEOUT, message=f"{why}; retrying"),
            )
        return Outcome(
            status=JobStatus.FAILED,
            error=JobError(
                code=ErrorCode.TIMEOUT,
                message=f"{why}; that was attempt {attempts} of {job.max_attempts}",
            ),
        )

    async def adopt_stalled(self) -> int:
        """Adopt jobs left ``processing`` without a lease and not updated for
        ``stall_timeout`` (the seed's ``reset_stalled_jobs``, with retries): back to
        ``pending`` while attempts remain, else ``failed`` with ``TIMEOUT``; the reason
        goes into the job's log. Conditional writes: safe in many engines at once."""
        now = utcnow()
        before = now - timedelta(seconds=self.stall_timeout)
        n = 0
        for job in await self.store.find_unleased(before):
            last = max(
                (t for t in (job.updated_at, job.started_at, _seed_started(job)) if t),
                default=job.created_at,
            )
            if last >= before:  # the seed's worker touched it lately in a field we know
                continue
            outcome = self.stalled_outcome(job, now - last)
            if not await self.store.finish_unleased(
                job.job_id, outcome, stalled_before=before, now=now
            ):
                continue  # someone else adopted, retried or cancelled it first
            n += 1
            assert outcome.error is not None
            log.warning("job %s: %s", job.job_id, outcome.error.message)
            self._ended(job, outcome)
        self.adopted += n
        return n

    async def sweep(self) -> int:
        """One pass; returns how many jobs it recovered (adopted ones included)."""
        n = await self.adopt_stalled()
        for job in await self.store.find_overdue(utcnow()):
            if job.lease is None:
                continue
            outcome = self.outcome_for(job)
            if await self.store.finish(
                job.job_id, job.lease.token, outcome, now=utcnow(), only_if_overdue=True
            ):
                n += 1
                self._ended(job, outcome)
        self.recovered += n
        return n

    def _ended(self, job: Job, outcome: Outcome) -> None:
        """What follows a recovery: the job's log says why, and a terminal end is
        announced like any other."""
        if self.logs is not None and outcome.error is not None:
            self.logs.add(
                LogEntry(
                    job_id=job.job_id, level="warning", message=f"watchdog: {outcome.error.message}"
                )
            )
        if outcome.status.terminal:
            self.hooks.notify(job, outcome)


def _seed_started(job: Job) -> datetime | None:
    """The seed wrote ``processing_started_at``; read it when it is a datetime."""
    value = (job.model_extra or {}).get("processing_started_at")
    if isinstance(value, str):  # some servers hand back a $set datetime as text
        try:
            value = datetime.fromisoformat(value)
        except ValueError:
            return None
    if not isinstance(value, datetime):
        return None
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value


def _ago(delta: timedelta) -> str:
    seconds = int(delta.total_seconds())
    if seconds >= 86400:
        return f"{seconds // 86400}d {seconds % 86400 // 3600}h"
    if seconds >= 3600:
        return f"{seconds // 3600}h {seconds % 3600 // 60}m"
    return f"{seconds // 60}m {seconds % 60}s"
