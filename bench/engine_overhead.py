"""Engine overhead on MongoDB: commands per no-op job, and engine vs raw claim rate.

Runs against the nx-27017 wire server it starts (or ``MONGODB_URI`` when set), in one
run, side by side:

* raw: single ``find_one_and_update`` claims on a scratch collection, one at a time;
* engine: ``noop`` jobs through the whole engine (claim, run, fenced finish), with
  every command the engine's client sends counted by PyMongo command monitoring;
* progress: a job that reports progress 200 times over ~2 s; how many writes reach
  the store (the target is at most one per second).

Targets: <= 1.5 commands per no-op job amortised (issue 15; issue 2 asked <= 4),
progress writes <= 1/s per job, engine jobs/s >= 1/3 of the raw claim rate. Last line:
one JSON object.

    python bench/engine_overhead.py [--jobs 1000]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
import tempfile
import time
from collections import Counter
from contextlib import ExitStack
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from pymongo import AsyncMongoClient, ReturnDocument, monitoring

from jobtui.engine.api import OperatorAPI
from jobtui.engine.config import Settings
from jobtui.engine.context import JobContext
from jobtui.engine.models import utcnow
from jobtui.engine.registry import default_registry
from jobtui.engine.store.mongo import MongoStore
from jobtui.engine.worker import Engine
from tests.nxserver import nx_server


class CommandCounter(monitoring.CommandListener):
    def __init__(self) -> None:
        self.counts: Counter[str] = Counter()
        self.enabled = False

    def started(self, event: monitoring.CommandStartedEvent) -> None:
        if self.enabled:
            self.counts[event.command_name] += 1

    def succeeded(self, event: monitoring.CommandSucceededEvent) -> None:
        pass

    def failed(self, event: monitoring.CommandFailedEvent) -> None:
        pass


async def raw_claim_rate(uri: str, n: int) -> float:
    client: AsyncMongoClient[Any] = AsyncMongoClient(uri, tz_aware=True)
    coll = client["bench_raw"]["jobs"]
    await coll.drop()
    await coll.create_index([("status", 1), ("priority", -1), ("created_at", 1)])
    await coll.insert_many(
        [
            {"job_id": str(i), "status": "pending", "priority": 0, "created_at": utcnow()}
            for i in range(n)
        ]
    )
    t0 = time.perf_counter()
    for _ in range(n):
        await coll.find_one_and_update(
            {"status": "pending"},
            {
                "$set": {"status": "processing", "lease": {"owner": "raw", "expires_at": utcnow()}},
                "$inc": {"attempts": 1},
            },
            sort=[("priority", -1), ("created_at", 1)],
            return_document=ReturnDocument.AFTER,
        )
    elapsed = time.perf_counter() - t0
    await client.drop_database("bench_raw")
    await client.close()
    return n / elapsed


async def engine_rate(uri: str, n: int, concurrency: int) -> tuple[float, dict[str, int]]:
    counter = CommandCounter()
    store = MongoStore(uri, database="bench_engine", event_listeners=[counter])
    await store.open()
    await store._client.drop_database("bench_engine")
    await store.open()
    engine = Engine(
        store,
        default_registry(),
        Settings(concurrency=concurrency, poll_interval=1.0, heartbeat_interval=1.0),
    )
    res = await OperatorAPI(engine.store, engine.registry).enqueue("noop", [{} for _ in range(n)])
    counter.enabled = True
    t0 = time.perf_counter()
    await engine.start()
    await engine.wait_batch(res.batch_id, poll=0.5)
    elapsed = time.perf_counter() - t0
    counter.enabled = False
    await engine.stop(grace=0)
    summary = await store.get_batch(res.batch_id)
    assert summary is not None and summary.counts == {"completed": n}, summary
    await store._client.drop_database("bench_engine")
    await store.close()
    return n / elapsed, dict(counter.counts)


async def progress_writes(uri: str) -> dict[str, float]:
    store = MongoStore(uri, database="bench_progress")
    await store.open()
    reg = default_registry()

    @reg.handler("chatty")
    async def chatty(ctx: JobContext, params: Any) -> dict[str, Any]:
        t0 = time.monotonic()
        for i in range(200):
            await ctx.progress(i / 2)
            await asyncio.sleep(0.01)
        return {"writes": ctx.progress_writes, "seconds": time.monotonic() - t0}

    engine = Engine(store, reg, Settings(concurrency=1, poll_interval=0.1))
    res = await OperatorAPI(engine.store, engine.registry).enqueue("chatty", [{}])
    await engine.start()
    await engine.wait_batch(res.batch_id)
    await engine.stop()
    job = await store.get_job(res.job_ids[0])
    await store._client.drop_database("bench_progress")
    await store.close()
    assert job is not None and job.results is not None
    return {"calls": 200, "writes": job.results["writes"], "seconds": job.results["seconds"]}


async def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--jobs", type=int, default=1000)
    ap.add_argument("--concurrency", type=int, default=16)
    args = ap.parse_args()
    with ExitStack() as stack:
        uri = os.environ.get("MONGODB_URI") or stack.enter_context(
            nx_server(Path(tempfile.mkdtemp(prefix="jobtui-bench-")))
        )
        backend = "mongodb" if os.environ.get("MONGODB_URI") else "nx-27017"
        raw = await raw_claim_rate(uri, args.jobs)
        rate, commands = await engine_rate(uri, args.jobs, args.concurrency)
        prog = await progress_writes(uri)
    per_job = sum(commands.values()) / args.jobs
    print(f"backend {backend}, {args.jobs} jobs")
    print(f"raw find_one_and_update claims: {raw:8.1f}/s")
    print(
        f"engine noop jobs:               {rate:8.1f}/s  (ratio {rate / raw:.2f}, target >= 0.33)"
    )
    print(f"commands per job:               {per_job:8.2f}    (target <= 1.5) {commands}")
    print(
        f"progress: {prog['calls']} calls over {prog['seconds']:.1f}s -> {prog['writes']} writes "
        f"(target <= {int(prog['seconds']) + 1})"
    )
    print(
        json.dumps(
            {
                "bench": "engine_overhead",
                "backend": backend,
                "jobs": args.jobs,
                "raw_claims_per_s": round(raw, 1),
                "engine_jobs_per_s": round(rate, 1),
                "engine_to_raw_ratio": round(rate / raw, 3),
                "commands_per_job": round(per_job, 3),
                "commands": commands,
                "progress_calls": prog["calls"],
                "progress_writes": prog["writes"],
                "progress_seconds": round(prog["seconds"], 2),
            }
        )
    )


if __name__ == "__main__":
    asyncio.run(main())
