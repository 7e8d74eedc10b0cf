"""Test a job type the way the engine runs it: ``run_handler`` for plug-in authors.

```python
from jobtui.engine.testing import run_handler

async def test_counts_lines(tmp_path):
    (tmp_path / "a.txt").write_text("one\ntwo\nthree\n")
    run = await run_handler(my_plugin.register, "text.lines", {"path": str(tmp_path / "a.txt")})
    assert run.status == "completed" and run.result == {"lines": 3}
    assert run.progress[-1].percent == 100
    assert "3 lines" in run.log_text
```

(docs/handlers.md walks through a complete plug-in and its tests.)

It runs one job through a real ``Engine`` on an embedded SQLite store in a temporary
folder: the parameters are validated by the type's model (``INVALID_PARAMETERS``),
CPU work goes to real worker processes (so what ``run_cpu`` sends must pickle, and the
type's ``worker_preload`` and ``worker_warm`` apply), ``JobFailed`` codes, timeouts
and cancels end the job as they would in production. What a test wants to assert
is returned together: the final status, the result or the error, every progress
report the handler made (not only the ones the store's once-a-second throttle kept)
and the log lines.
"""

from __future__ import annotations

import asyncio
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from jobtui.engine.config import Settings
from jobtui.engine.context import JobContext
from jobtui.engine.models import Job, JobError, LogEntry, Progress
from jobtui.engine.registry import JobType, Registry

__all__ = ["HandlerRun", "run_handler"]

TERMINAL = ("completed", "failed", "cancelled")


@dataclass
class HandlerRun:
    """What one job did: ``status`` (``completed``, ``failed``, ``cancelled``), its
    ``result`` or ``error``, every ``progress`` report in order, its ``logs``."""

    job: Job
    status: str
    result: dict[str, Any] | None
    error: JobError | None
    progress: list[Progress] = field(default_factory=list)
    logs: list[LogEntry] = field(default_factory=list)
    output_dir: Path = Path()
    duration_s: float = 0.0

    @property
    def log_text(self) -> str:
        """The log lines joined, for ``in`` checks."""
        return "\n".join(e.message for e in self.logs)

    @property
    def error_code(self) -> str | None:
        return self.error.code if self.error else None


def _registry(source: Registry | JobType | Callable[[Registry], None]) -> Registry:
    if isinstance(source, Registry):
        return source
    reg = Registry()
    if isinstance(source, JobType):
        reg.add(source)
    else:
        source(reg)  # a plug-in's register(registry) entry point
    return reg


async def run_handler(
    source: Registry | JobType | Callable[[Registry], None],
    job_type: str,
    parameters: dict[str, Any] | None = None,
    *,
    output_dir: str | Path | None = None,
    max_attempts: int = 1,
    timeout: float | None = None,
    cpu_workers: int = 1,
    cancel_after: float | None = None,
    limit: float = 120.0,
) -> HandlerRun:
    """Run one ``job_type`` job with ``parameters`` and return what it did.

    ``source``: a ``Registry``, one ``JobType``, or a plug-in's ``register`` function.
    ``output_dir``: where outputs go (default: a temporary folder, kept until the
    process ends, in ``HandlerRun.output_dir``). ``max_attempts`` (default 1: a test
    sees the first failure instead of waiting for retries) and ``timeout`` override
    the type's own when given. ``cancel_after``: cancel the job that many seconds
    after it starts. Raises ``TimeoutError`` if the job is not finished in ``limit``
    seconds, ``KeyError`` for a type the source does not register.
    """
    from jobtui.engine.api import OperatorAPI
    from jobtui.engine.store.sqlite import SQLiteStore
    from jobtui.engine.worker import Engine

    registry = _registry(source)
    if job_type not in registry:
        raise KeyError(f"{job_type!r} is not registered (known: {', '.join(registry.names())})")
    options: dict[str, Any] = {"max_attempts": max_attempts}
    if timeout is not None:
        options["timeout"] = timeout
    registry = registry.select([job_type])
    registry.override(job_type, **options)
    folder = Path(tempfile.mkdtemp(prefix="jobtui-test-"))
    out = Path(output_dir) if output_dir is not None else folder / "out"
    settings = Settings(
        output_dir=out,
        cpu_workers=cpu_workers,
        poll_interval=0.2,
        heartbeat_interval=0.2,
        watchdog_interval=1.0,
    )
    reports: list[Progress] = []

    class RecordingContext(JobContext):
        async def progress(
            self,
            percent: float,
            step: str | None = None,
            message: str | None = None,
            **units: Any,
        ) -> None:
            await super().progress(percent, step, message, **units)
            reports.append(Progress(percent=percent, step=step, message=message, **units))

    store = SQLiteStore(folder / "jobs.db")
    await store.open()
    engine = Engine(store, registry, settings)
    engine.context_factory = RecordingContext
    api = OperatorAPI(store, registry)  # its enqueue and cancel wake the engine via the store
    t0 = time.monotonic()
    try:
        await engine.start()
        res = await api.enqueue(job_type, [dict(parameters or {})])
        job_id = res.job_ids[0]
        job = await _wait(api, job_id, limit, cancel_after)
        duration = time.monotonic() - t0
    finally:
        await engine.stop(grace=5.0)
    try:
        logs = await api.tail_logs(job_id, limit=100_000)
    finally:
        await store.close()
    return HandlerRun(
        job=job,
        status=job.status.value,
        result=job.results,
        error=job.error,
        progress=reports,
        logs=logs,
        output_dir=out,
        duration_s=round(duration, 3),
    )


async def _wait(api: Any, job_id: str, limit: float, cancel_after: float | None) -> Job:
    """Poll the job until it is terminal (the engine ends it; we only look)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + limit
    started: float | None = None
    cancelled = False
    while True:
        job = await api.store.get_job(job_id)
        assert job is not None
        if job.status.value in TERMINAL:
            return job  # type: ignore[no-any-return]
        if job.status.value == "processing" and started is None:
            started = loop.time()
        if (
            cancel_after is not None
            and not cancelled
            and started is not None
            and loop.time() - started >= cancel_after
        ):
            await api.cancel_job(job_id)
            cancelled = True
        if loop.time() > deadline:
            raise TimeoutError(f"job {job_id} ({job.job_type}) not finished in {limit:g}s")
        await asyncio.sleep(0.02)
