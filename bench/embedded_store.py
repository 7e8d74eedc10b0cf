"""Embedded store at scale: noop jobs/s through the whole engine, and one console
refresh, with 1,000, 10,000 and 100,000 jobs in the SQLite store, in one run.

For each size N: a fresh store file gets N noop jobs; an Engine drains them (claim,
run, fenced finish, heartbeats, watchdog: everything a real run does) and we time it.
Then, with the N finished jobs still stored plus a new running batch, we time the
queries one console refresh makes (batches with counts, one page of jobs, the status
line's counts, workers, a log tail).

The store's own ceiling (``store_floor_jobs_per_s``): another fresh file with the same
N jobs, drained by nothing but the store's claim and fenced finish, ``--concurrency``
jobs a transaction (``finish_then_claim``, the call the engine makes), with no
handler, task, context, heartbeat or recount. No engine over this store can be
faster; ``engine_share`` is the engine's rate over it.

Targets (issue 15): >= 25,000 jobs/s at 100,000 and throughput at 100,000 within 20 %
of throughput at 1,000 (issue 3 asked for >= 5,000).

    python bench/embedded_store.py [--sizes 1000 10000 100000] [--concurrency 64]

Last line: one JSON object.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from jobtui.engine.api import OperatorAPI
from jobtui.engine.config import Settings
from jobtui.engine.models import JobFilter, JobStatus, Outcome, utcnow
from jobtui.engine.registry import default_registry
from jobtui.engine.store.base import ClaimRequest
from jobtui.engine.store.sqlite import SQLiteStore
from jobtui.engine.worker import Engine


async def refresh_once(engine: Engine, batch_id: str) -> float:
    """The query set of one console refresh; returns seconds."""
    api = OperatorAPI(engine.store, engine.registry)
    t0 = time.perf_counter()
    await api.batches(limit=20)
    await api.list_jobs(JobFilter(batch_id=batch_id), limit=30)
    await api.list_jobs(None, limit=30, newest_first=True)
    await api.count_jobs(JobFilter(batch_id=batch_id))
    await api.workers()
    await api.unserved_types()
    return time.perf_counter() - t0


async def fill(store: SQLiteStore, n: int) -> list[str]:
    """``n`` noop jobs in batches of 10,000 (as a folder of that size would be); their ids."""
    api = OperatorAPI(store, default_registry())
    chunk = 10_000
    batches = []
    for i in range(0, n, chunk):
        res = await api.enqueue(
            "noop", [{} for _ in range(min(chunk, n - i))], batch_name=f"bench-{n}"
        )
        batches.append(res.batch_id)
    return batches


async def store_floor(n: int, per_txn: int, root: Path) -> float:
    """Jobs/s of the store alone: claim, then finish what was claimed and claim again
    in one call, ``per_txn`` at a time, until the queue is empty."""
    store = SQLiteStore(root / f"floor-{n}.db")
    await store.open()
    await fill(store, n)
    done = Outcome(status=JobStatus.COMPLETED, results={})

    def request() -> ClaimRequest:
        return ClaimRequest(
            worker_id="floor",
            slots={"noop": per_txn},
            limit=per_txn,
            lease_seconds=30,
            timeouts={"noop": None},
            now=utcnow(),
        )

    t0 = time.perf_counter()
    jobs = await store.claim_request(request())
    finished = 0
    while jobs:
        items = [(j.job_id, j.lease.token, done) for j in jobs if j.lease is not None]
        applied, claimed = await store.finish_then_claim(items, request(), now=utcnow())
        finished += sum(applied)
        if isinstance(claimed, Exception):
            raise claimed
        jobs = claimed
    elapsed = time.perf_counter() - t0
    assert finished == n and (await store.count_jobs()) == {"completed": n}
    await store.close()
    return n / elapsed


async def one_size(n: int, concurrency: int, root: Path) -> dict[str, float]:
    store = SQLiteStore(root / f"bench-{n}.db")
    await store.open()
    engine = Engine(store, default_registry(), Settings(concurrency=concurrency, poll_interval=0.5))
    batches = await fill(store, n)
    t0 = time.perf_counter()
    await engine.start()
    for batch_id in batches:
        await engine.wait_batch(batch_id, poll=0.05)
    elapsed = time.perf_counter() - t0
    assert (await store.count_jobs()) == {"completed": n}
    # a console refresh with n finished jobs stored and a batch running
    engine.pause()
    live = await OperatorAPI(engine.store, engine.registry).enqueue(
        "noop", [{} for _ in range(200)], batch_name="live"
    )
    refresh = min([await refresh_once(engine, live.batch_id) for _ in range(5)])
    await engine.stop(grace=0)
    await store.close()
    floor = await store_floor(n, concurrency, root)
    return {
        "jobs": n,
        "jobs_per_s": round(n / elapsed, 1),
        "refresh_ms": round(refresh * 1000, 2),
        "store_floor_jobs_per_s": round(floor, 1),
        "engine_share": round(n / elapsed / floor, 3),
    }


async def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--sizes", type=int, nargs="+", default=[1000, 10_000, 100_000])
    ap.add_argument("--concurrency", type=int, default=64)
    args = ap.parse_args()
    root = Path(tempfile.mkdtemp(prefix="jobtui-embedded-"))
    rows = [await one_size(n, args.concurrency, root) for n in args.sizes]
    for r in rows:
        print(
            f"{r['jobs']:>7} jobs: {r['jobs_per_s']:>8.1f} noop jobs/s, "
            f"console refresh {r['refresh_ms']:.1f} ms; "
            f"the store alone {r['store_floor_jobs_per_s']:>8.1f} jobs/s "
            f"(the engine gets {r['engine_share']:.0%} of it)"
        )
    flat = rows[-1]["jobs_per_s"] / rows[0]["jobs_per_s"]
    print(
        f"throughput at {rows[-1]['jobs']} / at {rows[0]['jobs']}: {flat:.2f} (target >= 0.80); "
        f"at {rows[-1]['jobs']}: target >= 25000 jobs/s"
    )
    print(
        json.dumps(
            {
                "bench": "embedded_store",
                "concurrency": args.concurrency,
                "sizes": rows,
                "ratio_largest_to_smallest": round(flat, 3),
            }
        )
    )


if __name__ == "__main__":
    asyncio.run(main())
