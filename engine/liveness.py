"""Which workers are alive, and which pending job types none of them serves.

Shared by the operator API (the console's status line and workers screen) and
``jobtui doctor``; it sits below both, so neither imports the other for it.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from jobtui.engine.models import WorkerInfo, utcnow
from jobtui.engine.store.base import Store

WORKER_ALIVE_S = 15.0  # a worker whose heartbeat (one a second) is older than this is gone


@dataclass
class LiveWorker:
    info: WorkerInfo
    alive: bool


async def live_workers(store: Store, now: datetime | None = None) -> list[LiveWorker]:
    """Every registered worker; alive when it heartbeat within ``WORKER_ALIVE_S`` of
    ``now`` (default: the current time; the console passes its own clock)."""
    cutoff = (now or utcnow()) - timedelta(seconds=WORKER_ALIVE_S)
    return [LiveWorker(w, w.heartbeat_at >= cutoff) for w in await store.list_workers()]


def waiting_for(job_type: str) -> str:
    """What a pending job of a type no live worker serves is waiting for: the one
    wording of ``jobtui jobs``, ``jobtui run`` and the console."""
    return f"waiting for a worker that serves {job_type}"


async def unserved_types(
    store: Store, now: datetime | None = None, workers: list[LiveWorker] | None = None
) -> dict[str, int]:
    """Pending job types that no live worker serves, with their counts (invariant 8).
    Paused engines, watch-only ones and ``jobtui run``'s (which claim only their own
    batch) do not count as serving. ``workers``: the list ``live_workers`` gave for the
    same ``now``, when the caller has it already (saves reading it again)."""
    served: set[str] = set()
    for w in workers if workers is not None else await live_workers(store, now):
        if w.alive and not w.info.paused and w.info.serves_queue:
            served.update(w.info.job_types)
    return {t: n for t, n in (await store.pending_job_types()).items() if t not in served}
