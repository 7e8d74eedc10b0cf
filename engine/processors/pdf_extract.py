"""PDF work that runs inside the engine's worker processes (never on the event loop).

Every public function here is module-level so the process pool can send it by
reference, imports PyMuPDF lazily (the parent process never needs it), and works on
one page range ``[start, stop)`` (0-based) of one document, so a large document is
split over every core and the parts are assembled by the handler in page order.

Bad input becomes a ``JobFailed`` with a stable code; ``JobFailed`` pickles back to
the handler intact. Worker processes stay warm across tasks, so the last two opened
documents are kept open: the parts of one document that land on the same process
pay the open (~0.09 s for a 2,400-page PDF) once, not once per part.
"""

from __future__ import annotations

import hashlib
import os
import stat
from collections import Counter, OrderedDict
from typing import Any

from jobtui.engine.errors import JobFailed

HEADER_WINDOW = 1024  # a PDF header may legally sit anywhere in the first KiB
HASH_CHUNK = 1 << 20
MAX_OPEN_DOCS = 2
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


class ErrorCode:
    """The codes of ``jobtui.engine.models.ErrorCode`` this module raises, as plain strings:
    importing ``engine.models`` would pull pydantic (~0.5 s) into every fresh worker."""

    FILE_NOT_FOUND = "FILE_NOT_FOUND"
    FILE_UNREADABLE = "FILE_UNREADABLE"
    PDF_EMPTY = "PDF_EMPTY"
    NOT_A_PDF = "NOT_A_PDF"
    PDF_CORRUPT = "PDF_CORRUPT"
    PDF_ENCRYPTED = "PDF_ENCRYPTED"
    OUTPUT_ERROR = "OUTPUT_ERROR"


# (realpath, inode, size, mtime_ns, password) -> open pymupdf.Document
_DOCS: OrderedDict[tuple[Any, ...], Any] = OrderedDict()


def warm() -> None:
    """Process-pool initializer: pay PyMuPDF's import (~0.4 s) before the first task."""
    _pymupdf()


def _pymupdf() -> Any:
    import pymupdf

    # MuPDF prints repair chatter to stderr for every damaged file; errors reach
    # the job as codes instead.
    pymupdf.TOOLS.mupdf_display_errors(False)
    pymupdf.TOOLS.mupdf_display_warnings(False)
    return pymupdf


def _fail(code: str, message: str, path: str) -> JobFailed:
    return JobFailed(code, message, {"path": path})


def _stat(path: str) -> os.stat_result:
    try:
        st = os.stat(path)
    except (FileNotFoundError, NotADirectoryError):
        raise _fail(ErrorCode.FILE_NOT_FOUND, f"no such file: {path}", path) from None
    except OSError as exc:
        raise _fail(
            ErrorCode.FILE_UNREADABLE, f"cannot read {path}: {exc.strerror}", path
        ) from None
    if stat.S_ISDIR(st.st_mode):
        raise _fail(ErrorCode.FILE_UNREADABLE, f"{path} is a directory, not a file", path)
    if not stat.S_ISREG(st.st_mode):
        raise _fail(ErrorCode.FILE_UNREADABLE, f"{path} is not a regular file", path)
    return st


def _read_head_and_hash(path: str) -> tuple[bytes, str]:
    h = hashlib.sha256()
    head = b""
    try:
        with open(path, "rb") as f:
            while chunk := f.read(HASH_CHUNK):
                if not head:
                    head = chunk[:HEADER_WINDOW]
                h.update(chunk)
    except OSError as exc:
        raise _fail(
            ErrorCode.FILE_UNREADABLE, f"cannot read {path}: {exc.strerror}", path
        ) from None
    return head, h.hexdigest()


def _read_head(path: str) -> bytes:
    try:
        with open(path, "rb") as f:
            return f.read(HEADER_WINDOW)
    except OSError as exc:
        raise _fail(
            ErrorCode.FILE_UNREADABLE, f"cannot read {path}: {exc.strerror}", path
        ) from None


def open_document(path: str, password: str | None, head: bytes | None = None) -> Any:
    """Open ``path`` as a PDF (cached per process) or raise ``JobFailed`` with a code."""
    st = _stat(path)
    key = (os.path.realpath(path), st.st_ino, st.st_size, st.st_mtime_ns, password)
    doc = _DOCS.get(key)
    if doc is not None:
        _DOCS.move_to_end(key)
        return doc
    if st.st_size == 0:
        raise _fail(ErrorCode.PDF_EMPTY, f"{path} is empty (0 bytes)", path)
    pymupdf = _pymupdf()
    if head is None:
        head = _read_head(path)
    has_header = b"%PDF" in head
    try:
        # With a PDF header, insist on the PDF parser whatever the file's extension;
        # without one, let MuPDF sniff, then refuse anything that is not a PDF.
        doc = pymupdf.open(path, filetype="pdf") if has_header else pymupdf.open(path)
    except pymupdf.EmptyFileError:
        raise _fail(ErrorCode.PDF_EMPTY, f"{path} is empty (0 bytes)", path) from None
    except (RuntimeError, ValueError) as exc:  # FileDataError is a RuntimeError
        if not has_header:
            raise _fail(
                ErrorCode.NOT_A_PDF, f"{path} is not a PDF (no %PDF header)", path
            ) from None
        raise _fail(
            ErrorCode.PDF_CORRUPT, f"{path} is damaged and cannot be opened: {exc}", path
        ) from None
    except OSError as exc:
        raise _fail(
            ErrorCode.FILE_UNREADABLE, f"cannot read {path}: {exc.strerror}", path
        ) from None
    if not doc.is_pdf:
        # A PNG named .pdf opens silently as a one-page image document.
        doc.close()
        raise _fail(ErrorCode.NOT_A_PDF, f"{path} is not a PDF (it opens as another format)", path)
    if doc.needs_pass:
        if password is None:
            doc.close()
            raise _fail(
                ErrorCode.PDF_ENCRYPTED,
                f"{path} is encrypted; give its password in the 'password' parameter",
                path,
            )
        if not doc.authenticate(password):
            doc.close()
            raise _fail(
                ErrorCode.PDF_ENCRYPTED,
                f"{path} is encrypted and the password given does not open it",
                path,
            )
    _DOCS[key] = doc
    while len(_DOCS) > MAX_OPEN_DOCS:
        _, old = _DOCS.popitem(last=False)
        old.close()
    return doc


def probe(path: str, password: str | None, sample: int = 0) -> dict[str, Any]:
    """Check the input and hash it: ``{pages, sha256, size, repaired, scans}`` or
    ``JobFailed``. ``scans``: how many of ``sample`` pages spread over the document
    look scanned (images, no text), so the handler can cut OCR work finer."""
    doc, info = _checked(path, password)
    info["scans"] = _sampled_scans(doc, sample)
    return info


def _checked(path: str, password: str | None) -> tuple[Any, dict[str, Any]]:
    """The open document and ``{pages, sha256, size, repaired}``, or ``JobFailed``."""
    st = _stat(path)
    if st.st_size == 0:
        raise _fail(ErrorCode.PDF_EMPTY, f"{path} is empty (0 bytes)", path)
    head, sha = _read_head_and_hash(path)
    doc = open_document(path, password, head)
    info = {"pages": doc.page_count, "sha256": sha, "size": st.st_size, "repaired": False}
    if doc.is_repaired:
        # MuPDF silently rebuilds a damaged file (a truncated one often opens with
        # blank pages). Accept what it recovers, unless it recovered nothing at all.
        if not _any_content(doc):
            raise _fail(
                ErrorCode.PDF_CORRUPT,
                f"{path} is damaged; repairing it recovered no pages or content",
                path,
            )
        info["repaired"] = True
    return doc, info


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
    doc, info = _checked(path, password)
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
    from jobtui.engine.processors import pdf_output as po  # imports this module

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


def _any_content(doc: Any) -> bool:
    for page in doc:
        try:
            if page.get_text().strip() or page.get_images(full=False) or page.get_drawings():
                return True
        except Exception:  # noqa: BLE001, S112 - an unreadable page is no content
            continue
    return False


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
    pymupdf = _pymupdf()
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
    from jobtui.engine.processors.pdf_output import write_in_dir  # imports this module

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
                write_in_dir(out_dir, name, pix.tobytes("png"))
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
