"""How a PDF job's document is cut into page ranges (parts) for the process pool.

A part is the unit of progress and of balancing the cores: ``split_pages`` cuts a
text document into a whole number of parts per core, ``ocr_ranges`` and
``ocr_part_size`` cut finer around the pages that need OCR (0.3-6 s a page), and
``part_ranges`` picks between them for a job from what its probe found.
"""

from __future__ import annotations

import math
from typing import Any

from jobtui.engine.context import JobContext
from jobtui.engine.processors.pages import cores as _cores
from jobtui.engine.processors.pdf_params import OcrParams

MIN_PAGES_PER_PART = 16  # below this, another part costs more (IPC, open) than it saves
# OCR costs 0.3-6 s a page, a part's round trip to a worker process ~1 ms: parts of
# about one OCR page balance the cores like a page-by-page pool (the last part ends
# within a page of the others; parts of 2-4 pages left one core idle for up to 15 s
# at the end of a scanned folder) and keep progress moving.
OCR_PAGES_PER_PART = 1
PROBE_SAMPLE = 8  # pages sampled to guess whether a document is scanned
# The last round of parts is cut into this many pieces per part: the cores then end
# within a quarter part of each other (on 2 cores, 200-page parts ended 30-120 ms apart).
TAIL_CUTS = 4


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


def expects_ocr(p: OcrParams, info: dict[str, Any]) -> bool:
    """Whether the job will OCR pages: forced to, or the probe's sample found scans."""
    return bool(p.ocr and (p.force_ocr or info.get("scans")))


def part_size(ctx: JobContext, p: OcrParams, info: dict[str, Any]) -> int:
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


def part_ranges(ctx: JobContext, p: OcrParams, info: dict[str, Any]) -> list[tuple[int, int]]:
    """The parts of a document not extracted in the probe's call: around the pages it
    found needing OCR (a short document), else by the sampled part size."""
    n = info["pages"]
    if "ocr_pages" in info:
        ocr = info["ocr_pages"]
        ctx.log(f"OCR expected on {len(ocr)} of {n} pages; one OCR page a part")
        return ocr_ranges(n, ocr)
    return split_pages(
        n,
        part_size(ctx, p, info),
        _cores(ctx),
        min_part=1 if expects_ocr(p, info) else MIN_PAGES_PER_PART,
    )
