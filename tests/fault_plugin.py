"""A handler plug-in for the fault suite, loaded by the real ``jobtui`` command through
the ``jobtui.handlers`` entry point (``tests/test_faults.py`` writes the dist-info).

Every execution is appended to the file named by ``FAULT_RECORD``: ``start <job> <pid>
<attempt>`` when a handler starts, ``done <job> <pid>`` when it completes, so the tests
count runs, not just final states. The ``fault.*`` types misbehave on purpose.
"""

from __future__ import annotations

import asyncio
import os
import sys
import time
from typing import Any

from pydantic import BaseModel, ConfigDict

from jobtui.engine.context import JobContext
from jobtui.engine.registry import Registry


class Params(BaseModel):
    model_config = ConfigDict(extra="allow")  # enqueue_paths adds the file's path
    seconds: float = 0.0
    steps: int = 10


def record(line: str) -> None:
    path = os.environ.get("FAULT_RECORD")
    if not path:
        return
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        os.write(fd, (line + "\n").encode())
    finally:
        os.close(fd)


def held() -> bool:
    """While the file ``FAULT_HOLD`` names exists, ``fault.work`` jobs wait."""
    path = os.environ.get("FAULT_HOLD")
    return bool(path) and os.path.exists(path)


async def work(ctx: JobContext, params: Params) -> dict[str, Any]:
    """Records its start; sleeps ``seconds`` in ``steps``, then waits while held, writing
    progress all along; records that it is done."""
    record(f"start {ctx.job_id} {os.getpid()} {ctx.attempt}")
    for i in range(params.steps):
        await ctx.progress(50.0 * i / params.steps, step="working")
        await asyncio.sleep(params.seconds / params.steps)
    while held():
        await ctx.progress(50.0, step="held")
        await asyncio.sleep(0.05)
    record(f"done {ctx.job_id} {os.getpid()}")
    return {"pid": os.getpid()}


async def exits(ctx: JobContext, params: Params) -> dict[str, Any]:
    """A handler calling sys.exit (a poison pill)."""
    record(f"start {ctx.job_id} {os.getpid()} {ctx.attempt}")
    sys.exit(3)


async def interrupts(ctx: JobContext, params: Params) -> dict[str, Any]:
    """A handler raising KeyboardInterrupt (a poison pill)."""
    record(f"start {ctx.job_id} {os.getpid()} {ctx.attempt}")
    raise KeyboardInterrupt


async def kills_its_process(ctx: JobContext, params: Params) -> dict[str, Any]:
    """CPU work that ends its worker process with os._exit."""
    record(f"start {ctx.job_id} {os.getpid()} {ctx.attempt}")
    await ctx.run_cpu(os._exit, 7)
    return {}


async def blocks_the_loop(ctx: JobContext, params: Params) -> dict[str, Any]:
    """An async handler that blocks the event loop for ``seconds`` (never yields)."""
    record(f"start {ctx.job_id} {os.getpid()} {ctx.attempt}")
    time.sleep(params.seconds)
    record(f"done {ctx.job_id} {os.getpid()}")
    return {}


def sync_work(ctx: JobContext, params: Params) -> dict[str, Any]:
    """A plain (synchronous) handler: the engine runs it off the event loop."""
    record(f"start {ctx.job_id} {os.getpid()} {ctx.attempt}")
    time.sleep(params.seconds)
    record(f"done {ctx.job_id} {os.getpid()}")
    return {}


async def hogs_memory(ctx: JobContext, params: Params) -> dict[str, Any]:
    """CPU work that allocates ``seconds`` GiB (the name is reused: a size)."""
    record(f"start {ctx.job_id} {os.getpid()} {ctx.attempt}")
    await ctx.run_cpu(bytearray, int(params.seconds * (1 << 30)))
    record(f"done {ctx.job_id} {os.getpid()}")
    return {}


def register(registry: Registry) -> None:
    registry.handler("fault.work", params=Params)(work)
    registry.handler("fault.exit", params=Params)(exits)
    registry.handler("fault.interrupt", params=Params)(interrupts)
    registry.handler("fault.osexit", params=Params)(kills_its_process)
    registry.handler("fault.block", params=Params)(blocks_the_loop)
    registry.handler("fault.sync", params=Params)(sync_work)  # type: ignore[arg-type]
    registry.handler("fault.hog", params=Params, max_attempts=1)(hogs_memory)
