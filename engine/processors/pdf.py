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
"""

from __future__ import annotations

import asyncio
import math
import time
from pathlib import Path
from typing import Any, cast

from pydantic import BaseModel, ConfigDict, Field, model_validator

from jobtui.engine.context import JobContext
from jobtui.engine.errors import JobFailed
from jobtui.engine.inputs import InputPath
from jobtui.engine.models import ErrorCode
from jobtui.engine.outputs import output_base
from jobtui.engine.processors import pdf_extract as px
from jobtui.engine.processors import pdf_output as po
from jobtui.engine.processors.ocr import DEFAULT_LANGUAGES, LANGUAGES_PATTERN, tesseract_check
from jobtui.engine.processors.pages import cores as _cores
from jobtui.engine.processors.pages import log_page_errors as _log_page_errors
from jobtui.engine.processors.pages import named_errors, note_changed, run_part_results
from jobtui.engine.processors.pages import output_stem as output_stem
from jobtui.engine.processors.pages import page_list as _page_list
from jobtui.engine.processors.pages import run_parts as _run_parts
from jobtui.engine.processors.pdf_markdown import structure_markdown
from jobtui.engine.registry import FileTypes, Registry

MIN_PAGES_PER_PART = 16  # below this, another part costs more (IPC, open) than it saves
# Text documents up to this many pages are checked and extracted in one call to a
# worker process (~40 ms of work): splitting them would cost more round trips than
# it saves, and in a folder of documents every core is busy anyway.
SINGLE_CALL_MAX_PAGES = 64
# OCR costs 0.3-6 s a page, a part's round trip to a worker process ~1 ms: parts of
# about one OCR page balance the cores like a page-by-page pool (the last part ends
# within a page of the others; parts of 2-4 pages left one core idle for up to 15 s
# at the end of a scanned folder) and keep progress moving.
OCR_PAGES_PER_PART = 1
PROBE_SAMPLE = 8  # pages sampled to guess whether a document is scanned
# The last round of parts is cut into this many pieces per part: the cores then end
# within a quarter part of each other (on 2 cores, 200-page parts ended 30-120 ms apart).
TAIL_CUTS = 4


class PdfParams(BaseModel):
    """Parameters every PDF job type shares. Unknown keys are refused (typos show)."""

    # Built on first use, not at start (every registered type's parameters model is
    # imported with its handler; a run uses one or two of them).
    model_config = ConfigDict(extra="forbid", defer_build=True)

    path: InputPath  # any file name, UTF-8 or not
    # for encrypted PDFs; never echoed in results or logs, redacted wherever shown
    password: str | None = Field(None, json_schema_extra={"secret": True})
    sha256: str | None = Field(None, pattern=r"^[0-9a-f]{64}$")  # set by enqueue
    pages_per_part: int = Field(200, ge=1, le=1_000_000)


class _OcrParams(PdfParams):
    languages: str = Field(DEFAULT_LANGUAGES, pattern=LANGUAGES_PATTERN)
    ocr: bool = True  # OCR pages that have no text layer but have images
    force_ocr: bool = False  # OCR every page, even those with a text layer
    dpi: int = Field(300, ge=72, le=600)  # OCR resolution


class TranscribeParams(_OcrParams):
    pass


class MarkdownParams(_OcrParams):
    pass


class RenderParams(PdfParams):
    dpi: int = Field(150, ge=10, le=1200)
    first_page: int | None = Field(None, ge=1)  # 1-based, inclusive
    last_page: int | None = Field(None, ge=1)  # 1-based, inclusive

    @model_validator(mode="after")
    def _ordered(self) -> RenderParams:
        if self.first_page and self.last_page and self.first_page > self.last_page:
            raise ValueError("first_page is after last_page")
        return self


# -- shared steps --------------------------------------------------------------------


def split_pages(
    pages: int, pages_per_part: int, cores: int, min_part: int = MIN_PAGES_PER_PART
) -> list[tuple[int, int]]:
    """``[start, stop)`` ranges: at most ``pages_per_part`` pages each, and at least
    one part per core when the document has ``min_part`` pages per core.

    More than one part: a whole number of parts per core where the pages allow, sizes
    differing by at most one page. Five equal parts on two cores (or 8+8+4 OCR pages)
    leave one core idle for the last of them, which nothing else fills when the
    document is alone or the last of a folder. More than one round of parts: the last
    round is cut into quarters (no part under ``min_part``), so the cores end together
    even when one runs slower (another process on it): the last parts to finish are
    small. Parts run in order, so the small ones run last."""
    if pages <= 0:
        return []
    floor = max(min_part, 1)
    n = max(math.ceil(pages / pages_per_part), min(cores, pages // floor), 1)
    if n > 1 and cores > 1:
        n = max(n, min(math.ceil(n / cores) * cores, pages // floor))
    parts = _even(0, pages, n)
    if n > cores > 1:
        parts[-cores:] = [
            cut for a, b in parts[-cores:] for cut in _even(a, b, min(TAIL_CUTS, (b - a) // floor))
        ]
    return parts


def _even(start: int, stop: int, n: int) -> list[tuple[int, int]]:
    """``[start, stop)`` in ``n`` (at least one) ranges differing by at most one page."""
    n = max(n, 1)
    size, extra = divmod(stop - start, n)
    bounds = [start + i * size + min(i, extra) for i in range(n + 1)]
    return list(zip(bounds, bounds[1:], strict=False))


async def _probe_read(
    ctx: JobContext,
    p: PdfParams,
    path: str,
    read: str,
    sample: int,
    extract: dict[str, Any] | None,
    write_to: Path | None,
) -> dict[str, Any]:
    """``_probe``'s work in a worker process, reading ``read`` (the pinned file)."""
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


async def _probe(
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


def ocr_part_size(pages: int, scans: int, force_ocr: bool = False) -> int:
    """Pages per part for a document with ``scans`` scans among the probe's sample of
    ``min(PROBE_SAMPLE, pages)``: about ``OCR_PAGES_PER_PART`` OCR pages a part (a
    scanned document: one page; one scan in 8 sampled: 8 pages, the text pages
    between its scans costing ~1 ms each). 0: no OCR expected."""
    sampled = min(PROBE_SAMPLE, pages)
    if force_ocr:
        return OCR_PAGES_PER_PART
    if scans <= 0 or sampled <= 0:
        return 0
    return max(1, OCR_PAGES_PER_PART * sampled // scans)


def ocr_ranges(
    pages: int, ocr: list[int], per_part: int = OCR_PAGES_PER_PART
) -> list[tuple[int, int]]:
    """``[start, stop)`` ranges of a document whose pages needing OCR are known (``ocr``,
    1-based, ascending): ``per_part`` of them a part, each part starting at its first
    OCR page (the text pages before the first go with it, those after the last with
    the last), so the cores balance OCR pages as a page-by-page pool would."""
    if pages <= 0:
        return []
    starts = [0, *(ocr[i] - 1 for i in range(per_part, len(ocr), per_part))]
    return list(zip(starts, [*starts[1:], pages], strict=True))


def _expects_ocr(p: _OcrParams, info: dict[str, Any]) -> bool:
    return bool(p.ocr and (p.force_ocr or info.get("scans")))


def _ocr_part_size(ctx: JobContext, p: _OcrParams, info: dict[str, Any]) -> int:
    """``pages_per_part``, made small for documents that will be OCRed (unless the
    job set it): a part is the unit of progress and of balancing the cores, and 200
    OCR pages take minutes."""
    if "pages_per_part" in p.model_fields_set or not p.ocr:
        return p.pages_per_part
    scans = info.get("scans", 0)
    size = min(p.pages_per_part, ocr_part_size(info["pages"], scans, p.force_ocr))
    if size:
        ctx.log(
            f"OCR expected ({scans} of {min(PROBE_SAMPLE, info['pages'])} sampled pages "
            f"are scans); {size} page{'' if size == 1 else 's'} a part"
        )
        return size
    return p.pages_per_part


def _ranges(ctx: JobContext, p: _OcrParams, info: dict[str, Any]) -> list[tuple[int, int]]:
    """The parts of a document not extracted in the probe's call: around the pages it
    found needing OCR (a short document), else by the sampled part size."""
    n = info["pages"]
    if "ocr_pages" in info:
        ocr = info["ocr_pages"]
        ctx.log(f"OCR expected on {len(ocr)} of {n} pages; one OCR page a part")
        return ocr_ranges(n, ocr)
    return split_pages(
        n,
        _ocr_part_size(ctx, p, info),
        _cores(ctx),
        min_part=1 if _expects_ocr(p, info) else MIN_PAGES_PER_PART,
    )


def _ocr_opts(p: _OcrParams) -> dict[str, Any]:
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
    path, info = await _probe(
        ctx, p, PROBE_SAMPLE if p.ocr else 0, extract=_ocr_opts(p), write_to=out_dir
    )
    sha, n = info["sha256"], info["pages"]
    summary = info.pop("summary", None)
    written = info.pop("written", None)
    ranges: list[tuple[int, int]] = [(0, n)] if n else []
    parts: list[dict[str, Any]] = []
    if summary is None:
        ranges = _ranges(ctx, p, info)
        await ctx.progress(0.0, "transcribe", f"0/{n} pages", done=0, total=n, unit="pages")
        parts = await run_part_results(
            ctx, po.transcribe_range, info["read_path"], ranges, _ocr_opts(p), "transcribe"
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
    path, info = await _probe(ctx, p, PROBE_SAMPLE if p.ocr else 0)
    sha, n = info["sha256"], info["pages"]
    ranges = split_pages(
        n,
        _ocr_part_size(ctx, p, info),
        _cores(ctx),
        min_part=1 if _expects_ocr(p, info) else MIN_PAGES_PER_PART,
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
    path, info = await _probe(ctx, p)
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
        "worker_warm": px.warm,
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
