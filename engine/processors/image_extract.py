"""Image OCR work that runs inside the engine's worker processes.

Like ``pdf_extract``: module-level functions (the pool sends them by reference),
PyMuPDF imported lazily, no pydantic, and bad input raised as ``JobFailed`` with a
stable code. PNG, JPEG and TIFF (every page of a multi-page TIFF) are opened by
MuPDF; WebP, which MuPDF 1.26 cannot decode, by Pillow. Each page is rendered at its
own resolution (no resampling) in RGB (MuPDF's OCR writer found no text at all in a
grey pixmap, measured) and read by Tesseract through PyMuPDF
(``Pixmap.pdfocr_tobytes``), the same engine and language data as the PDF pages.

The pixel limit is checked from the image headers, before anything is decoded, so a
small file that claims 50,000 x 50,000 pixels (a decompression bomb) costs nothing.
"""

from __future__ import annotations

import hashlib
import io
import math
import warnings
from typing import Any

from jobtui.engine.errors import JobFailed
from jobtui.engine.processors.pdf_open import import_pymupdf, stat_file

MAX_FILE_BYTES = 1 << 30  # an image file above 1 GiB is refused before it is read


class ErrorCode:
    """This module's stable codes (plain strings: no pydantic in worker processes)."""

    FILE_UNREADABLE = "FILE_UNREADABLE"
    NOT_AN_IMAGE = "NOT_AN_IMAGE"
    IMAGE_CORRUPT = "IMAGE_CORRUPT"
    IMAGE_TOO_LARGE = "IMAGE_TOO_LARGE"


def image_kind(head: bytes) -> str | None:
    """``png``, ``jpeg``, ``tiff`` or ``webp`` from a file's first bytes, else None."""
    if head.startswith(b"\x89PNG\r\n\x1a\n"):
        return "png"
    if head.startswith(b"\xff\xd8\xff"):
        return "jpeg"
    if head[:4] in (b"II*\x00", b"MM\x00*", b"II+\x00", b"MM\x00+"):  # TIFF, BigTIFF
        return "tiff"
    if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return "webp"
    return None


def is_image_head(head: bytes) -> bool:
    """The file sniffer of ``image.ocr``: a scan saved without its extension."""
    return image_kind(head) is not None


def _fail(code: str, message: str, path: str, **details: Any) -> JobFailed:
    return JobFailed(code, message, {"path": path, **details})


def _read(path: str) -> bytes:
    st = stat_file(path)
    if st.st_size > MAX_FILE_BYTES:
        raise _fail(
            ErrorCode.IMAGE_TOO_LARGE,
            f"{path} is {st.st_size} bytes; image files above {MAX_FILE_BYTES} are refused",
            path,
            size=st.st_size,
        )
    try:
        with open(path, "rb") as f:
            data = f.read()
    except OSError as exc:
        raise _fail(
            ErrorCode.FILE_UNREADABLE, f"cannot read {path}: {exc.strerror}", path
        ) from None
    return data


def _kind(data: bytes, path: str) -> str:
    kind = image_kind(data[:16])
    if kind is None:
        what = "is empty (0 bytes)" if not data else "is not a PNG, JPEG, TIFF or WebP image"
        raise _fail(ErrorCode.NOT_AN_IMAGE, f"{path} {what}", path)
    return kind


def _pillow_frames(data: bytes, path: str) -> Any:
    """A Pillow image (WebP) whose header was read; nothing decoded yet."""
    from PIL import Image

    try:
        with warnings.catch_warnings():
            # Pillow's own bomb guard would refuse sizes the job allowed: ours applies.
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            old, Image.MAX_IMAGE_PIXELS = Image.MAX_IMAGE_PIXELS, None
            try:
                return Image.open(io.BytesIO(data))
            finally:
                Image.MAX_IMAGE_PIXELS = old
    except Exception as exc:  # noqa: BLE001 - any decoder error is a bad file
        raise _fail(ErrorCode.IMAGE_CORRUPT, f"{path} cannot be read: {exc}", path) from None


def _open(data: bytes, kind: str, path: str) -> Any:
    pymupdf = import_pymupdf()
    try:
        return pymupdf.open(stream=data, filetype=kind)
    except Exception as exc:  # noqa: BLE001 - FileDataError, RuntimeError...
        raise _fail(ErrorCode.IMAGE_CORRUPT, f"{path} cannot be read: {exc}", path) from None


def _sizes(data: bytes, kind: str, path: str) -> list[tuple[int, int]]:
    """Width and height of every page (frame), from the headers only."""
    if kind == "webp":
        img = _pillow_frames(data, path)
        return [img.size] * int(getattr(img, "n_frames", 1) or 1)
    doc = _open(data, kind, path)
    sizes = []
    for i in range(doc.page_count):
        try:
            info = doc[i].get_image_info()
        except Exception as exc:  # noqa: BLE001
            raise _fail(
                ErrorCode.IMAGE_CORRUPT, f"{path} page {i + 1} cannot be read: {exc}", path
            ) from None
        if not info:
            raise _fail(ErrorCode.IMAGE_CORRUPT, f"{path} page {i + 1} holds no image", path)
        sizes.append((int(info[0]["width"]), int(info[0]["height"])))
    return sizes


def probe(path: str, max_pixels: int) -> dict[str, Any]:
    """``{pages, sha256, size, format, sizes}`` of an image file, or ``JobFailed``:
    ``NOT_AN_IMAGE``, ``IMAGE_CORRUPT``, ``IMAGE_TOO_LARGE`` (a page above
    ``max_pixels``), ``FILE_NOT_FOUND`` / ``FILE_UNREADABLE``."""
    data = _read(path)
    sha = hashlib.sha256(data).hexdigest()
    kind = _kind(data, path)
    sizes = _sizes(data, kind, path)
    if not sizes:
        raise _fail(ErrorCode.IMAGE_CORRUPT, f"{path} holds no image", path)
    for n, (w, h) in enumerate(sizes, 1):
        if w * h > max_pixels:
            raise _fail(
                ErrorCode.IMAGE_TOO_LARGE,
                f"{path}{f' page {n}' if len(sizes) > 1 else ''} is {w} x {h} pixels "
                f"({w * h / 1e6:.1f} MP); the limit is {max_pixels / 1e6:g} MP (max_pixels)",
                path,
                page=n,
                width=w,
                height=h,
                max_pixels=max_pixels,
            )
    return {"pages": len(sizes), "sha256": sha, "size": len(data), "format": kind, "sizes": sizes}


def _pixmap(data: bytes, kind: str, index: int) -> Any:
    """Page ``index`` as an RGB pixmap at the image's own pixel size."""
    pymupdf = import_pymupdf()
    if kind == "webp":
        img = _pillow_frames(data, "")
        img.seek(index)
        rgb = img.convert("RGB")
        return pymupdf.Pixmap(pymupdf.csRGB, rgb.width, rgb.height, rgb.tobytes(), 0)
    page = pymupdf.open(stream=data, filetype=kind)[index]
    info = page.get_image_info()[0]
    # The image's own resolution, no resampling. Computed from areas: MuPDF turns a
    # JPEG by its EXIF orientation, so the stored width may be the page's height.
    zoom = math.sqrt(info["width"] * info["height"] / (page.rect.width * page.rect.height))
    return page.get_pixmap(matrix=pymupdf.Matrix(zoom, zoom), colorspace=pymupdf.csRGB)


def ocr_range(path: str, start: int, stop: int, opts: dict[str, Any]) -> list[dict[str, Any]]:
    """OCR of pages ``[start, stop)``: one record per page, as ``pdf_extract`` makes
    them (``page``, ``text``, ``chars``, ``ocr``; ``error`` for a page that failed,
    with ``corrupt`` when it could not be decoded). Options: ``languages``."""
    pymupdf = import_pymupdf()
    data = _read(path)  # each page's task reads the file again: OCR costs ~100x more
    kind = _kind(data, path)
    out: list[dict[str, Any]] = []
    for i in range(start, stop):
        rec: dict[str, Any] = {"page": i + 1, "text": "", "chars": 0, "ocr": True}
        try:
            pix = _pixmap(data, kind, i)
        except Exception as exc:  # noqa: BLE001 - one bad page must not lose the others
            rec.update(error=f"cannot decode: {exc}", corrupt=True, ocr=False)
            out.append(rec)
            continue
        rec["width"], rec["height"] = pix.width, pix.height
        try:
            ocr_pdf = pymupdf.open("pdf", pix.pdfocr_tobytes(language=opts["languages"]))
            text = ocr_pdf[0].get_text()
        except Exception as exc:  # noqa: BLE001 - recorded on the page
            rec.update(error=f"OCR failed: {exc}", ocr=False)
        else:
            rec["text"], rec["chars"] = text, len(text)
        out.append(rec)
    return out
