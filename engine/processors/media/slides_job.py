"""``video.slides``: the slides shown in a video, as images and as text with timestamps.

The video is split into time ranges of ``part_seconds`` run across the pool
(``slides.key_frames``: ~1 sample a second, thumbnail differences, OCR of each new
slide); the ranges are joined in order, dropping a range's first slide when it is the
picture the previous range ended on. Outputs under ``ctx.output_dir``: the folder
``<stem>-<sha12>.slides/`` of PNG images, and ``<stem>-<sha12>.slides.md`` / ``.json``.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import math
import os
import time
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from jobtui.engine.context import JobContext
from jobtui.engine.processors import pdf_output as po
from jobtui.engine.processors.media import decode, slides
from jobtui.engine.processors.media.decode import ErrorCode
from jobtui.engine.processors.media.output import clock
from jobtui.engine.processors.media.parts import run_parts
from jobtui.engine.processors.ocr import DEFAULT_LANGUAGES, LANGUAGES_PATTERN
from jobtui.engine.processors.pages import named_errors, output_stem


class SlidesParams(BaseModel):
    model_config = ConfigDict(extra="forbid", defer_build=True)

    path: str = Field(min_length=1)
    sha256: str | None = Field(None, pattern=r"^[0-9a-f]{64}$")  # set by enqueue
    interval: float = Field(1.0, ge=0.2, le=60.0)  # seconds between compared frames
    # share of thumbnail pixels that must change for a new slide (0.005: 0.5 %)
    threshold: float = Field(slides.DEFAULT_THRESHOLD, gt=0, le=1)
    languages: str = Field(DEFAULT_LANGUAGES, pattern=LANGUAGES_PATTERN)
    ocr: bool = True
    part_seconds: float = Field(600.0, ge=30.0, le=86_400.0)


def _markdown(title: str, found: list[dict[str, Any]], folder: str) -> str:
    lines = [f"# {title}", "", f"{len(found)} slides.", ""]
    for i, s in enumerate(found, 1):
        rel = f"{folder}/{os.path.basename(s['image'])}"
        lines += [f"## Slide {i} — {clock(s['time'])[:8]}", "", f"![slide {i}]({rel})", ""]
        lines += [s["text"] or "_(no text found)_", ""]
    return "\n".join(lines)


def _join(parts: list[list[dict[str, Any]]], threshold: float) -> list[dict[str, Any]]:
    """Ranges in order; a range's first slide that repeats the last one is dropped."""
    out: list[dict[str, Any]] = []
    for found in parts:
        for i, s in enumerate(found):
            if (
                i == 0
                and out
                and slides.difference_lists(s["thumb"], out[-1]["thumb"]) <= threshold
            ):
                with contextlib.suppress(OSError):
                    os.unlink(s["image"])
                continue
            out.append(s)
    return out


async def slides_handler(ctx: JobContext, p: SlidesParams) -> dict[str, Any]:
    """Key frames of a video (slides), as PNG images plus their OCR text with timestamps."""
    src = ctx.open_input(p.path)  # checked as opened; pinned until the attempt ends
    with named_errors(src):
        return await _slides(ctx, p, str(src.path), src.read_path)


async def _slides(ctx: JobContext, p: SlidesParams, path: str, read: str) -> dict[str, Any]:
    """``path``: the input's name (messages, outputs); ``read``: what workers open."""
    t0 = time.monotonic()
    info = await ctx.run_cpu(decode.probe, read)
    if not info["video"]:
        raise decode.fail(ErrorCode.NO_VIDEO_TRACK, f"{path} has no video track", path)
    duration = float(info.get("duration") or 0.0)
    base = output_stem(path, info["sha256"])
    out_dir = Path(ctx.output_dir).absolute()
    folder = out_dir / f"{base}.slides"
    n = max(1, math.ceil(duration / p.part_seconds)) if duration else 1
    bounds = [(i * p.part_seconds, (i + 1) * p.part_seconds) for i in range(n)]
    bounds[-1] = (bounds[-1][0], math.inf)  # the last range runs to the end, whatever it is
    opts = {
        "out_dir": str(folder),
        "base": "slide",
        "interval": p.interval,
        "threshold": p.threshold,
        "languages": p.languages,
        "ocr": p.ocr,
    }
    ctx.log(f"{path}: {duration:.1f} s of video, {info.get('width')}x{info.get('height')}")
    found = await run_parts(
        ctx,
        [(slides.key_frames, (read, a, b, opts)) for a, b in bounds],
        [min(b, duration) - a if duration else 1.0 for a, b in bounds],
        "slides",
    )
    kept = _join(found, p.threshold)
    records = [{"time": s["time"], "image": s["image"], "text": s["text"]} for s in kept]
    doc = {"source": path, "sha256": info["sha256"], "duration": duration, "slides": records}
    md_path, json_path = str(out_dir / f"{base}.slides.md"), str(out_dir / f"{base}.slides.json")
    await asyncio.to_thread(
        po.write_files,
        str(out_dir),
        {
            md_path: lambda: _markdown(Path(path).name, records, folder.name),
            json_path: lambda: json.dumps(doc, ensure_ascii=False, indent=1) + "\n",
        },
    )
    ctx.log(f"{len(records)} slides -> {folder}")
    return {
        "slides": len(records),
        "duration_s": duration,
        "images_dir": str(folder),
        "markdown_path": md_path,
        "json_path": json_path,
        "sha256": info["sha256"],
        "elapsed_s": round(time.monotonic() - t0, 3),
    }
