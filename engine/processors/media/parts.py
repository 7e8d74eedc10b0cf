"""Run a job's parts across the process pool; results in order, progress by weight.

Shared by the speech and slide handlers: each part is one ``ctx.run_cpu`` call with a
weight (seconds of recording), progress is the finished weight of the total, and a
cancel (task cancellation or ``ctx.cancel_event``) cancels every part still running:
the pool kills their processes, and this returns only after they are gone.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from typing import Any

from jobtui.engine.context import JobContext
from jobtui.engine.errors import JobCancelled


async def run_parts(
    ctx: JobContext,
    calls: Sequence[tuple[Callable[..., Any], tuple[Any, ...]]],
    weights: Sequence[float],
    step: str,
    done_weight: float = 0.0,
    total_weight: float | None = None,
    unit: str = "s",
) -> list[Any]:
    """``[fn(*args) for fn, args in calls]`` run at once on the pool, in call order.

    ``done_weight`` counts towards progress from the start (parts not run, such as
    stretches with no speech); ``total_weight`` defaults to the sum of everything.
    """
    total = total_weight if total_weight is not None else done_weight + sum(weights)
    tasks = [asyncio.ensure_future(ctx.run_cpu(fn, *args)) for fn, args in calls]
    index: dict[asyncio.Future[Any], int] = {t: i for i, t in enumerate(tasks)}
    cancel_wait = asyncio.ensure_future(ctx.cancel_event.wait())
    results: list[Any] = [None] * len(tasks)
    done = done_weight

    async def report() -> None:
        pct = 100.0 * done / total if total > 0 else 100.0
        await ctx.progress(
            pct, step, f"{done:.0f}/{total:.0f} {unit}", done=done, total=total, unit=unit
        )

    await report()
    try:
        pending: set[asyncio.Future[Any]] = set(tasks)
        while pending:
            finished, pending = await asyncio.wait(
                pending | {cancel_wait}, return_when=asyncio.FIRST_COMPLETED
            )
            if cancel_wait in finished:
                raise JobCancelled(ctx.job_id)
            pending.discard(cancel_wait)
            for t in finished:
                i = index[t]
                results[i] = t.result()  # a part's JobFailed ends the job here
                done += weights[i]
            ctx.check_cancelled()
            await report()
    finally:
        cancel_wait.cancel()
        for t in tasks:
            t.cancel()
        # Wait for cancelled parts: their processes are killed before we return.
        await asyncio.gather(*tasks, cancel_wait, return_exceptions=True)
    return results
