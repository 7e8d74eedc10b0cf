"""PDF work that runs inside the engine's worker processes (never on the event loop).

Every public function here is module-level so the process pool can send it by
reference, imports PyMuPDF lazily (the parent process never needs it), and works on
one page range ``[start, stop)`` (0-based) of one document, so a large document is
split over every core and the parts are assembled by the handler in page order.

Documents are opened through ``pdf_open``: bad input becomes a ``JobFailed`` with a
stable code there, and each worker process keeps its last documents open between
parts. A page that cannot be read becomes a record with ``error``; the rest go on.
"""

from __future__ import annotations

import os
from collections import Counter
from typing import Any

from jobtui.engine.errors import ErrorCode, JobFailed
from jobtui.engine.processors import pdf_output as po
from jobtui.engine.processors.pdf_open import (
    import_pymupdf,
    open_checked,
    open_document,
)

# Pixels of one page image: above these, the page is rendered (or OCRed) at a lower
# dpi that fits, and the record says so. A 691-byte PDF with a 100-inch page took OCR
# at 300 dpi to 10.5 GB and a segfault.
MAX_PIXELS = 120_000_000  # a rendered page (~360 MB RGB)
MAX_OCR_PIXELS = 50_000_000  # an OCRed page (Tesseract needs several times the image)


def fit_dpi(page: Any, dpi: int, max_pixels: int) -> int:
    """``dpi``, or the highest lower one at which the page stays within ``max_pixels``."""
    w, h = page.rect.width / 72, page.rect.height / 72  # inches
    if w <= 0 or h <= 0 or w * h * dpi * dpi <= max_pixels:
        return dpi
    return max(1, int((max_pixels / (w * h)) ** 0.5))


def probe(path: str, password: str | None, sample: int = 0) -> dict[str, Any]:
    """Check the input and hash it: ``{pages, sha256, size, repaired, scans}`` or
    ``JobFailed``. ``scans``: how many of ``sample`` pages spread over the document
    look scanned (images, no text), so the handler can cut OCR work finer."""
    doc, info = open_checked(path, password)
    info["scans"] = _sampled_scans(doc, sample)
    return info


def probe_and_extract(
    path: str,
    password: str | None,
    sample: int,
    opts: dict[str, Any],
    max_pages: int,
    output: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """``probe``, and for a document of at most ``max_pages`` pages that needs no OCR
    its text too, in one round trip to the worker process (the document stays open in
    between). ``summary`` (``summarize``) is set when the text was extracted;
    otherwise the handler splits the work into parts.

    A short document is not sampled: its text is extracted (without OCR), and the
    pages that need OCR are those the extraction finds (``ocr_pages``, 1-based; with
    ``force_ocr``, every page, known without extracting). Only when there are none
    are the records kept: the common text document costs one pass over its pages. A
    longer one is sampled (``scans``, as ``probe``) and split.

    With ``output`` (``out_dir``, ``base``, ``title``, ``source``, ``languages``) the
    transcript is written here as well (``written``: its paths), and its text never
    crosses back to the handler's process; without, ``records`` hold the pages."""
    doc, info = open_checked(path, password)
    n = info["pages"]
    if n > max_pages:
        info["scans"] = _sampled_scans(doc, sample)
        return info
    if n and opts.get("ocr") and opts.get("force_ocr"):
        info["ocr_pages"] = list(range(1, n + 1))
        return info
    records, deferred = _extract(doc, 0, n, opts, defer_ocr=True)
    if deferred:
        # OCR takes 0.3-6 s a page: the handler spreads those pages over parts, which
        # extract the text pages again (~1 ms each).
        info["ocr_pages"] = deferred
        return info
    if output is not None:
        sha = info["sha256"]
        whole = po.transcript_doc(output.get("source", path), sha, n, output["languages"], records)
        stem = f"{output['base']}-{sha[:12]}"
        info["written"] = po.write_transcript(output["out_dir"], stem, output["title"], whole)
    else:
        info["records"] = records
    info["summary"] = po.summarize(records)
    return info


def _sampled_scans(doc: Any, sample: int) -> int:
    n = doc.page_count
    if sample <= 0 or n == 0:
        return 0
    picks = sorted({i * n // min(sample, n) for i in range(min(sample, n))})
    found = 0
    for i in picks:
        try:
            # Images but no fonts: reading the resources is ~10x cheaper than
            # extracting the text, and a miss only makes the parts coarser.
            page = doc.load_page(i)
            if not page.get_fonts() and _has_images(page):
                found += 1
        except Exception:  # noqa: BLE001, S112 - the part that reads it will report it
            continue
    return found


def _has_images(page: Any) -> bool:
    try:
        return bool(page.get_images(full=False))
    except Exception:  # noqa: BLE001 - damaged resources: treat as "maybe a scan"
        return True


def _ocr_textpage(page: Any, opts: dict[str, Any], rec: dict[str, Any]) -> Any:
    dpi = fit_dpi(page, opts["dpi"], MAX_OCR_PIXELS)
    if dpi < opts["dpi"]:
        rec["dpi_lowered"] = [opts["dpi"], dpi]
    return page.get_textpage_ocr(language=opts["languages"], dpi=dpi, full=True)


def _needs_ocr(text: str, page: Any, opts: dict[str, Any]) -> bool:
    if not opts.get("ocr", True):
        return False
    if opts.get("force_ocr"):
        return True
    return not text.strip() and _has_images(page)


def extract_range(path: str, start: int, stop: int, opts: dict[str, Any]) -> list[dict[str, Any]]:
    """Text of pages ``[start, stop)``: one record per page, OCR where there is no text.

    A page that cannot be read becomes a record with ``error`` (the rest go on);
    options: ``password``, ``ocr``, ``force_ocr``, ``languages``, ``dpi``.
    """
    return _extract(open_document(path, opts.get("password")), start, stop, opts)[0]


def transcribe_range(path: str, start: int, stop: int, opts: dict[str, Any]) -> dict[str, Any]:
    """``extract_range``, with the range's share of the transcript encoded here, in
    parallel with the other ranges (encoding 2,400 pages as JSON and Markdown takes
    ~70 ms of one core; after the last part it held up the end of the job).
    ``{summary, markdown, json}``: the pages' ``summarize`` (not their records), the
    shares as UTF-8 (bytes cross back to the handler's process as they are, text
    would be encoded to be sent and again to be written)."""
    records = extract_range(path, start, stop, opts)
    return {
        "summary": po.summarize(records),
        "markdown": po.markdown_pages(records),
        "json": po.json_pages(records),
    }


def _extract(
    doc: Any, start: int, stop: int, opts: dict[str, Any], defer_ocr: bool = False
) -> tuple[list[dict[str, Any]], list[int]]:
    """``extract_range``'s records, and with ``defer_ocr`` the pages that need OCR,
    which are then not OCRed (their records lack the text)."""
    out: list[dict[str, Any]] = []
    deferred: list[int] = []
    for i in range(start, stop):
        rec: dict[str, Any] = {"page": i + 1, "text": "", "chars": 0, "ocr": False}
        try:
            page = doc.load_page(i)
            text = page.get_text()
            if _needs_ocr(text, page, opts):
                if defer_ocr:
                    deferred.append(i + 1)
                else:
                    try:
                        text = page.get_text(textpage=_ocr_textpage(page, opts, rec))
                        rec["ocr"] = True
                    except Exception as exc:  # noqa: BLE001 - recorded on the page
                        rec["error"] = f"OCR failed: {exc}"
            elif not text.strip() and _has_images(page):
                rec["no_text_layer"] = True
            rec["text"] = text
            rec["chars"] = len(text)
        except Exception as exc:  # noqa: BLE001 - one bad page must not lose the document
            rec["error"] = f"{type(exc).__name__}: {exc}"
        out.append(rec)
    return out, deferred


def markdown_range(path: str, start: int, stop: int, opts: dict[str, Any]) -> list[dict[str, Any]]:
    """Text blocks of pages ``[start, stop)`` with their dominant font size and boldness.

    Per page: ``{page, blocks: [[size, bold, [line, ...]], ...], ocr, error?}``. The
    handler decides headings over the whole document (body size = most common).
    """
    pymupdf = import_pymupdf()
    doc = open_document(path, opts.get("password"))
    flags = pymupdf.TEXTFLAGS_TEXT
    out: list[dict[str, Any]] = []
    for i in range(start, stop):
        rec: dict[str, Any] = {"page": i + 1, "blocks": [], "ocr": False}
        try:
            page = doc.load_page(i)
            data = page.get_text("dict", flags=flags)
            if _needs_ocr(_dict_text(data), page, opts):
                try:
                    tp = _ocr_textpage(page, opts, rec)
                    data = page.get_text("dict", flags=flags, textpage=tp)
                    rec["ocr"] = True
                except Exception as exc:  # noqa: BLE001
                    rec["error"] = f"OCR failed: {exc}"
            rec["blocks"] = _blocks(data)
        except Exception as exc:  # noqa: BLE001
            rec["error"] = f"{type(exc).__name__}: {exc}"
        out.append(rec)
    return out


def _dict_text(data: dict[str, Any]) -> str:
    return "".join(
        s["text"]
        for b in data.get("blocks", [])
        if b.get("type") == 0
        for ln in b["lines"]
        for s in ln["spans"]
    )


def _blocks(data: dict[str, Any]) -> list[list[Any]]:
    blocks: list[list[Any]] = []
    for b in data.get("blocks", []):
        if b.get("type") != 0:
            continue
        sizes: Counter[float] = Counter()
        bold = total = 0
        lines: list[str] = []
        for ln in b["lines"]:
            text = "".join(s["text"] for s in ln["spans"]).strip()
            if text:
                lines.append(text)
            for s in ln["spans"]:
                n = len(s["text"].strip())
                sizes[round(s["size"] * 2) / 2] += n  # half-point buckets absorb jitter
                total += n
                if s["flags"] & 16:  # bold
                    bold += n
        if lines and total:
            blocks.append([sizes.most_common(1)[0][0], bold >= 0.8 * total, lines])
    return blocks


def render_range(path: str, start: int, stop: int, opts: dict[str, Any]) -> list[dict[str, Any]]:
    """Render pages ``[start, stop)`` to ``<out_dir>/page-NNNN.png`` (each written atomically)."""
    doc = open_document(path, opts.get("password"))
    out_dir = opts["out_dir"]
    dpi = opts["dpi"]
    done: list[dict[str, Any]] = []
    for i in range(start, stop):
        rec: dict[str, Any] = {"page": i + 1}
        try:
            page = doc.load_page(i)
            page_dpi = fit_dpi(page, dpi, MAX_PIXELS)
            if page_dpi < dpi:
                rec["dpi_lowered"] = [dpi, page_dpi]
            pix = page.get_pixmap(dpi=page_dpi, alpha=False)
            name = f"page-{i + 1:04d}.png"
            try:
                # Bytes, written by us: no library opens a path a planted symlink
                # could redirect (see pdf_output.write_in_dir).
                po.write_in_dir(out_dir, name, pix.tobytes("png"))
            except Exception as exc:  # noqa: BLE001 - OSError, or MuPDF's RuntimeError
                raise JobFailed(
                    ErrorCode.OUTPUT_ERROR, f"cannot write {os.path.join(out_dir, name)}: {exc}"
                ) from None
            rec["file"] = name
            rec["width"], rec["height"] = pix.width, pix.height
        except JobFailed:
            raise
        except Exception as exc:  # noqa: BLE001
            rec["error"] = f"{type(exc).__name__}: {exc}"
        done.append(rec)
    return done
