"""image.ocr: PNG, JPEG, multi-page TIFF and WebP scans made here (German text with
umlauts rendered by PyMuPDF, saved by PyMuPDF or Pillow), the stable codes for bad
images, progress per page, and a mixed folder that becomes one batch of two types."""

from __future__ import annotations

import asyncio
import io
import struct
import zlib
from pathlib import Path
from typing import Any

import pymupdf
import pytest
from PIL import Image

from jobtui.engine.config import Settings
from jobtui.engine.errors import JobFailed
from jobtui.engine.processors import image as image_mod
from jobtui.engine.processors import image_extract as ix
from jobtui.engine.registry import default_registry
from jobtui.engine.store.sqlite import SQLiteStore
from jobtui.engine.testing import run_handler
from jobtui.engine.worker import Engine
from tests.util import api_of

# One short line per page keeps OCR at well under a second of CPU per page.
PAGES = ["Größe der Übersicht", "Prüfung für Mädchen", "Straße und Gemüse"]


def _page_pixmap(text: str, dpi: int = 300) -> Any:
    doc = pymupdf.open()
    page = doc.new_page(width=300, height=60)
    page.insert_text((10, 38), text, fontsize=18, fontname="helv")
    return page.get_pixmap(dpi=dpi)


def _pil(text: str) -> Image.Image:
    pix = _page_pixmap(text)
    return Image.frombytes("RGB", (pix.width, pix.height), pix.samples)


def _tiff(path: Path, texts: list[str]) -> None:
    first, *rest = [_pil(t) for t in texts]
    first.save(path, save_all=True, append_images=rest, compression="tiff_deflate", dpi=(300, 300))


def _png_header(width: int, height: int) -> bytes:
    """A PNG that claims ``width`` x ``height`` pixels (a decompression bomb's header)."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        crc = zlib.crc32(kind + data) & 0xFFFFFFFF
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", crc)

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    idat = zlib.compress(b"\0" * (width + 1) * 4)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", idat) + chunk(b"IEND", b"")


@pytest.fixture(scope="module")
def scans(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    d = tmp_path_factory.mktemp("scans")
    out = {
        "png": d / "brief.png",
        "jpeg": d / "rechnung.JPG",
        "tiff": d / "akte.tiff",
        "webp": d / "notiz.webp",
        "noext": d / "scan-ohne-endung",
    }
    _page_pixmap(PAGES[0]).save(out["png"])
    _page_pixmap(PAGES[1]).save(str(out["jpeg"]), output="jpeg", jpg_quality=90)
    _tiff(out["tiff"], PAGES)
    _pil(PAGES[2]).save(out["webp"], quality=90)
    out["noext"].write_bytes(_png_bytes(PAGES[1]))
    return out


def _png_bytes(text: str) -> bytes:
    buf = io.BytesIO()
    _pil(text).save(buf, format="PNG")
    return buf.getvalue()


def _words(text: str) -> set[str]:
    return set(text.replace(",", " ").split())


# -- the handler through the engine (jobtui.engine.testing) ------------------------------


async def test_multi_page_tiff_every_page_in_order_with_progress_per_page(
    scans: dict[str, Path],
) -> None:
    run = await run_handler(image_mod.register, "image.ocr", {"path": str(scans["tiff"])})
    assert run.status == "completed", run.error
    assert run.result is not None and run.result["pages"] == 3 and run.result["format"] == "tiff"
    md = Path(run.result["markdown_path"]).read_text(encoding="utf-8")
    for n, line in enumerate(PAGES, 1):
        assert f"## Page {n}" in md
        assert _words(line) <= _words(md.split(f"## Page {n}")[1].split("## Page")[0]), md
    # Progress moved page by page, not in one jump.
    assert [p.message for p in run.progress] == ["0/3 pages", "1/3 pages", "2/3 pages", "3/3 pages"]
    assert run.progress[-1].percent == 100
    # The JSON has one record per page, as pdf.transcribe's.
    import json

    doc = json.loads(Path(run.result["json_path"]).read_text(encoding="utf-8"))
    assert doc["page_count"] == 3 and doc["languages"] == "deu+eng"
    assert [r["page"] for r in doc["pages"]] == [1, 2, 3] and all(r["ocr"] for r in doc["pages"])
    assert "TIFF, 3 pages" in run.log_text


@pytest.mark.parametrize("code", ["NOT_AN_IMAGE", "IMAGE_CORRUPT", "IMAGE_TOO_LARGE"])
async def test_bad_images_fail_with_their_code_once(tmp_path: Path, code: str) -> None:
    bad = tmp_path / "bad.png"
    bad.write_bytes(
        {
            "NOT_AN_IMAGE": b"%PDF-1.7 a PDF named .png",
            "IMAGE_CORRUPT": _png_bytes("x")[:60],  # the header, then cut off
            "IMAGE_TOO_LARGE": _png_header(30_000, 30_000),  # 900 MP claimed, 1 KB file
        }[code]
    )
    run = await run_handler(image_mod.register, "image.ocr", {"path": str(bad)}, max_attempts=3)
    assert run.status == "failed" and run.error_code == code, run.error
    assert run.job.attempts == 1  # bad input is not retried
    assert "Traceback" not in (run.error.message if run.error else "")


# -- the worker-side checks directly (fast) ----------------------------------------------


def test_probe_codes_and_the_pixel_limit(tmp_path: Path, scans: dict[str, Path]) -> None:
    def code_of(data: bytes, max_pixels: int = 100_000_000) -> str:
        f = tmp_path / "x.img"
        f.write_bytes(data)
        with pytest.raises(JobFailed) as err:
            ix.probe(str(f), max_pixels)
        return err.value.code

    assert code_of(b"") == "NOT_AN_IMAGE"
    assert code_of(b"just some text") == "NOT_AN_IMAGE"
    assert code_of(b"\x89PNG\r\n\x1a\n" + b"\0" * 40) == "IMAGE_CORRUPT"
    assert code_of(b"RIFF\x10\x00\x00\x00WEBPVP8 broken") == "IMAGE_CORRUPT"
    assert code_of(_png_header(30_000, 30_000)) == "IMAGE_TOO_LARGE"
    # The limit is a parameter: a real scan of ~0.3 MP passes 1 MP, not 0.1 MP.
    info = ix.probe(str(scans["png"]), 1_000_000)
    assert info["format"] == "png" and info["pages"] == 1
    assert code_of(scans["png"].read_bytes(), 100_000) == "IMAGE_TOO_LARGE"
    assert ix.probe(str(scans["tiff"]), 1_000_000)["pages"] == 3
    assert ix.probe(str(scans["webp"]), 1_000_000)["format"] == "webp"
    with pytest.raises(JobFailed) as err:
        ix.probe(str(tmp_path / "absent.png"), 1)
    assert err.value.code == "FILE_NOT_FOUND"


def test_a_phone_jpeg_turned_by_exif_is_read_upright_at_its_own_size(tmp_path: Path) -> None:
    """Stored sideways with EXIF orientation 6 (as phones save): MuPDF turns it, and the
    page is read at its own pixel count (no upscaling along the wrong axis)."""
    upright = _pil(PAGES[0])
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90 degrees clockwise to display
    path = tmp_path / "phone.jpg"
    upright.transpose(Image.Transpose.ROTATE_90).save(path, exif=exif.tobytes(), quality=90)
    [rec] = ix.ocr_range(str(path), 0, 1, {"languages": "deu+eng"})
    assert (rec["width"], rec["height"]) == upright.size
    assert _words(PAGES[0]) <= _words(rec["text"]), rec


def test_kinds_by_content() -> None:
    assert ix.image_kind(b"\x89PNG\r\n\x1a\n....") == "png"
    assert ix.image_kind(b"\xff\xd8\xff\xe0") == "jpeg"
    assert ix.image_kind(b"II*\x00") == ix.image_kind(b"MM\x00*") == "tiff"
    assert ix.image_kind(b"RIFF\x00\x00\x00\x00WEBPVP8 ") == "webp"
    assert ix.image_kind(b"%PDF-1.7") is None and ix.image_kind(b"") is None


# -- a mixed folder: one batch, two job types --------------------------------------------


async def test_a_folder_of_pdfs_scans_and_text_is_one_batch_of_two_types(
    scans: dict[str, Path], tmp_path: Path
) -> None:
    folder = tmp_path / "eingang"
    folder.mkdir()
    for key, path in scans.items():
        (folder / path.name).write_bytes(path.read_bytes())
    doc = pymupdf.open()
    doc.new_page().insert_text((72, 72), "Bericht über Änderungen", fontname="helv")
    doc.save(folder / "bericht.pdf")
    doc = pymupdf.open()
    doc.new_page().insert_text((72, 72), "Zweites Dokument", fontname="helv")
    doc.save(folder / "zweites.PDF")
    (folder / "liesmich.txt").write_text("no job type takes text files", encoding="utf-8")

    store = SQLiteStore(tmp_path / "jobs.db")
    await store.open()
    settings = Settings(
        output_dir=tmp_path / "out", cpu_workers=2, poll_interval=0.1, heartbeat_interval=0.2
    )
    eng = Engine(store, default_registry(), settings)
    await eng.start()
    try:
        rep = await api_of(eng).enqueue_paths([str(folder)])
        assert rep.skipped == {"unsupported": 1}
        assert rep.skipped_examples["unsupported"] == [str(folder / "liesmich.txt")]
        await asyncio.wait_for(eng.wait_batch(rep.batch_id, poll=0.1), 240)  # type: ignore[arg-type]
        jobs = await store.list_jobs(limit=100)
        assert {j.batch_id for j in jobs} == {rep.batch_id} and len(jobs) == 7
        by_name = {Path(j.parameters["path"]).name: j for j in jobs}
        assert {n: j.job_type for n, j in by_name.items()} == {
            "bericht.pdf": "pdf.transcribe",
            "zweites.PDF": "pdf.transcribe",
            "brief.png": "image.ocr",
            "rechnung.JPG": "image.ocr",
            "akte.tiff": "image.ocr",
            "notiz.webp": "image.ocr",
            "scan-ohne-endung": "image.ocr",  # no extension: known by its first bytes
        }
        assert all(j.status.value == "completed" for j in jobs), [
            (n, j.error) for n, j in by_name.items() if j.error
        ]
        batch = await store.get_batch(rep.batch_id)  # type: ignore[arg-type]
        assert batch is not None and batch.total == 7 and batch.batch.job_type is None

        def text(name: str) -> str:
            results = by_name[name].results or {}
            return Path(results["markdown_path"]).read_text(encoding="utf-8")

        assert _words(PAGES[0]) <= _words(text("brief.png"))
        assert _words(PAGES[1]) <= _words(text("rechnung.JPG"))
        assert _words(PAGES[2]) <= _words(text("notiz.webp"))
        assert _words(PAGES[1]) <= _words(text("scan-ohne-endung"))
        assert "Änderungen" in text("bericht.pdf")
    finally:
        await eng.stop(grace=5)
        await store.close()
