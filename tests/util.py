"""Test helpers: wait on conditions (never sleep for work), build engines quickly."""

from __future__ import annotations

import asyncio
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]


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


def run_python(code: str, *args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    """``python -c code args...`` in a fresh interpreter that sees this checkout and
    nothing of the test's environment (what its own imports pull in, alone)."""
    return subprocess.run(
        [sys.executable, "-c", code, *args],
        capture_output=True,
        text=True,
        cwd=ROOT,
        env={"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin"},
        timeout=timeout,
    )
