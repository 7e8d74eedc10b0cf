"""Purge at scale: dry run and real purge of N finished jobs (2 log lines each) on SQLite.

    python bench/purge_scale.py [N]          # default 100,000

Prints the seconds of the dry run and of the purge, how many write transactions the
purge took, and the longest one (what other processes' writers may wait for), while
N/10 pending jobs stay in the queue and must survive.
"""

from __future__ import annotations

import asyncio
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from jobtui.engine.models import Batch, Job, JobStatus, LogEntry, Outcome
from jobtui.engine.store.sqlite import SQLiteStore

T0 = datetime(2031, 1, 1, tzinfo=UTC)


async def seed(store: SQLiteStore, n: int) -> None:
    step = 5000
    for start in range(0, n, step):
        batch = Batch(name=f"b{start}", created_at=T0)
        await store.create_batch(batch)
        jobs = [Job(job_type="a", batch_id=batch.batch_id) for _ in range(min(step, n - start))]
        await store.insert_jobs(jobs)
        claimed = await store.claim(
            worker_id="w", slots={"a": step}, limit=step, lease_seconds=30, timeouts={}, now=T0
        )
        await store.finish_many(
            [
                (j.job_id, j.lease.token, Outcome(status=JobStatus.COMPLETED))
                for j in claimed
                if j.lease
            ],
            now=T0,
        )
        await store.append_logs(
            [
                LogEntry(job_id=j.job_id, ts=T0, seq=i, message="x" * 60)
                for j in jobs
                for i in range(2)
            ]
        )
    await store.insert_jobs([Job(job_type="b") for _ in range(n // 10)])


async def main(n: int) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        store = SQLiteStore(Path(tmp) / "purge.db")
        await store.open()
        try:
            t = time.perf_counter()
            await seed(store, n)
            print(
                f"seeded {n:,} finished jobs + {2 * n:,} log lines in "
                f"{time.perf_counter() - t:.1f}s"
            )
            cutoff = T0 + timedelta(hours=1)
            t = time.perf_counter()
            dry = await store.purge_jobs(
                older_than=cutoff, statuses=[JobStatus.COMPLETED], dry_run=True
            )
            dry_s = time.perf_counter() - t
            commits: list[float] = []
            began = [0.0]

            def trace(sql: str) -> None:
                if sql.startswith("BEGIN"):
                    began[0] = time.perf_counter()
                elif sql.startswith("COMMIT"):
                    commits.append(time.perf_counter() - began[0])

            await store._t.read(lambda: store._t.db.set_trace_callback(trace))
            t = time.perf_counter()
            real = await store.purge_jobs(older_than=cutoff, statuses=[JobStatus.COMPLETED])
            real_s = time.perf_counter() - t
            await store._t.read(lambda: store._t.db.set_trace_callback(None))
            assert (dry.jobs, dry.logs, dry.batches) == (real.jobs, real.logs, real.batches)
            left = await store.count_jobs()
            print(
                f"dry run: {dry.jobs:,} jobs, {dry.logs:,} log lines, {dry.batches} batches "
                f"in {dry_s:.2f}s"
            )
            print(
                f"purge:   same counts in {real_s:.2f}s, {len(commits)} transactions, "
                f"longest {max(commits) * 1000:.0f} ms; left: {left}"
            )
        finally:
            await store.close()


if __name__ == "__main__":
    asyncio.run(main(int(sys.argv[1]) if len(sys.argv) > 1 else 100_000))
