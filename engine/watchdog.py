"""The watchdog: recovers jobs whose worker vanished or whose time ran out.

Every engine may run one: each recovery is a conditional write (``finish`` with
``only_if_overdue``, fenced by the expired lease's token), so two watchdogs, or a
watchdog and a worker that was only late, can never both win.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from datetime import timedelta

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
    def __init__(
        self,
        store: Store,
        registry: Registry,
        logs: LogSink | None = None,
        hooks: TerminalHooks | None = None,
    ) -> None:
        self.store = store
        self.registry = registry
        self.logs = logs
        self.hooks = hooks or TerminalHooks()
        self.recovered = 0

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
            jt = self.registry.get(job.job_type)
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

    async def sweep(self) -> int:
        """One pass; returns how many jobs it recovered."""
        n = 0
        for job in await self.store.find_overdue(utcnow()):
            if job.lease is None:
                continue
            outcome = self.outcome_for(job)
            if await self.store.finish(
                job.job_id, job.lease.token, outcome, now=utcnow(), only_if_overdue=True
            ):
                n += 1
                if self.logs is not None and outcome.error is not None:
                    self.logs.add(
                        LogEntry(
                            job_id=job.job_id,
                            level="warning",
                            message=f"watchdog: {outcome.error.message}",
                        )
                    )
                if outcome.status.terminal:
                    self.hooks.notify(job, outcome)
        self.recovered += n
        return n
