"""One attempt's call of its handler, and how abnormal ends become outcomes.

* A plain ``def`` handler runs in a thread (``asyncio.to_thread``): it cannot block the
  event loop, so heartbeats, cancels and shutdown go on while it works.
* ``SystemExit`` and ``KeyboardInterrupt`` raised by a handler end that job's attempt
  like any other error; they never reach the event loop (which they would stop: every
  job of the process with it, then every worker that claims the job next).
* A CPU worker process that dies under a job (a segfault, ``os._exit``, the memory
  limit) costs that attempt; a job whose worker died on two attempts in a row ends
  ``failed`` with ``WORKER_CRASHED`` instead of killing one process after another.
  (Not applied to a whole engine that vanished: its other jobs vanished with it, and
  nothing tells which one was to blame; those come back with ``LEASE_EXPIRED`` until
  their ``max_attempts``.)
"""

from __future__ import annotations

import asyncio
import inspect
from typing import Any

from jobtui.engine.models import ErrorCode, Job, JobError

#: Raised by handlers, caught as failures of their attempt (BaseException, not Exception).
POISON = (SystemExit, KeyboardInterrupt)

#: A job is failed once its worker (process or engine) died on this many attempts in a row.
CRASHES_TO_FAIL = 2


def is_async_handler(handler: Any) -> bool:
    """Whether ``handler`` is awaited (``async def``, or an object with an async
    ``__call__``) rather than run in a thread."""
    return inspect.iscoroutinefunction(handler) or inspect.iscoroutinefunction(
        getattr(handler, "__call__", None)  # noqa: B004 - an object with async __call__
    )


async def call_handler(handler: Any, ctx: Any, params: Any, is_async: bool | None = None) -> Any:
    """Await an ``async def`` handler; run a plain one in a thread. ``is_async``: what
    ``is_async_handler`` says of it, if the caller knows already (its job type)."""
    if is_async if is_async is not None else is_async_handler(handler):
        return await handler(ctx, params)
    result = await asyncio.to_thread(handler, ctx, params)
    if inspect.isawaitable(result):  # a plain function that returned a coroutine
        result = await result
    return result


def previous_crashes(job: Job) -> int:
    """How many attempts in a row before this one ended with their worker dead."""
    err = job.error
    if err is None or err.code != ErrorCode.WORKER_CRASHED:
        return 0
    crashes = (err.details or {}).get("crashes")
    return int(crashes) if isinstance(crashes, int) else 1


def crash_error(job: Job, what: str) -> tuple[JobError, bool]:
    """The error of an attempt whose worker died, and whether the job must now fail."""
    crashes = previous_crashes(job) + 1
    final = crashes >= CRASHES_TO_FAIL
    message = (
        f"{what}; its worker died on {crashes} attempts in a row, so it is not retried "
        "(`jobtui retry` runs it again)"
        if final
        else what
    )
    return JobError(
        code=ErrorCode.WORKER_CRASHED, message=message, details={"crashes": crashes}
    ), final
