"""The seed's session processing as jobtui's ``session`` job type.

``processor.py`` stands for the seed's ``SessionProcessor``: a synchronous,
blocking ``process_session(...)`` that reports progress through a callback. This
module wraps it without changing it:

* the blocking call runs in a thread (``asyncio.to_thread``), never on the event
  loop, so leases are renewed and the console stays live while it works;
* its progress callback hands each report back to the loop (``ctx.progress``), and
  raises inside the thread once an operator cancelled the job, so a cancelled job
  stops at its next progress report (a thread cannot be killed from outside);
* its parameters are the seed's session fields, validated by ``SessionParams``.

Registered through the ``jobtui.handlers`` entry point in ``pyproject.toml``.
"""

from __future__ import annotations

import asyncio
from typing import Any

from pydantic import BaseModel, ConfigDict

from jobtui.engine.context import JobContext
from jobtui.engine.registry import Registry
from jobtui_session_example.processor import SessionProcessor


class SessionParams(BaseModel):
    """The seed's session job parameters (``event_jobs.parameters``)."""

    model_config = ConfigDict(extra="allow")  # the seed's documents carry more fields

    event: str
    session: str
    url: str | None = None
    filename: str | None = None
    track: str | None = None
    day: str | None = None
    starttime: str | None = None
    endtime: str | None = None
    speakers: list[str] | None = None
    video_url: str | None = None
    attachments_url: str | None = None
    source_language: str = "en"
    target_language: str = "de"
    use_cache: bool = True
    create_archive: bool = False


class _Cancelled(Exception):
    """Raised in the processor's thread from its progress callback."""


async def session(ctx: JobContext, params: SessionParams) -> dict[str, Any]:
    """One of the seed's sessions, processed by its blocking SessionProcessor."""
    loop = asyncio.get_running_loop()

    def on_progress(percent: float, message: str) -> None:  # runs in the worker thread
        if ctx.cancelled:
            raise _Cancelled
        loop.call_soon_threadsafe(
            lambda: loop.create_task(ctx.progress(percent, "session", message))
        )

    processor = SessionProcessor(process_id=ctx.job_id)
    fields = params.model_dump(exclude_none=True)
    known = {k: fields[k] for k in SessionParams.model_fields if k in fields}
    try:
        result = await asyncio.to_thread(
            processor.process_session, **known, progress_callback=on_progress
        )
    except _Cancelled:
        ctx.check_cancelled()  # raises JobCancelled: the job ends "cancelled"
        raise
    ctx.log(f"session {params.session} processed")
    return result


def register(registry: Registry) -> None:
    """Entry point (``jobtui.handlers``): serve the ``session`` type, which is also the
    type of the seed's documents whose ``job_type`` is empty, null or missing."""
    registry.handler("session", params=SessionParams, max_attempts=2, timeout=3600)(session)
