"""``image.ocr``: the text of scanned images (PNG, JPEG, TIFF with every page, WebP)
through Tesseract, with the same outputs as ``pdf.transcribe``.

The image is checked in a worker process first (``NOT_AN_IMAGE``, ``IMAGE_CORRUPT``,
``IMAGE_TOO_LARGE`` above ``max_pixels``: failed at once, never retried); then every
page is read on the engine's process pool, one task per page, so a multi-page TIFF
uses every core and progress moves page by page. The transcript is written as
``<stem>-<sha12>.md`` and ``.json`` (one record per page) by ``pdf_output``, like a
PDF's. OCR runs in PyMuPDF (MuPDF's Tesseract) rather than pytesseract: the same CPU
time per page measured here, no extra dependency, no subprocess or temporary file
per page, and the same language data and doctor check as the PDF types.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from jobtui.engine.context import JobContext
from jobtui.engine.errors import JobFailed
from jobtui.engine.inputs import InputPath
from jobtui.engine.processors import image_extract as ix
from jobtui.engine.processors import pdf_open
from jobtui.engine.processors import pdf_output as po
from jobtui.engine.processors.ocr import DEFAULT_LANGUAGES, LANGUAGES_PATTERN, tesseract_check
from jobtui.engine.processors.pages import (
    log_page_errors,
    named_errors,
    note_changed,
    output_stem,
    page_list,
    run_parts,
)
from jobtui.engine.registry import FileTypes, Registry

EXTENSIONS = frozenset({".png", ".jpg", ".jpeg", ".tif", ".tiff", ".webp"})
DEFAULT_MAX_PIXELS = 100_000_000  # 100 MP: an A0 scan at 300 dpi is ~140 MP, A3 ~17 MP


class ImageOcrParams(BaseModel):
    """Parameters of ``image.ocr``. Unknown keys are refused (typos show)."""

    model_config = ConfigDict(extra="forbid", defer_build=True)

    path: InputPath  # any file name, UTF-8 or not
    sha256: str | None = Field(None, pattern=r"^[0-9a-f]{64}$")  # set by enqueue
    languages: str = Field(DEFAULT_LANGUAGES, pattern=LANGUAGES_PATTERN)
    #: pages above this many pixels are refused (IMAGE_TOO_LARGE) before decoding
    max_pixels: int = Field(DEFAULT_MAX_PIXELS, ge=1, le=2_000_000_000)


async def ocr(ctx: JobContext, p: ImageOcrParams) -> dict[str, Any]:
    """Text of every page of a scanned image (PNG, JPEG, TIFF, WebP) by OCR."""
    t0 = time.monotonic()
    src = ctx.open_input(p.path)  # checked as opened; pinned until the attempt ends
    with named_errors(src):  # workers read src.read_path; errors say the input's name
        return await _ocr(ctx, p, str(src.path), src.read_path, t0)


async def _ocr(
    ctx: JobContext, p: ImageOcrParams, path: str, read: str, t0: float
) -> dict[str, Any]:
    info = await ctx.run_cpu(ix.probe, read, p.max_pixels)
    sha, n = info["sha256"], info["pages"]
    note_changed(ctx, path, p.sha256, sha)
    w, h = info["sizes"][0]
    ctx.log(
        f"{path}: {info['format'].upper()}, {n} page{'s' if n != 1 else ''} "
        f"({w} x {h} pixels{' first' if n > 1 else ''}), {info['size']} bytes, "
        f"sha256 {sha[:12]}"
    )
    await ctx.progress(0.0, "ocr", f"0/{n} pages", done=0, total=n, unit="pages")
    opts = {"languages": p.languages}
    records = await run_parts(ctx, ix.ocr_range, read, [(i, i + 1) for i in range(n)], opts, "ocr")
    if all(r.get("corrupt") for r in records):
        raise JobFailed(
            ix.ErrorCode.IMAGE_CORRUPT,
            f"{path} cannot be decoded: {records[0].get('error', '')}",
            {"path": path},
        )
    failed = log_page_errors(ctx, records)
    out_dir = Path(ctx.output_dir).absolute()
    doc = po.transcript_doc(path, sha, n, p.languages, records)
    md_path, json_path = await ctx.run_cpu(
        po.write_transcript, str(out_dir), output_stem(path, sha), Path(path).name, doc
    )
    chars = sum(r["chars"] for r in records)
    ocr_pages = [r["page"] for r in records if r["ocr"]]
    ctx.log(
        f"OCR ({p.languages}) of {len(ocr_pages)} pages ({page_list(ocr_pages)}), "
        f"{chars} characters -> {md_path}"
    )
    return {
        "pages": n,
        "chars": chars,
        "ocr_pages": len(ocr_pages),
        "failed_pages": len(failed),
        "format": info["format"],
        "markdown_path": str(md_path),
        "json_path": str(json_path),
        "sha256": sha,
        "duration_s": round(time.monotonic() - t0, 3),
    }


def register(registry: Registry) -> None:
    """Entry point of the ``image`` plug-in (pyproject's ``jobtui.handlers``)."""
    registry.handler(
        "image.ocr",
        params=ImageOcrParams,
        files=FileTypes(EXTENSIONS, sniff=ix.is_image_head),
        worker_preload=(
            "jobtui.engine.processors.image_extract",
            "jobtui.engine.processors.pdf_output",
            "pymupdf",  # not PIL: only WebP needs it, imported on the first one
        ),
        worker_warm=pdf_open.warm,
        checks=(tesseract_check,),
    )(ocr)
