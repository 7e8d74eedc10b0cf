"""Fixed data for the console tests and snapshots: ids, timestamps and a frozen clock.

Not a test module (``__test__ = False``); ``test_console.py`` and
``test_console_snapshots.py`` import from it.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from jobtui.engine.models import (
    Batch,
    Job,
    JobError,
    JobStatus,
    Lease,
    LogEntry,
    Progress,
    WorkerInfo,
)
from jobtui.engine.store.base import Store
from jobtui.engine.store.sqlite import SQLiteStore

__test__ = False

T0 = datetime(2026, 11, 28, 9, 0, 0, tzinfo=UTC)
NOW = T0 + timedelta(minutes=10)


def frozen_clock() -> datetime:
    return NOW


class LabelledSQLiteStore(SQLiteStore):
    """The real SQLite store with a fixed description (tmp paths differ per run)."""

    @property
    def description(self) -> str:
        return "sqlite:~/.local/share/jobtui/jobtui.db"


def _at(minutes: float) -> datetime:
    return T0 + timedelta(minutes=minutes)


def _job(n: int, batch: str, status: JobStatus, name: str, **extra: Any) -> Job:
    fields: dict[str, Any] = {
        "job_id": f"{batch[:3]}{n:03d}" + "0" * 26,
        "job_type": "pdf.transcribe",
        "status": status,
        "parameters": {"path": f"/data/{batch}/{name}", "languages": "deu+eng"},
        "batch_id": batch,
        "created_at": _at(n * 0.01),
        "max_attempts": 3,
    }
    if status != JobStatus.PENDING:
        fields.update(started_at=_at(1 + n), attempts=1, worker_id="scan-01:4242:a1b2c3")
    if status.terminal:
        fields.update(completed_at=_at(1.5 + n))
    if status == JobStatus.COMPLETED:
        fields.update(
            results={"pages": 12 + n, "output": f"/out/{batch}/{name}.md"},
            progress=Progress(percent=100),
        )
    fields.update(extra)
    return Job(**fields)


DEMO_BATCHES = [
    Batch(
        batch_id="invoices",
        name="invoices-2026",
        total_jobs=6,
        created_at=_at(2),
        job_type="pdf.transcribe",
    ),
    Batch(
        batch_id="scans",
        name="scans-archive",
        total_jobs=4,
        created_at=_at(1),
        job_type="pdf.transcribe",
    ),
    Batch(
        batch_id="letters",
        name="letters",
        total_jobs=3,
        created_at=_at(0),
        job_type="pdf.transcribe",
    ),
]


def demo_jobs() -> list[Job]:
    jobs = [
        _job(1, "invoices", JobStatus.COMPLETED, "inv-0001.pdf"),
        _job(2, "invoices", JobStatus.COMPLETED, "inv-0002.pdf"),
        _job(3, "invoices", JobStatus.COMPLETED, "inv-0003.pdf"),
        _job(
            4,
            "invoices",
            JobStatus.FAILED,
            "inv-0004.pdf",
            attempts=1,
            error=JobError(
                code="PDF_CORRUPT",
                message="cannot open: trailer not found",
                details={"path": "/data/invoices/inv-0004.pdf", "size": 1834},
            ),
        ),
        _job(
            5,
            "invoices",
            JobStatus.PROCESSING,
            "inv-0005.pdf",
            progress=Progress(percent=40, step="page 8/20"),
            lease=Lease(owner="scan-01:4242:a1b2c3", token="t0k3n", expires_at=_at(30)),
        ),
        _job(6, "invoices", JobStatus.PENDING, "inv-0006.pdf"),
    ]
    jobs += [_job(10 + i, "scans", JobStatus.COMPLETED, f"scan-{i:04d}.pdf") for i in range(4)]
    jobs += [_job(20 + i, "letters", JobStatus.PENDING, f"letter-{i}.pdf") for i in range(3)]
    return jobs


def job_id(n: int, batch: str) -> str:
    return f"{batch[:3]}{n:03d}" + "0" * 26


FAILED_JOB = job_id(4, "invoices")
RUNNING_JOB = job_id(5, "invoices")


async def load_demo(store: Store) -> None:
    for batch in DEMO_BATCHES:
        await store.create_batch(batch)
    await store.insert_jobs(demo_jobs())
    await store.append_logs(
        [
            LogEntry(job_id=FAILED_JOB, ts=_at(5), seq=1, message="opening inv-0004.pdf"),
            LogEntry(
                job_id=FAILED_JOB,
                ts=_at(5.1),
                seq=2,
                level="error",
                message="cannot open: trailer not found",
            ),
            LogEntry(
                job_id=RUNNING_JOB, ts=_at(6), seq=1, message="opening inv-0005.pdf (20 pages)"
            ),
            LogEntry(job_id=RUNNING_JOB, ts=_at(6.2), seq=2, message="page 7/20: text layer"),
            LogEntry(
                job_id=RUNNING_JOB,
                ts=_at(6.4),
                seq=3,
                message="page 8/20: no text layer, OCR deu+eng",
            ),
        ]
    )
    await store.upsert_worker(
        WorkerInfo(
            worker_id="scan-01:4242:a1b2c3",
            host="scan-01",
            pid=4242,
            job_types=["pdf.markdown", "pdf.transcribe"],
            concurrency=4,
            running=1,
            started_at=T0,
            heartbeat_at=NOW - timedelta(seconds=3),
        )
    )


async def until(
    cond: Callable[[], Any | Awaitable[Any]], timeout: float = 15.0, what: str = "condition"
) -> Any:
    """Poll ``cond`` (sync or async) until truthy; fail after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        value = cond()
        if asyncio.iscoroutine(value):
            value = await value
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what} (last: {value!r})")
        await asyncio.sleep(0.02)


def make_pdfs(folder: Path, n: int) -> list[Path]:
    """``n`` small real PDFs (one page of text each) made with PyMuPDF."""
    import pymupdf

    folder.mkdir(parents=True, exist_ok=True)
    out = []
    for i in range(n):
        path = folder / f"doc {i}.pdf"
        doc = pymupdf.open()
        page = doc.new_page()
        page.insert_text((72, 72), f"Document {i} in {folder.name}: hello from the console tests")
        doc.save(path)
        doc.close()
        out.append(path)
    return out
