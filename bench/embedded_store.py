"""Embedded store at scale: noop jobs/s through the whole engine, and one console
refresh, with 1,000, 10,000 and 100,000 jobs in the SQLite store, in one run.

For each size N: a fresh store file gets N noop jobs; an Engine drains them (claim,
run, fenced finish, heartbeats, watchdog: everything a real run does) and we time it.
Then, with the N finished jobs still stored plus a new running batch, we time the
queries one console refresh makes (batches with counts, one page of jobs, the status
line's counts, workers, a log tail). Target (issue 3): >= 5,000 jobs/s at 100,000
and throughput at 100,000 within 20 % of throughput at 1,000.

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
from jobtui.engine.models import JobFilter
from jobtui.engine.registry import default_registry
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


async def one_size(n: int, concurrency: int, root: Path) -> dict[str, float]:
    store = SQLiteStore(root / f"bench-{n}.db")
    await store.open()
    engine = Engine(store, default_registry(), Settings(concurrency=concurrency, poll_interval=0.5))
    chunk = 10_000
    batches = []
    for i in range(0, n, chunk):
        res = await OperatorAPI(engine.store, engine.registry).enqueue(
            "noop", [{} for _ in range(min(chunk, n - i))], batch_name=f"bench-{n}"
        )
        batches.append(res.batch_id)
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
    return {"jobs": n, "jobs_per_s": round(n / elapsed, 1), "refresh_ms": round(refresh * 1000, 2)}


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
            f"console refresh {r['refresh_ms']:.1f} ms"
        )
    flat = rows[-1]["jobs_per_s"] / rows[0]["jobs_per_s"]
    print(
        f"throughput at {rows[-1]['jobs']} / at {rows[0]['jobs']}: {flat:.2f} (target >= 0.80); "
        f"at {rows[-1]['jobs']}: target >= 5000 jobs/s"
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
