"""PDF handlers: ``pdf.transcribe``, ``pdf.markdown`` and ``pdf.render``.

Each handler checks its input in a worker process first (bad input fails the job at
once with a stable code, never retried), then splits the document into page ranges
and runs them concurrently on the engine's process pool, so one 2,400-page PDF uses
every core; the parts come back in any order and are assembled in page order.
Outputs go under ``ctx.output_dir`` with names that carry the first 12 hex digits of
the input's SHA-256, written atomically (temporary file, then rename), so two
different files with one name never overwrite each other and readers never see half
a file. Cancelling the handler's task (or setting ``ctx.cancel_event``) cancels every
part, and the process pool kills the processes running them.

Their parameters are in ``pdf_params``, the input check in ``pdf_probe``, the cut into
parts in ``pdf_parts``; what runs in the worker processes in ``pdf_open`` (open, check
and hash a document), ``pdf_extract`` (read its pages) and ``pdf_output`` (write them).
"""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import Any

from jobtui.engine.context import JobContext
from jobtui.engine.errors import JobFailed
from jobtui.engine.models import ErrorCode
from jobtui.engine.processors import pdf_extract as px
from jobtui.engine.processors import pdf_open
from jobtui.engine.processors import pdf_output as po
from jobtui.engine.processors.ocr import tesseract_check
from jobtui.engine.processors.pages import cores as _cores
from jobtui.engine.processors.pages import log_page_errors as _log_page_errors
from jobtui.engine.processors.pages import output_stem as output_stem
from jobtui.engine.processors.pages import page_list as _page_list
from jobtui.engine.processors.pages import run_part_results
from jobtui.engine.processors.pages import run_parts as _run_parts
from jobtui.engine.processors.pdf_markdown import structure_markdown
from jobtui.engine.processors.pdf_params import (
    MarkdownParams,
    OcrParams,
    RenderParams,
    TranscribeParams,
)
from jobtui.engine.processors.pdf_parts import (
    MIN_PAGES_PER_PART,
    PROBE_SAMPLE,
    expects_ocr,
    part_ranges,
    part_size,
    split_pages,
)
from jobtui.engine.processors.pdf_probe import probe_input
from jobtui.engine.registry import FileTypes, Registry


def _ocr_opts(p: OcrParams) -> dict[str, Any]:
    return {
        "password": p.password,
        "ocr": p.ocr,
        "force_ocr": p.force_ocr,
        "languages": p.languages,
        "dpi": p.dpi,
    }


# -- handlers ------------------------------------------------------------------------


async def transcribe(ctx: JobContext, p: TranscribeParams) -> dict[str, Any]:
    """Text of every page in order; OCR where a page has no text layer."""
    t0 = time.monotonic()
    out_dir = Path(ctx.output_dir).absolute()
    path, info = await probe_input(
        ctx, p, PROBE_SAMPLE if p.ocr else 0, extract=_ocr_opts(p), write_to=out_dir
    )
    sha, n = info["sha256"], info["pages"]
    summary = info.pop("summary", None)
    written = info.pop("written", None)
    ranges: list[tuple[int, int]] = [(0, n)] if n else []
    parts: list[dict[str, Any]] = []
    if summary is None:
        ranges = part_ranges(ctx, p, info)
        await ctx.progress(0.0, "transcribe", f"0/{n} pages", done=0, total=n, unit="pages")
        parts = await run_part_results(
            ctx, px.transcribe_range, info["read_path"], ranges, _ocr_opts(p), "transcribe"
        )
        summary = po.merge_summaries([part["summary"] for part in parts])
    ocr_pages = summary["ocr"]
    if ocr_pages:
        ctx.log(f"OCR ({p.languages}) used on {len(ocr_pages)} pages: {_page_list(ocr_pages)}")
    no_text = summary["no_text"]
    if no_text:
        ctx.log(
            f"{len(no_text)} pages have images but no text layer and were not OCRed "
            f"(ocr=false): {_page_list(no_text)}",
            "warning",
        )
    failed = _log_page_errors(ctx, summary["notes"])  # the records of the pages to report
    if written is None:
        # The parts encoded their pages; joining and writing them is a copy, done in
        # a thread here rather than sending the text to a worker process again.
        written = await asyncio.to_thread(
            po.write_transcript_parts,
            str(out_dir),
            output_stem(path, sha),
            Path(path).name,
            po.transcript_head(path, sha, n, p.languages),
            [part["markdown"] for part in parts],
            [part["json"] for part in parts],
        )
    md_path, json_path = written
    chars = summary["chars"]
    ctx.log(f"transcribed {n} pages, {chars} characters -> {md_path}")
    return {
        "pages": n,
        "chars": chars,
        "ocr_pages": len(ocr_pages),
        "failed_pages": len(failed),
        "parts": len(ranges),
        "markdown_path": str(md_path),
        "json_path": str(json_path),
        "sha256": sha,
        "duration_s": round(time.monotonic() - t0, 3),
    }


async def markdown(ctx: JobContext, p: MarkdownParams) -> dict[str, Any]:
    """Structured Markdown: headings from font sizes, lists, paragraphs."""
    t0 = time.monotonic()
    path, info = await probe_input(ctx, p, PROBE_SAMPLE if p.ocr else 0)
    sha, n = info["sha256"], info["pages"]
    ranges = split_pages(
        n,
        part_size(ctx, p, info),
        _cores(ctx),
        min_part=1 if expects_ocr(p, info) else MIN_PAGES_PER_PART,
    )
    await ctx.progress(0.0, "markdown", f"0/{n} pages", done=0, total=n, unit="pages")
    pages = await _run_parts(
        ctx, px.markdown_range, info["read_path"], ranges, _ocr_opts(p), "markdown"
    )
    ocr_pages = sum(1 for r in pages if r["ocr"])
    if ocr_pages:
        ctx.log(f"OCR ({p.languages}) used on {ocr_pages} pages")
    failed = _log_page_errors(ctx, pages)
    out_dir = Path(ctx.output_dir).absolute()
    md_path = out_dir / f"{output_stem(path, sha)}.structured.md"
    text: list[str] = []

    def build() -> str:
        text.append(structure_markdown(pages, Path(path).stem))
        return text[0]

    # Built and written in a thread (a big document's Markdown takes a moment).
    await asyncio.to_thread(po.write_files, str(out_dir), {str(md_path): build})
    return {
        "pages": n,
        "chars": len(text[0]),
        "ocr_pages": ocr_pages,
        "failed_pages": len(failed),
        "markdown_path": str(md_path),
        "sha256": sha,
        "duration_s": round(time.monotonic() - t0, 3),
    }


async def render(ctx: JobContext, p: RenderParams) -> dict[str, Any]:
    """Page images (PNG) at ``dpi``, optionally only ``first_page``..``last_page``."""
    t0 = time.monotonic()
    path, info = await probe_input(ctx, p)
    sha, n = info["sha256"], info["pages"]
    first = p.first_page or 1
    last = min(p.last_page or n, n)
    if n and first > n:
        raise JobFailed(
            ErrorCode.INVALID_PARAMETERS,
            f"first_page {first} is past the last page ({n})",
            {"pages": n},
        )
    if p.last_page and p.last_page > n:
        ctx.log(f"last_page {p.last_page} is past the end; rendering up to page {n}", "warning")
    out_dir = Path(ctx.output_dir).absolute() / output_stem(path, sha)
    try:
        await asyncio.to_thread(out_dir.mkdir, parents=True, exist_ok=True)
    except OSError as exc:
        raise JobFailed(
            ErrorCode.OUTPUT_ERROR,
            f"cannot create {out_dir}: {exc.strerror}",
            {"output_dir": str(out_dir)},
        ) from None
    count = max(0, last - first + 1) if n else 0
    ranges = [
        (a + first - 1, b + first - 1) for a, b in split_pages(count, p.pages_per_part, _cores(ctx))
    ]
    opts = {"password": p.password, "dpi": p.dpi, "out_dir": str(out_dir)}
    await ctx.progress(0.0, "render", f"0/{count} pages", done=0, total=count, unit="pages")
    records = await _run_parts(ctx, px.render_range, info["read_path"], ranges, opts, "render")
    failed = _log_page_errors(ctx, records)
    rendered = sum(1 for r in records if r.get("file"))
    ctx.log(f"rendered {rendered} pages at {p.dpi} dpi -> {out_dir}")
    return {
        "pages": n,
        "pages_rendered": rendered,
        "failed_pages": len(failed),
        "first_page": first if count else None,
        "last_page": last if count else None,
        "output_dir": str(out_dir),
        "sha256": sha,
        "duration_s": round(time.monotonic() - t0, 3),
    }


def is_pdf_head(head: bytes) -> bool:
    """A PDF whatever its name: ``%PDF-`` within the first KiB, as readers accept it."""
    return b"%PDF-" in head[:1024]


#: What the CPU worker processes import once (in the fork server they start from):
#: the worker-side modules and PyMuPDF (~0.3 s to import).
WORKER_PRELOAD = (
    "jobtui.engine.processors.pdf_open",
    "jobtui.engine.processors.pdf_extract",
    "jobtui.engine.processors.pdf_output",
    "pymupdf",
)


def register(registry: Registry) -> None:
    """Entry point of the ``pdf`` plug-in (pyproject's ``jobtui.handlers``).

    ``pdf.transcribe`` is what a folder's PDFs get when no job type is named;
    ``pdf.markdown`` and ``pdf.render`` take them when named explicitly."""
    common: dict[str, Any] = {
        "worker_preload": WORKER_PRELOAD,
        "worker_warm": pdf_open.warm,
    }
    auto = FileTypes(frozenset({".pdf"}), sniff=is_pdf_head)
    named = FileTypes(frozenset({".pdf"}), sniff=is_pdf_head, auto=False)
    ocr = (tesseract_check,)
    registry.handler("pdf.transcribe", params=TranscribeParams, files=auto, checks=ocr, **common)(
        transcribe
    )
    registry.handler("pdf.markdown", params=MarkdownParams, files=named, checks=ocr, **common)(
        markdown
    )
    registry.handler("pdf.render", params=RenderParams, files=named, **common)(render)
    from jobtui.engine.processors import pdf_seed  # the seed's "pdf" job documents

    pdf_seed.register(registry, checks=ocr, **common)
