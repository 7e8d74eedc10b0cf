"""Handlers report their work in units (pages, seconds of recording) as well as a
percentage, and the engine stores it structured: what the console's batch ETA counts."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pymupdf
import pytest

from jobtui.engine.context import JobContext
from jobtui.engine.models import Job
from jobtui.engine.registry import default_registry
from jobtui.engine.testing import run_handler


def _pdf(path: Path, pages: int) -> Path:
    doc = pymupdf.open()
    for i in range(pages):
        doc.new_page().insert_text((72, 72), f"page {i + 1} of {pages}")
    doc.save(path)
    doc.close()
    return path


async def test_a_transcribed_pdf_leaves_its_pages_done_of_total(tmp_path: Path) -> None:
    """Through a real engine: the stored progress of the completed job says all its
    pages are done, in pages, and the reports on the way counted up to it."""
    path = _pdf(tmp_path / "forty.pdf", 40)
    run = await run_handler(
        default_registry(),
        "pdf.transcribe",
        {"path": str(path), "pages_per_part": 8},  # in parts: progress as parts finish
        output_dir=tmp_path / "out",
        cpu_workers=2,
    )
    assert run.status == "completed", run.error
    stored = run.job.progress
    assert stored is not None
    assert (stored.done, stored.total, stored.unit, stored.percent) == (40, 40, "pages", 100.0)
    done = [p.done for p in run.progress if p.unit == "pages"]
    assert done[0] == 0 and done[-1] == 40 and done == sorted(done) and len(done) > 2
    assert all(p.total == 40 for p in run.progress if p.unit == "pages")
    assert run.result is not None and run.result["pages"] == 40


async def test_a_short_pdf_read_in_one_go_says_its_pages_in_its_result(tmp_path: Path) -> None:
    """A short document is read with its probe, with no progress on the way: its
    result's ``pages`` is what the batch tallies count for it."""
    path = _pdf(tmp_path / "three.pdf", 3)
    run = await run_handler(
        default_registry(), "pdf.transcribe", {"path": str(path)}, output_dir=tmp_path / "out"
    )
    assert run.status == "completed", run.error
    assert run.result is not None and run.result["pages"] == 3
    # either no unit reported (the result counts) or all its pages done
    assert run.job.progress is None or run.job.progress.done == 3


async def test_units_come_all_or_none(tmp_path: Path) -> None:
    """done of total in what unit: a tally cannot use one without the others."""
    nothing: Any = None  # the check comes before the store or the log are used
    ctx = JobContext(
        Job(job_type="a"),
        store=nothing,
        token="t",
        logs=nothing,
        pool=lambda: nothing,
        output_dir=tmp_path,
    )
    for partial in ({"done": 1, "total": 2}, {"unit": "pages"}, {"total": 2, "unit": "s"}):
        with pytest.raises(ValueError, match="together"):
            await ctx.progress(50.0, **partial)
