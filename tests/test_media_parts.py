"""``run_parts`` (audio, video): results in call order, and progress by weight each
time parts end; parts here end when the test says, one at a time or together."""

from __future__ import annotations

import asyncio
from typing import Any

from jobtui.engine.processors.media.parts import run_parts
from tests.util import wait_for


class Ctx:
    """What run_parts uses of a JobContext; part i ends when gates[i] is set."""

    job_id = "j"

    def __init__(self, n: int) -> None:
        self.gates = [asyncio.Event() for _ in range(n)]
        self.cancel_event = asyncio.Event()
        self.reports: list[tuple[float, str]] = []

    async def run_cpu(self, fn: Any, i: int) -> int:
        await self.gates[i].wait()
        return i * 10

    async def progress(self, pct: float, step: str, message: str, **units: Any) -> None:
        self.reports.append((round(pct, 3), message))

    def check_cancelled(self) -> None:
        pass


async def _reports(ctx: Ctx, n: int) -> None:
    async def enough() -> bool:
        return len(ctx.reports) >= n

    await wait_for(enough, timeout=10, what=f"{n} progress reports")


async def test_one_report_per_part_as_it_ends_and_results_in_call_order() -> None:
    ctx = Ctx(3)
    run = asyncio.ensure_future(
        run_parts(ctx, [(None, (i,)) for i in range(3)], [10.0, 20.0, 30.0], "x")  # type: ignore[arg-type]
    )
    await _reports(ctx, 1)
    assert ctx.reports == [(0.0, "0/60 s")]
    ctx.gates[1].set()  # the second part ends first
    await _reports(ctx, 2)
    assert ctx.reports[-1] == (round(100 * 20 / 60, 3), "20/60 s")
    ctx.gates[0].set(), ctx.gates[2].set()  # the other two together: one or two reports
    assert await run == [0, 10, 20]
    assert ctx.reports[-1] == (100.0, "60/60 s")
    assert 3 <= len(ctx.reports) <= 4
    assert [r[0] for r in ctx.reports] == sorted(r[0] for r in ctx.reports)
