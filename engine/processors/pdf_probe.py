"""Checking a PDF job's input before its pages are read (the handler's side).

The input is opened through the job's context (input roots checked, the file pinned
for the attempt) and probed in a worker process (``pdf_extract.probe``): bad input
fails the job at once with a stable code, never retried. A short text document is
extracted in that same call (``pdf_extract.probe_and_extract``), its transcript
written by the worker process, so it needs no parts at all.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, cast

from jobtui.engine.context import JobContext
from jobtui.engine.outputs import output_base
from jobtui.engine.processors import pdf_extract as px
from jobtui.engine.processors.pages import named_errors, note_changed
from jobtui.engine.processors.pdf_params import PdfParams

# Text documents up to this many pages are checked and extracted in one call to a
# worker process (~40 ms of work): splitting them would cost more round trips than
# it saves, and in a folder of documents every core is busy anyway.
SINGLE_CALL_MAX_PAGES = 64


async def _probe_read(
    ctx: JobContext,
    p: PdfParams,
    path: str,
    read: str,
    sample: int,
    extract: dict[str, Any] | None,
    write_to: Path | None,
) -> dict[str, Any]:
    """``probe_input``'s work in a worker process, reading ``read`` (the pinned file)."""
    if extract is None:
        return cast("dict[str, Any]", await ctx.run_cpu(px.probe, read, p.password, sample))
    # A part size the job set itself is honoured: then every document is split.
    one_call = 0 if "pages_per_part" in p.model_fields_set else SINGLE_CALL_MAX_PAGES
    output = None
    if write_to is not None:
        output = {
            "out_dir": str(write_to),
            "base": output_base(path),
            "title": Path(path).name,
            "source": path,  # the name, not the pinned /proc/PID/fd/N it reads
            "languages": extract.get("languages", ""),
        }
    return cast(
        "dict[str, Any]",
        await ctx.run_cpu(
            px.probe_and_extract, read, p.password, sample, extract, one_call, output
        ),
    )


async def probe_input(
    ctx: JobContext,
    p: PdfParams,
    sample: int = 0,
    extract: dict[str, Any] | None = None,
    write_to: Path | None = None,
) -> tuple[str, dict[str, Any]]:
    """Absolute path and ``{pages, sha256, size, ...}``; bad input raises ``JobFailed``.
    With ``extract`` (options for ``extract_range``), a short document that needs no
    OCR comes back extracted (``summary``; ``records`` too without ``write_to``), and
    one that does with ``ocr_pages``, the pages that need it; with ``write_to``, the
    transcript is already written there (``written``: the two paths)."""
    # Input roots are checked before anything is read (PATH_NOT_ALLOWED otherwise).
    src = ctx.open_input(p.path)  # checked as opened; pinned until the attempt ends
    path, read = str(src.path), src.read_path
    with named_errors(src):  # bad input: say its name, not the /proc/PID/fd/N read
        info = await _probe_read(ctx, p, path, read, sample, extract, write_to)
    note_changed(ctx, path, p.sha256, info["sha256"])
    ctx.log(f"{path}: {info['pages']} pages, {info['size']} bytes, sha256 {info['sha256'][:12]}")
    if info.get("repaired"):
        ctx.log(
            f"{path} is damaged; MuPDF repaired it on open, so some content may be missing",
            "warning",
        )
    info["read_path"] = read  # what the parts open: the same pinned file
    return path, info
