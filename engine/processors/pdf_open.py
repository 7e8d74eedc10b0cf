"""Opening a PDF in a worker process: check it, hash it, and keep it open.

Runs inside the engine's worker processes (never on the event loop), like
``pdf_extract``, which reads the pages of what this opens. PyMuPDF is imported lazily
(the parent process never needs it), and nothing here imports pydantic or the
engine's models.

Bad input becomes a ``JobFailed`` with a stable code; ``JobFailed`` pickles back to
the handler intact. Worker processes stay warm across tasks, so the last two opened
documents are kept open: the parts of one document that land on the same process
pay the open (~0.09 s for a 2,400-page PDF) once, not once per part.
"""

from __future__ import annotations

import hashlib
import os
import stat
from collections import OrderedDict
from typing import Any

from jobtui.engine.errors import ErrorCode, JobFailed

HEADER_WINDOW = 1024  # a PDF header may legally sit anywhere in the first KiB
HASH_CHUNK = 1 << 20
MAX_OPEN_DOCS = 2


# (realpath, inode, size, mtime_ns, password) -> open pymupdf.Document
_DOCS: OrderedDict[tuple[Any, ...], Any] = OrderedDict()


def warm() -> None:
    """Process-pool initializer: pay PyMuPDF's import (~0.4 s) before the first task."""
    import_pymupdf()


def import_pymupdf() -> Any:
    """PyMuPDF, imported on first use (the parent process never needs it)."""
    import pymupdf

    # MuPDF prints repair chatter to stderr for every damaged file; errors reach
    # the job as codes instead.
    pymupdf.TOOLS.mupdf_display_errors(False)
    pymupdf.TOOLS.mupdf_display_warnings(False)
    return pymupdf


def _fail(code: str, message: str, path: str) -> JobFailed:
    return JobFailed(code, message, {"path": path})


def stat_file(path: str) -> os.stat_result:
    """``os.stat`` of a regular file, or ``JobFailed`` (``FILE_NOT_FOUND``,
    ``FILE_UNREADABLE``)."""
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
    st = stat_file(path)
    key = (os.path.realpath(path), st.st_ino, st.st_size, st.st_mtime_ns, password)
    doc = _DOCS.get(key)
    if doc is not None:
        _DOCS.move_to_end(key)
        return doc
    if st.st_size == 0:
        raise _fail(ErrorCode.PDF_EMPTY, f"{path} is empty (0 bytes)", path)
    pymupdf = import_pymupdf()
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


def open_checked(path: str, password: str | None) -> tuple[Any, dict[str, Any]]:
    """The open document and ``{pages, sha256, size, repaired}``, or ``JobFailed``."""
    st = stat_file(path)
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


def _any_content(doc: Any) -> bool:
    for page in doc:
        try:
            if page.get_text().strip() or page.get_images(full=False) or page.get_drawings():
                return True
        except Exception:  # noqa: BLE001, S112 - an unreadable page is no content
            continue
    return False
