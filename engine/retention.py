"""Retention: finished jobs and their log lines expire after configured periods.

Why a sweep and not (only) TTL indexes: a MongoDB TTL index gives one period to
every document of a collection, while jobs need one period per status (completed
30 days, failed and cancelled 90 by default) and must never expire while pending or
running. That would take partial TTL indexes per status, which the test servers do
not honour (nx-27017 ignores partial filters, mongomock has no TTL at all), and the
embedded SQLite store has no TTL. So:

* **Jobs** (both stores): every engine runs ``RetentionSweep``, which every
  ``settings.retention_interval`` seconds (600, with +/-10 % jitter so engines
  started together do not sweep together) calls ``Store.purge_jobs`` once per
  period: completed jobs older than ``retention_completed_days``, failed ones older
  than ``retention_failed_days``, cancelled ones older than
  ``retention_cancelled_days``, with their log lines and the batches left empty.
  Deletes are idempotent, so many engines sweeping at once is safe.
* **Defaults depend on the store** (``periods``). The embedded SQLite file is
  jobtui's own: completed jobs are kept 30 days, failed and cancelled ones 90. A
  MongoDB database is shared (the seed's application and dashboard read
  ``event_jobs``): nothing is deleted there unless the operator sets a period.
* **Log lines** with their own, shorter period (``retention_logs_days``): on
  MongoDB a TTL index on ``ts`` (the server deletes them; ``jobtui doctor`` checks
  the index), and the sweep also deletes them with ``Store.purge_logs`` on every
  store (the only way on SQLite and the test servers; a no-op where TTL already did).

A period of ``0`` disables that part. The clock is injectable (``clock``) so tests
move time instead of sleeping.
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import Callable
from datetime import datetime, timedelta

from jobtui.engine.config import Settings
from jobtui.engine.models import JobStatus, utcnow
from jobtui.engine.store.base import PurgeResult, Store

log = logging.getLogger(__name__)

DAY = timedelta(days=1)
JITTER = 0.1


#: Days a finished job is kept on the embedded store when no period is configured.
SQLITE_DEFAULTS = {JobStatus.COMPLETED: 30.0, JobStatus.FAILED: 90.0, JobStatus.CANCELLED: 90.0}


def periods(settings: Settings, store_kind: str) -> dict[JobStatus, float]:
    """Days each finished status is kept (0: forever). Unset periods take the store's
    default: ``SQLITE_DEFAULTS`` on the embedded store, forever on MongoDB."""
    defaults = SQLITE_DEFAULTS if store_kind == "sqlite" else {}
    failed = settings.retention_failed_days
    configured = {
        JobStatus.COMPLETED: settings.retention_completed_days,
        JobStatus.FAILED: failed,
        JobStatus.CANCELLED: (
            settings.retention_cancelled_days
            if settings.retention_cancelled_days is not None
            else failed
        ),
    }
    return {
        status: float(days if days is not None else defaults.get(status, 0.0))
        for status, days in configured.items()
    }


def policies(settings: Settings, store_kind: str) -> list[tuple[list[JobStatus], timedelta]]:
    """(statuses, keep for) per enabled period; statuses with the same period share one."""
    by_days: dict[float, list[JobStatus]] = {}
    for status, days in periods(settings, store_kind).items():
        if days > 0:
            by_days.setdefault(days, []).append(status)
    return [(statuses, days * DAY) for days, statuses in by_days.items()]


def describe(settings: Settings, store_kind: str) -> str:
    """The retention in force, for ``jobtui doctor`` and ``jobtui purge --dry-run``."""
    kept = periods(settings, store_kind)
    on = [f"{s.value} after {d:g} days" for s, d in kept.items() if d > 0]
    forever = [s.value for s, d in kept.items() if d <= 0]
    text = "deletes " + ", ".join(on) if on else "deletes no jobs"
    if on and forever:
        text += "; keeps " + ", ".join(forever) + " forever"
    if logs_period(settings) is not None:
        text += f"; log lines after {settings.retention_logs_days:g} days"
    return text


async def would_delete(
    store: Store, settings: Settings, now: datetime | None = None
) -> PurgeResult:
    """What a sweep at ``now`` would delete (dry runs of the same purges)."""
    now = now or utcnow()
    total = PurgeResult(dry_run=True)
    for statuses, keep in policies(settings, store.kind):
        total = total + await store.purge_jobs(
            older_than=now - keep, statuses=statuses, dry_run=True
        )
    period = logs_period(settings)
    if period is not None:
        total.logs += await store.purge_logs(older_than=now - period, dry_run=True)
    return total


def logs_period(settings: Settings) -> timedelta | None:
    """How long a log line lives on its own (None: as long as its job)."""
    days = settings.retention_logs_days
    return days * DAY if days else None


class RetentionSweep:
    """Purges what the retention settings say has expired (see the module docstring)."""

    def __init__(
        self, store: Store, settings: Settings, *, clock: Callable[[], datetime] = utcnow
    ) -> None:
        self.store = store
        self.settings = settings
        self.clock = clock
        self.sweeps = 0
        self.deleted = PurgeResult()
        self.logs_deleted = 0

    async def sweep(self, now: datetime | None = None) -> PurgeResult:
        """One pass: purge every expired status, then old log lines. Returns what the
        job purges deleted (``logs`` counts their log lines plus expired ones)."""
        now = now or self.clock()
        total = PurgeResult()
        for statuses, keep in policies(self.settings, self.store.kind):
            total = total + await self.store.purge_jobs(older_than=now - keep, statuses=statuses)
        period = logs_period(self.settings)
        if period is not None:
            expired = await self.store.purge_logs(older_than=now - period)
            self.logs_deleted += expired
            total.logs += expired
        self.sweeps += 1
        self.deleted = self.deleted + total
        if total.jobs or total.logs or total.batches:
            log.info(
                "retention: deleted %d jobs, %d log lines, %d batches",
                total.jobs,
                total.logs,
                total.batches,
            )
        return total

    def next_delay(self) -> float:
        base = self.settings.retention_interval
        return base * random.uniform(1 - JITTER, 1 + JITTER)

    async def run(self) -> None:
        """Sweep forever: a short random pause first (engines started together spread
        out), then every ``retention_interval`` seconds with jitter. A failing sweep
        (store outage) is logged and retried next round."""
        await asyncio.sleep(random.uniform(0, min(5.0, self.settings.retention_interval)))
        while True:
            try:
                await self.sweep()
            except Exception as exc:  # noqa: BLE001 - try again next round
                text = str(exc).splitlines()[0][:160] if str(exc) else ""
                log.warning("retention sweep failed: %s: %s", type(exc).__name__, text)
            await asyncio.sleep(self.next_delay())

    def start(self) -> asyncio.Task[None]:
        return asyncio.create_task(self.run(), name="jobtui-retention")
