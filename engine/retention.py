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
  period: completed jobs older than ``retention_completed_days``, failed and
  cancelled ones older than ``retention_failed_days``, with their log lines and the
  batches left empty. Deletes are idempotent, so many engines sweeping at once is
  safe (they just find less to do).
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


def policies(settings: Settings) -> list[tuple[list[JobStatus], timedelta]]:
    """(statuses, keep for) per enabled job period."""
    out: list[tuple[list[JobStatus], timedelta]] = []
    if settings.retention_completed_days > 0:
        out.append(([JobStatus.COMPLETED], settings.retention_completed_days * DAY))
    if settings.retention_failed_days > 0:
        out.append(([JobStatus.FAILED, JobStatus.CANCELLED], settings.retention_failed_days * DAY))
    return out


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
        for statuses, keep in policies(self.settings):
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
