"""Built-in job types for tests, demos and benchmarks: ``noop`` and ``sleep``."""

from __future__ import annotations

import asyncio
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from jobtui.engine.context import JobContext
from jobtui.engine.registry import Registry


class SleepParams(BaseModel):
    model_config = ConfigDict(defer_build=True)  # built when a sleep job is checked

    seconds: float = Field(1.0, ge=0, le=86_400)


async def noop(ctx: JobContext, params: BaseModel) -> dict[str, Any]:
    """Completes at once."""
    return {}


async def sleep(ctx: JobContext, params: SleepParams) -> dict[str, Any]:
    """Sleeps ``seconds``, reporting progress; stops promptly when cancelled."""
    loop = asyncio.get_running_loop()
    start = loop.time()
    while (elapsed := loop.time() - start) < params.seconds:
        ctx.check_cancelled()
        await ctx.progress(100.0 * elapsed / params.seconds if params.seconds else 100.0)
        await asyncio.sleep(min(0.1, params.seconds - elapsed))
    return {"slept_s": params.seconds}


def register(registry: Registry) -> None:
    """Entry point of the ``builtin`` plug-in (see pyproject's ``jobtui.handlers``)."""
    registry.handler("noop", max_attempts=1)(noop)
    registry.handler("sleep", params=SleepParams, timeout=None)(sleep)  # up to a day
