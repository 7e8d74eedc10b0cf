"""jobtui.engine.testing.run_handler: what a plug-in author's test sees (the guide's
own plug-in tests run in tests/test_docs.py)."""

from __future__ import annotations

import time
from typing import Any

import pytest

from jobtui.engine import builtin
from jobtui.engine.registry import JobType, Registry
from jobtui.engine.testing import run_handler


async def test_cancel_after_reaches_the_running_handler() -> None:
    t0 = time.monotonic()
    run = await run_handler(builtin.register, "sleep", {"seconds": 60}, cancel_after=0.3)
    assert run.status == "cancelled" and run.error_code == "CANCELLED"
    assert time.monotonic() - t0 < 30  # it did not sleep the minute
    assert run.progress and run.progress[-1].percent < 100


async def test_a_job_type_alone_and_its_retries() -> None:
    calls: list[int] = []

    async def flaky(ctx: Any, params: Any) -> dict[str, Any]:
        calls.append(ctx.attempt)
        ctx.log(f"attempt {ctx.attempt}")
        if ctx.attempt < 2:
            raise RuntimeError("first attempt fails")
        return {"ok": True}

    jt = JobType(name="demo.flaky", handler=flaky, backoff_base=0.01, backoff_max=0.01)
    run = await run_handler(jt, "demo.flaky", max_attempts=2)
    assert run.status == "completed" and run.result == {"ok": True}
    assert calls == [1, 2] and "attempt 2" in run.log_text
    once = await run_handler(jt, "demo.flaky")  # the default: one attempt
    assert once.status == "failed" and once.error_code == "HANDLER_ERROR"
    assert "first attempt fails" in (once.error.message if once.error else "")


async def test_an_unknown_type_is_a_clear_error() -> None:
    with pytest.raises(KeyError, match="known: noop, sleep"):
        await run_handler(builtin.register, "nope", {})
    with pytest.raises(KeyError):
        await run_handler(Registry(), "noop", {})
