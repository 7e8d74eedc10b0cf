"""A worker OS process for the multi-process tests.

Runs an Engine on the given store with two test job types:
``record`` appends ``job_id pid`` to a file on every execution (so the test can
count executions, not just final states) and ``block`` records its start, then
sleeps ``seconds`` (the test kills or cancels it meanwhile; ``retry_seconds`` on a
later attempt).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from pydantic import BaseModel

from jobtui.engine.config import Settings
from jobtui.engine.registry import Registry
from jobtui.engine.store.factory import open_store
from jobtui.engine.worker import Engine


class BlockParams(BaseModel):
    seconds: float = 60.0
    retry_seconds: float | None = None  # a later attempt's sleep (default: seconds)


def make_registry(record: Path) -> Registry:
    reg = Registry()

    def append(line: str) -> None:
        fd = os.open(record, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        try:
            os.write(fd, (line + "\n").encode())
        finally:
            os.close(fd)

    @reg.handler("record", max_attempts=3)
    async def record_job(ctx, params):  # type: ignore[no-untyped-def]
        append(f"{ctx.job_id} {os.getpid()}")
        return {"pid": os.getpid()}

    @reg.handler("block", params=BlockParams, max_attempts=3)
    async def block_job(ctx, params):  # type: ignore[no-untyped-def]
        append(f"start {ctx.job_id} {os.getpid()} {ctx.attempt}")
        later = ctx.attempt > 1 and params.retry_seconds is not None
        await asyncio.sleep(params.retry_seconds if later else params.seconds)
        append(f"{ctx.job_id} {os.getpid()}")
        return {"pid": os.getpid()}

    return reg


async def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--mongodb-uri")
    p.add_argument("--database", default="jobtui")
    p.add_argument("--store")
    p.add_argument("--record", required=True)
    p.add_argument("--concurrency", type=int, default=4)
    p.add_argument("--lease", type=float, default=30.0)
    p.add_argument("--poll", type=float, default=0.2)
    args = p.parse_args()
    settings = Settings(
        mongodb_uri=args.mongodb_uri,
        database=args.database,
        store=args.store,
        concurrency=args.concurrency,
        lease_seconds=args.lease,
        poll_interval=args.poll,
        heartbeat_interval=min(1.0, args.lease / 4),
        watchdog_interval=0.5,
        shutdown_grace=5,
    )
    store = await open_store(settings)
    engine = Engine(store, make_registry(Path(args.record)), settings)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    loop.add_signal_handler(signal.SIGTERM, stop.set)
    loop.add_signal_handler(signal.SIGINT, stop.set)
    await engine.start()
    print("READY", engine.worker_id, flush=True)
    await stop.wait()
    await engine.stop()
    await store.close()


if __name__ == "__main__":
    asyncio.run(main())
