"""Test helpers: wait on conditions (never sleep for work), build engines quickly."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import Any


async def wait_for(
    cond: Callable[[], Awaitable[Any]],
    timeout: float = 20.0,
    interval: float = 0.02,
    what: str = "condition",
) -> Any:
    """Await ``cond()`` until it returns something truthy; fail after ``timeout``."""
    deadline = time.monotonic() + timeout
    while True:
        value = await cond()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what} (last: {value!r})")
        await asyncio.sleep(interval)


def api_of(engine: Any) -> Any:
    """The operator API on an engine's store and job types (what a front end in the
    same process would use: its enqueues, retries and cancels wake the engine
    through the store)."""
    from jobtui.engine.api import OperatorAPI

    return OperatorAPI(engine.store, engine.registry)
