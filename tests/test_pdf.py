"""PDF handlers on PDFs generated here with PyMuPDF: text, scans (German OCR), mixed,
every bad input, a zero-page document, outputs, page-range parts, and cancel.

Handlers are called directly with a real ``JobContext`` on a real SQLite store and a
real process pool (one per module, so PyMuPDF is imported once per process).
"""

from __future__ import annotations

import asyncio
import json
import os
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pymupdf
import pytest
import pytest_asyncio
from pydantic import BaseModel, ValidationError

from jobtui.engine.context import JobContext
from jobtui.engine.errors import JobCancelled, JobFailed
from jobtui.engine.logsink import LogSink
from jobtui.engine.models import Job, JobStatus, utcnow
from jobtui.engine.processors import pdf, pdf_open, pdf_params, pdf_parts
from jobtui.engine.processors import pdf_extract as px
from jobtui.engine.processors.pdf_markdown import structure_markdown
from jobtui.engine.procpool import ProcessPool
from jobtui.engine.store.sqlite import SQLiteStore
from tests.util import api_of, wait_for

pytestmark = pytest.mark.asyncio(loop_scope="module")

TEXT_PAGES = [
    "Erste Seite\nHello world, page one.",
    "Second page\nLine two of page two.",
    "Dritte Seite: Größe, Übung, schön.",
]
GERMAN = ["Größe der Übung", "Das ist schön"]


# -- generated inputs ----------------------------------------------------------------


def _text_page(doc: Any, text: str, fontsize: float = 12) -> None:
    page = doc.new_page()
    y = 72.0
    for line in text.split("\n"):
        page.insert_text((72, y), line, fontsize=fontsize)
        y += fontsize * 1.6


def _scan_png(lines: list[str]) -> bytes:
    """A page image with big text: what a scanner makes (no text layer)."""
    # Tesseract is deterministic but picky about umlauts; this size, spacing and
    # resolution read back every umlaut word (checked on Debian's tesseract 5).
    src = pymupdf.open()
    page = src.new_page()
    y = 112.0
    for line in lines:
        page.insert_text((72, y), line, fontsize=40)
        y += 100
    return page.get_pixmap(dpi=200, colorspace=pymupdf.csGRAY).tobytes("png")


def _scan_page(doc: Any, png: bytes) -> None:
    page = doc.new_page()
    page.insert_image(page.rect, stream=png)


def _save(doc: Any, path: Path, **kw: Any) -> Path:
    doc.save(path, **kw)
    return path


def _zero_page_pdf(xref: bool) -> bytes:
    """A valid PDF without pages: PyMuPDF refuses to save one, so it is written by hand.
    Without an xref table MuPDF must repair it, and a repair that recovers nothing
    counts as PDF_CORRUPT; with one it is a clean, empty document."""
    objs = [b"<</Type/Catalog/Pages 2 0 R>>", b"<</Type/Pages/Kids[]/Count 0>>"]
    out = b"%PDF-1.4\n"
    offsets = []
    for i, obj in enumerate(objs, 1):
        offsets.append(len(out))
        out += b"%d 0 obj\n" % i + obj + b"\nendobj\n"
    if not xref:
        return out + b"trailer\n<</Root 1 0 R>>\n%%EOF\n"
    start = len(out)
    out += b"xref\n0 %d\n0000000000 65535 f \n" % (len(objs) + 1)
    out += b"".join(b"%010d 00000 n \n" % o for o in offsets)
    out += b"trailer\n<</Size %d/Root 1 0 R>>\nstartxref\n%d\n%%%%EOF\n" % (len(objs) + 1, start)
    return out


@pytest.fixture(scope="module")
def pdfs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    d = tmp_path_factory.mktemp("pdfs")
    out: dict[str, Path] = {}
    doc = pymupdf.open()
    for t in TEXT_PAGES:
        _text_page(doc, t)
    out["text"] = _save(doc, d / "text doc.pdf")
    out["text_bytes"] = d / "text doc.pdf"
    png = _scan_png(GERMAN)
    doc = pymupdf.open()
    _scan_page(doc, png)
    out["scan"] = _save(doc, d / "scan.pdf")
    doc = pymupdf.open()
    for i in range(4):
        if i % 2:
            _scan_page(doc, png)
        else:
            _text_page(doc, f"Text page {i + 1}")
    out["mixed"] = _save(doc, d / "mixed.pdf")
    doc = pymupdf.open()
    for _ in range(5):
        _scan_page(doc, png)
    out["scans"] = _save(doc, d / "scans.pdf")
    doc = pymupdf.open()
    for i in range(20):  # scans on pages 2 and 4: between the 8 pages a sample reads
        if i in (1, 3):
            _scan_page(doc, png)
        else:
            _text_page(doc, f"Text page {i + 1}")
    out["sparse"] = _save(doc, d / "sparse.pdf")
    doc = pymupdf.open()
    for i in range(45):
        _text_page(doc, f"Seite {i + 1} von 45")
    out["many"] = _save(doc, d / "many.pdf")
    doc = pymupdf.open()
    for t in TEXT_PAGES:
        _text_page(doc, t)
    out["encrypted"] = _save(
        doc,
        d / "enc.pdf",
        encryption=pymupdf.PDF_ENCRYPT_AES_256,
        user_pw="geheim",
        owner_pw="owner",
    )
    good = out["text"].read_bytes()
    (d / "empty.pdf").write_bytes(b"")
    out["empty"] = d / "empty.pdf"
    (d / "image.pdf").write_bytes(png)  # a PNG renamed .pdf
    out["png"] = d / "image.pdf"
    (d / "truncated.pdf").write_bytes(good[: len(good) // 2])
    out["truncated"] = d / "truncated.pdf"
    (d / "garbage.pdf").write_bytes(b"%PDF-1.7\n" + bytes(range(256)) * 8)
    out["garbage"] = d / "garbage.pdf"
    (d / "notes.pdf").write_bytes(b"just some text, not a PDF\n" * 20)
    out["textfile"] = d / "notes.pdf"
    (d / "zero.pdf").write_bytes(_zero_page_pdf(xref=True))
    out["zero"] = d / "zero.pdf"
    (d / "zero-noxref.pdf").write_bytes(_zero_page_pdf(xref=False))
    out["zero_noxref"] = d / "zero-noxref.pdf"
    # Cut early: MuPDF either fails to open it or "repairs" it into blank pages.
    (d / "cut.pdf").write_bytes(good[: len(good) // 5])
    out["cut"] = d / "cut.pdf"
    (d / "a folder.pdf").mkdir()
    out["dir"] = d / "a folder.pdf"
    os.mkfifo(d / "fifo.pdf")
    out["fifo"] = d / "fifo.pdf"
    return out


@pytest.fixture(scope="module")
def big_pdf(tmp_path_factory: pytest.TempPathFactory) -> Path:
    doc = pymupdf.open()
    for i in range(640):
        doc.new_page().insert_text((72, 72), f"page {i + 1}")
    return _save(doc, tmp_path_factory.mktemp("big") / "big.pdf")


# -- engine pieces -------------------------------------------------------------------


class Harness:
    def __init__(self, store: SQLiteStore, logs: LogSink, pool: ProcessPool, out: Path) -> None:
        self.store, self.logs, self.pool, self.out = store, logs, pool, out

    async def context(
        self, job_type: str, params: dict[str, Any], pool: ProcessPool | None = None
    ) -> JobContext:
        job = Job(job_type=job_type, parameters=params)
        await self.store.insert_jobs([job])
        claimed = await self.store.claim(
            worker_id="test",
            slots={job_type: 1},
            limit=1,
            lease_seconds=60,
            timeouts={},
            now=utcnow(),
        )
        assert [j.job_id for j in claimed] == [job.job_id]
        use = pool or self.pool
        return JobContext(
            claimed[0],
            store=self.store,
            token=claimed[0].lease.token,  # type: ignore[union-attr]
            logs=self.logs,
            pool=lambda: use,
            output_dir=self.out,
        )

    async def run(self, job_type: str, **params: Any) -> dict[str, Any]:
        jt = {
            "pdf.transcribe": (pdf.transcribe, pdf_params.TranscribeParams),
            "pdf.markdown": (pdf.markdown, pdf_params.MarkdownParams),
            "pdf.render": (pdf.render, pdf_params.RenderParams),
        }[job_type]
        params = {k: str(v) if isinstance(v, Path) else v for k, v in params.items()}
        model: BaseModel = jt[1].model_validate(params)
        ctx = await self.context(job_type, params)
        try:
            return await jt[0](ctx, model)  # type: ignore[operator]
        finally:
            ctx.close()

    async def logs_of(self, job_id: str) -> list[str]:
        await self.logs.flush()
        return [e.message for e in await self.store.tail_logs(job_id, limit=1000)]


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def h(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Harness]:
    d = tmp_path_factory.mktemp("engine")
    store = SQLiteStore(d / "jobs.db")
    await store.open()
    logs = LogSink(store)
    pool = ProcessPool(2, initializer=pdf_open.warm)
    await pool.warm()
    try:
        yield Harness(store, logs, pool, d / "out")
    finally:
        await pool.close()
        await logs.stop()
        await store.close()


async def _fails(h: Harness, code: str, job_type: str = "pdf.transcribe", **params: Any) -> str:
    with pytest.raises(JobFailed) as info:
        await h.run(job_type, **params)
    assert info.value.code == code, info.value.message
    assert info.value.retryable is False
    return info.value.message


# -- transcribe ----------------------------------------------------------------------


async def test_text_pdf_exact_text_back(h: Harness, pdfs: dict[str, Path]) -> None:
    res = await h.run("pdf.transcribe", path=pdfs["text"])
    assert res["pages"] == 3 and res["ocr_pages"] == 0 and res["failed_pages"] == 0
    data = json.loads(Path(res["json_path"]).read_text(encoding="utf-8"))
    assert [p["page"] for p in data["pages"]] == [1, 2, 3]
    assert [p["text"].strip() for p in data["pages"]] == TEXT_PAGES
    assert [p["ocr"] for p in data["pages"]] == [False] * 3
    assert all(p["chars"] == len(p["text"]) for p in data["pages"])
    assert res["chars"] == sum(p["chars"] for p in data["pages"])
    assert data["sha256"] == res["sha256"] and data["source"] == str(pdfs["text"])


async def test_output_names_and_markdown_headings(h: Harness, pdfs: dict[str, Path]) -> None:
    import hashlib

    res = await h.run("pdf.transcribe", path=pdfs["text"])
    sha = hashlib.sha256(pdfs["text"].read_bytes()).hexdigest()
    assert res["sha256"] == sha
    assert Path(res["markdown_path"]) == h.out / f"text doc-{sha[:12]}.md"
    assert Path(res["json_path"]) == h.out / f"text doc-{sha[:12]}.json"
    md = Path(res["markdown_path"]).read_text(encoding="utf-8")
    assert md.startswith("# text doc.pdf\n")
    heads = [line for line in md.splitlines() if line.startswith("## ")]
    assert heads == ["## Page 1", "## Page 2", "## Page 3"]
    assert "Größe, Übung, schön" in md
    assert not [p for p in h.out.iterdir() if p.name.endswith(".tmp")]  # atomic writes
    assert isinstance(res["duration_s"], float)


async def test_scanned_german_page_is_ocred(h: Harness, pdfs: dict[str, Path]) -> None:
    res = await h.run("pdf.transcribe", path=pdfs["scan"])
    assert res["pages"] == 1 and res["ocr_pages"] == 1
    data = json.loads(Path(res["json_path"]).read_text(encoding="utf-8"))
    text = data["pages"][0]["text"]
    assert data["pages"][0]["ocr"] is True
    for word in ("Größe", "Übung", "schön"):
        assert word in text, text


async def test_mixed_pdf_ocrs_only_scanned_pages(h: Harness, pdfs: dict[str, Path]) -> None:
    res = await h.run("pdf.transcribe", path=pdfs["mixed"], pages_per_part=1)
    assert res["pages"] == 4 and res["ocr_pages"] == 2 and res["parts"] == 4
    data = json.loads(Path(res["json_path"]).read_text(encoding="utf-8"))
    assert [p["ocr"] for p in data["pages"]] == [False, True, False, True]
    assert data["pages"][0]["text"].strip() == "Text page 1"
    assert "Übung" in data["pages"][3]["text"]
    job_id = (await h.store.list_jobs(limit=1000))[-1].job_id
    assert any("OCR (deu+eng) used on 2 pages: 2, 4" in m for m in await h.logs_of(job_id))


async def test_ocr_off_leaves_scans_empty_and_says_so(h: Harness, pdfs: dict[str, Path]) -> None:
    res = await h.run("pdf.transcribe", path=pdfs["mixed"], ocr=False)
    assert res["ocr_pages"] == 0 and res["pages"] == 4
    md = Path(res["markdown_path"]).read_text(encoding="utf-8")
    assert md.count("_(no text on this page)_") == 2
    job_id = (await h.store.list_jobs(limit=1000))[-1].job_id
    assert any("no text layer and were not OCRed" in m for m in await h.logs_of(job_id))


async def test_parts_are_assembled_in_page_order(h: Harness, pdfs: dict[str, Path]) -> None:
    res = await h.run("pdf.transcribe", path=pdfs["many"], pages_per_part=4)
    assert res["parts"] == 12 and res["pages"] == 45
    data = json.loads(Path(res["json_path"]).read_text(encoding="utf-8"))
    assert [p["text"].strip() for p in data["pages"]] == [f"Seite {i} von 45" for i in range(1, 46)]


@pytest.mark.parametrize("doc", ["many", "mixed"])
async def test_parts_write_the_same_bytes_as_one_piece(
    h: Harness, pdfs: dict[str, Path], tmp_path: Path, doc: str
) -> None:
    """Each part encodes its pages (``transcribe_range``); the files joined from them
    are byte for byte those written from all pages at once."""
    from jobtui.engine.processors import pdf_output as po

    res = await h.run("pdf.transcribe", path=pdfs[doc], pages_per_part=3)
    assert res["parts"] > 1
    path, sha = str(pdfs[doc]), res["sha256"]
    records = px.extract_range(path, 0, res["pages"], {"languages": "deu+eng", "dpi": 300})
    whole = po.transcript_doc(path, sha, res["pages"], "deu+eng", records)
    md, js = po.write_transcript(str(tmp_path), "whole", pdfs[doc].name, whole)
    assert Path(res["markdown_path"]).read_bytes() == Path(md).read_bytes()
    assert Path(res["json_path"]).read_bytes() == Path(js).read_bytes()


async def test_progress_is_written(h: Harness, pdfs: dict[str, Path]) -> None:
    await h.run("pdf.transcribe", path=pdfs["many"], pages_per_part=5)
    job = (await h.store.list_jobs(limit=1000))[-1]
    got = await h.store.get_job(job.job_id)
    assert got is not None and got.progress is not None and got.progress.step == "transcribe"


async def test_zero_page_pdf_completes_with_zero_pages(h: Harness, pdfs: dict[str, Path]) -> None:
    res = await h.run("pdf.transcribe", path=pdfs["zero"])
    assert res["pages"] == 0 and res["chars"] == 0 and res["ocr_pages"] == 0
    data = json.loads(Path(res["json_path"]).read_text(encoding="utf-8"))
    assert data["pages"] == []
    md = await h.run("pdf.markdown", path=pdfs["zero"])
    assert md["pages"] == 0
    img = await h.run("pdf.render", path=pdfs["zero"])
    assert img["pages_rendered"] == 0 and img["pages"] == 0


async def test_encrypted_with_correct_password(h: Harness, pdfs: dict[str, Path]) -> None:
    res = await h.run("pdf.transcribe", path=pdfs["encrypted"], password="geheim")
    assert res["pages"] == 3 and "geheim" not in json.dumps(res)
    data = json.loads(Path(res["json_path"]).read_text(encoding="utf-8"))
    assert [p["text"].strip() for p in data["pages"]] == TEXT_PAGES


# -- bad input -----------------------------------------------------------------------


@pytest.mark.parametrize("job_type", ["pdf.transcribe", "pdf.markdown", "pdf.render"])
async def test_bad_inputs_fail_with_stable_codes(
    h: Harness, pdfs: dict[str, Path], job_type: str
) -> None:
    await _fails(h, "FILE_NOT_FOUND", job_type, path=pdfs["text"].parent / "missing.pdf")
    await _fails(h, "FILE_NOT_FOUND", job_type, path=pdfs["text"] / "below-a-file.pdf")
    await _fails(h, "FILE_UNREADABLE", job_type, path=pdfs["dir"])
    await _fails(h, "FILE_UNREADABLE", job_type, path=pdfs["fifo"])
    await _fails(h, "PDF_EMPTY", job_type, path=pdfs["empty"])
    await _fails(h, "NOT_A_PDF", job_type, path=pdfs["png"])
    await _fails(h, "NOT_A_PDF", job_type, path=pdfs["textfile"])
    await _fails(h, "PDF_CORRUPT", job_type, path=pdfs["garbage"])
    await _fails(h, "PDF_CORRUPT", job_type, path=pdfs["cut"])
    await _fails(h, "PDF_CORRUPT", job_type, path=pdfs["zero_noxref"])
    msg = await _fails(h, "PDF_ENCRYPTED", job_type, path=pdfs["encrypted"])
    assert "password" in msg
    msg = await _fails(h, "PDF_ENCRYPTED", job_type, path=pdfs["encrypted"], password="wrong")
    assert "does not open" in msg and "wrong" not in msg


@pytest.mark.skipif(os.geteuid() == 0, reason="root reads files whatever their mode")
async def test_unreadable_file(h: Harness, pdfs: dict[str, Path], tmp_path: Path) -> None:
    p = tmp_path / "locked.pdf"
    p.write_bytes(pdfs["text"].read_bytes())
    p.chmod(0)
    await _fails(h, "FILE_UNREADABLE", path=p)


async def test_truncated_pdf_is_corrupt_or_repaired_with_a_warning(
    h: Harness, pdfs: dict[str, Path]
) -> None:
    # Where the cut falls decides whether MuPDF can rebuild the file; either way the
    # outcome is explicit: PDF_CORRUPT, or a result marked by a "repaired" log line.
    try:
        res = await h.run("pdf.transcribe", path=pdfs["truncated"])
    except JobFailed as exc:
        assert exc.code == "PDF_CORRUPT"
        return
    job_id = (await h.store.list_jobs(limit=1000))[-1].job_id
    assert res["pages"] >= 1
    assert any("repaired" in m for m in await h.logs_of(job_id))


async def test_pdf_with_another_extension_is_read(
    h: Harness, pdfs: dict[str, Path], tmp_path: Path
) -> None:
    p = tmp_path / "scan.txt"
    p.write_bytes(pdfs["text"].read_bytes())
    assert (await h.run("pdf.transcribe", path=p))["pages"] == 3


async def test_invalid_parameters_are_refused_by_the_models() -> None:
    with pytest.raises(ValidationError):
        pdf_params.TranscribeParams.model_validate({"path": "/x.pdf", "languages": "deu; rm -rf /"})
    with pytest.raises(ValidationError):
        pdf_params.TranscribeParams.model_validate({"path": "/x.pdf", "langauges": "deu"})
    with pytest.raises(ValidationError):
        pdf_params.RenderParams.model_validate({"path": "/x.pdf", "first_page": 3, "last_page": 2})
    with pytest.raises(ValidationError):
        pdf_params.RenderParams.model_validate({"path": "/x.pdf", "first_page": 0})


# -- markdown and render -------------------------------------------------------------


async def test_markdown_has_headings_from_font_sizes(h: Harness, tmp_path: Path) -> None:
    doc = pymupdf.open()
    page = doc.new_page()
    page.insert_text((72, 80), "Jahresbericht", fontsize=24)
    page.insert_text((72, 130), "Einleitung", fontsize=16)
    y = 160.0
    for i in range(6):
        page.insert_text((72, y), f"Dies ist Absatztext Nummer {i} mit genug Inhalt.", fontsize=11)
        y += 40
    page = doc.new_page()
    page.insert_text((72, 80), "Ergebnisse", fontsize=16)
    page.insert_text((72, 120), "Alles ist schön.", fontsize=11)
    path = _save(doc, tmp_path / "bericht.pdf")
    res = await h.run("pdf.markdown", path=path)
    assert res["pages"] == 2
    md = Path(res["markdown_path"]).read_text(encoding="utf-8")
    assert Path(res["markdown_path"]).name == f"bericht-{res['sha256'][:12]}.structured.md"
    lines = md.splitlines()
    assert "# Jahresbericht" in lines
    assert "## Einleitung" in lines and "## Ergebnisse" in lines
    assert "<!-- page 2 -->" in lines
    assert "Alles ist schön." in lines
    assert res["chars"] == len(md)


async def test_structure_markdown_lists_hyphens_and_escapes() -> None:
    pages = [
        {
            "page": 1,
            "blocks": [
                [11.0, False, ["Ein langer Absatz mit Ver-", "arbeitung und mehr Text hier."]],
                [11.0, False, ["• erster Punkt", "• zweiter Punkt"]],
                [11.0, False, ["# kein Titel"]],
                [11.0, True, ["Fett"]],
            ],
        }
    ]
    md = structure_markdown(pages, "doc")
    assert md.startswith("# doc\n")
    assert "Ein langer Absatz mit Verarbeitung und mehr Text hier." in md
    assert "- erster Punkt\n- zweiter Punkt" in md
    assert "\\# kein Titel" in md
    assert "**Fett**" in md


async def test_render_pages_and_range(h: Harness, pdfs: dict[str, Path]) -> None:
    res = await h.run("pdf.render", path=pdfs["text"], dpi=36)
    out = Path(res["output_dir"])
    assert out == h.out / f"text doc-{res['sha256'][:12]}"
    assert res["pages_rendered"] == 3
    assert sorted(p.name for p in out.iterdir()) == [
        "page-0001.png",
        "page-0002.png",
        "page-0003.png",
    ]
    pix = pymupdf.Pixmap(str(out / "page-0001.png"))
    assert pix.width == round(595 * 36 / 72)
    for p in out.iterdir():
        p.unlink()
    res = await h.run("pdf.render", path=pdfs["many"], dpi=20, first_page=10, last_page=12)
    out = Path(res["output_dir"])
    assert res["pages_rendered"] == 3 and (res["first_page"], res["last_page"]) == (10, 12)
    assert sorted(p.name for p in out.iterdir()) == [
        "page-0010.png",
        "page-0011.png",
        "page-0012.png",
    ]
    res = await h.run("pdf.render", path=pdfs["text"], dpi=20, first_page=2, last_page=99)
    assert res["pages_rendered"] == 2
    await _fails(h, "INVALID_PARAMETERS", "pdf.render", path=pdfs["text"], first_page=9)


async def test_output_dir_unwritable_is_output_error(
    h: Harness, pdfs: dict[str, Path], tmp_path: Path
) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("x")
    ctx = await h.context("pdf.transcribe", {"path": str(pdfs["text"])})
    ctx.output_dir = blocker / "out"  # a file where a folder should be
    with pytest.raises(JobFailed) as info:
        await pdf.transcribe(ctx, pdf_params.TranscribeParams(path=str(pdfs["text"])))
    assert info.value.code == "OUTPUT_ERROR"


# -- splitting -----------------------------------------------------------------------


async def test_split_pages() -> None:
    assert pdf_parts.split_pages(0, 200, 2) == []
    assert pdf_parts.split_pages(10, 200, 2) == [(0, 10)]  # too small to be worth a second part
    # More than one round of parts: the last round is cut into quarters, so both
    # cores end within a small part of each other.
    assert pdf_parts.split_pages(2400, 200, 2) == [(i, i + 200) for i in range(0, 2000, 200)] + [
        (i, i + 50) for i in range(2000, 2400, 50)
    ]
    assert pdf_parts.split_pages(300, 200, 2) == [(0, 150), (150, 300)]
    assert pdf_parts.split_pages(100, 200, 4) == [(0, 25), (25, 50), (50, 75), (75, 100)]
    assert pdf_parts.split_pages(5, 1, 2) == [(i, i + 1) for i in range(5)]
    # A whole number of parts per core, sizes within one page: 5 parts of 200 would
    # leave a core idle for the last fifth of a document alone (or last in a folder).
    assert [b - a for a, b in pdf_parts.split_pages(1000, 200, 2)] == [167] * 4 + [
        42,
        42,
        41,
        41,
    ] * 2
    assert [b - a for a, b in pdf_parts.split_pages(20, 8, 2, min_part=1)] == [5, 5] + [
        2,
        1,
        1,
        1,
    ] * 2
    # a tail part is never cut below min_part
    assert [b - a for a, b in pdf_parts.split_pages(45, 4, 2)] == [4] * 9 + [3] * 3
    assert pdf_parts.split_pages(10, 8, 2, min_part=1) == [(0, 5), (5, 10)]
    for n in (1, 7, 33, 1001):
        parts = pdf_parts.split_pages(n, 13, 3)
        assert parts[0][0] == 0 and parts[-1][1] == n
        assert all(a < b for a, b in parts) and all(
            parts[i][1] == parts[i + 1][0] for i in range(len(parts) - 1)
        )


async def test_output_stem_is_bounded() -> None:
    sha = "ab" * 32
    assert pdf.output_stem("/x/Bericht 2024.pdf", sha) == "Bericht 2024-abababababab"
    assert len(pdf.output_stem("/x/" + "ü" * 300 + ".pdf", sha).encode()) <= 120 + 13


# -- cancel --------------------------------------------------------------------------


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] not in ("Z", "X")
    except FileNotFoundError:
        return False


@pytest.mark.parametrize("how", ["task", "event"])
async def test_cancel_mid_document_stops_within_2s_and_kills_processes(
    h: Harness, big_pdf: Path, how: str
) -> None:
    pool = ProcessPool(2, initializer=pdf_open.warm)
    await pool.warm()
    pids = list(pool.processes)
    try:
        ctx = await h.context("pdf.transcribe", {"path": str(big_pdf)}, pool=pool)
        params = pdf_params.TranscribeParams(path=str(big_pdf), force_ocr=True, pages_per_part=320)
        task = asyncio.create_task(pdf.transcribe(ctx, params))

        async def parts_running() -> bool:  # every process busy with a part
            return len(pool.running) == 2 and ctx.progress_writes >= 1

        await wait_for(parts_running, timeout=30, what="parts to start")
        t0 = time.monotonic()
        if how == "task":
            task.cancel()
            with pytest.raises(asyncio.CancelledError):
                await task
        else:
            ctx.cancel_event.set()
            with pytest.raises(JobCancelled):
                await task
        elapsed = time.monotonic() - t0
        assert elapsed < 2.0, elapsed
        assert not any(_alive(pid) for pid in pids), [p for p in pids if _alive(p)]
        assert pool.processes == []
        ctx.close()
    finally:
        await pool.close()
    job = await h.store.get_job(ctx.job_id)
    assert job is not None and job.status == JobStatus.PROCESSING  # the engine records the end


# -- through the engine --------------------------------------------------------------

ENGINE_FAST: dict[str, Any] = {
    "poll_interval": 0.05,
    "heartbeat_interval": 0.1,
    "watchdog_interval": 0.1,
    "lease_seconds": 30,
    "cpu_workers": 2,
    "concurrency": 4,
}


async def test_folder_through_the_engine(pdfs: dict[str, Path], tmp_path: Path) -> None:
    """A folder of good and bad PDFs: good ones complete, each bad one fails with its
    code after one attempt, and the batch finishes; a re-run does nothing."""
    import shutil

    from jobtui.engine.config import Settings
    from jobtui.engine.registry import default_registry
    from jobtui.engine.worker import Engine

    folder = tmp_path / "in"
    folder.mkdir()
    for key in ("text", "mixed", "zero", "png", "empty", "encrypted", "garbage"):
        shutil.copy(pdfs[key], folder / f"{key}.pdf")
    store = SQLiteStore(tmp_path / "jobs.db")
    await store.open()
    eng = Engine(store, default_registry(), Settings(output_dir=tmp_path / "out", **ENGINE_FAST))
    await eng.start()
    try:
        rep = await api_of(eng).enqueue_paths([str(folder)])
        assert len(rep.job_ids) == 7
        await asyncio.wait_for(eng.wait_batch(rep.batch_id, poll=0.05), 60)  # type: ignore[arg-type]
        jobs = {Path(j.parameters["path"]).stem: j for j in await store.list_jobs(limit=100)}
        assert {k: j.status.value for k, j in jobs.items()} == {
            "text": "completed",
            "mixed": "completed",
            "zero": "completed",
            "png": "failed",
            "empty": "failed",
            "encrypted": "failed",
            "garbage": "failed",
        }
        assert {k: j.error.code for k, j in jobs.items() if j.error} == {
            "png": "NOT_A_PDF",
            "empty": "PDF_EMPTY",
            "encrypted": "PDF_ENCRYPTED",
            "garbage": "PDF_CORRUPT",
        }
        assert all(j.attempts == 1 for j in jobs.values())  # bad input is never retried
        summary = jobs["mixed"].summary()
        assert (summary["pages"], summary["ocr_pages"]) == (4, 2) and summary["chars"] > 0
        assert jobs["zero"].results["pages"] == 0  # type: ignore[index]
        again = await api_of(eng).enqueue_paths([str(folder)])
        assert again.job_ids == [] and len(again.duplicates) == 7
    finally:
        await eng.stop(grace=5)
        await store.close()


async def test_engine_cancel_stops_a_running_document(big_pdf: Path, tmp_path: Path) -> None:
    from jobtui.engine.config import Settings
    from jobtui.engine.registry import default_registry
    from jobtui.engine.worker import Engine

    store = SQLiteStore(tmp_path / "jobs.db")
    await store.open()
    eng = Engine(store, default_registry(), Settings(output_dir=tmp_path / "out", **ENGINE_FAST))
    await eng.start()
    try:
        res = await api_of(eng).enqueue(
            "pdf.transcribe", [{"path": str(big_pdf), "force_ocr": True, "pages_per_part": 320}]
        )
        job_id = res.job_ids[0]

        async def busy() -> bool:
            j = await store.get_job(job_id)
            return bool(j and j.progress and eng._pool is not None and eng._pool.running)

        await wait_for(busy, timeout=30, what="the document's parts to run")
        t0 = time.monotonic()
        await api_of(eng).cancel_job(job_id)

        async def cancelled() -> bool:
            j = await store.get_job(job_id)
            return bool(j and j.status == JobStatus.CANCELLED)

        await wait_for(cancelled, timeout=5, interval=0.01, what="cancelled")
        assert time.monotonic() - t0 < 2.0
    finally:
        await eng.stop(grace=5)
        await store.close()


async def test_ocr_part_size_follows_the_sampled_scans() -> None:
    """About one OCR page a part: a scanned document goes page by page (the cores end
    within a page of each other), the text pages between sparse scans share a part,
    and a text document keeps the big parts (0: no OCR expected)."""
    assert pdf_parts.ocr_part_size(2400, 8) == 1
    assert pdf_parts.ocr_part_size(3, 3) == 1  # short: all of its pages sampled
    assert pdf_parts.ocr_part_size(2400, 2) == 4
    assert pdf_parts.ocr_part_size(2400, 1) == 8
    assert pdf_parts.ocr_part_size(4, 2) == 2
    assert pdf_parts.ocr_part_size(2400, 0) == 0
    assert pdf_parts.ocr_part_size(0, 0) == 0
    assert pdf_parts.ocr_part_size(2400, 0, force_ocr=True) == 1


async def test_scanned_document_runs_a_part_per_page(
    h: Harness, pdfs: dict[str, Path], tmp_path: Path
) -> None:
    """Each scanned page is a part of its own; the transcript is byte for byte the one
    written from all pages at once, and a text document is not split that finely."""
    from jobtui.engine.processors import pdf_output as po

    res = await h.run("pdf.transcribe", path=pdfs["scans"])
    assert res["pages"] == 5 and res["ocr_pages"] == 5 and res["parts"] == 5
    path, sha = str(pdfs["scans"]), res["sha256"]
    records = px.extract_range(path, 0, 5, {"languages": "deu+eng", "dpi": 300})
    whole = po.transcript_doc(path, sha, 5, "deu+eng", records)
    md, js = po.write_transcript(str(tmp_path), "whole", pdfs["scans"].name, whole)
    assert Path(res["markdown_path"]).read_bytes() == Path(md).read_bytes()
    assert Path(res["json_path"]).read_bytes() == Path(js).read_bytes()
    job_id = (await h.store.list_jobs(limit=1000))[-1].job_id
    assert any(
        "OCR expected on 5 of 5 pages; one OCR page a part" in m for m in await h.logs_of(job_id)
    )
    text = await h.run("pdf.transcribe", path=pdfs["many"])  # 45 text pages: one call
    assert text["parts"] == 1 and text["ocr_pages"] == 0


@pytest.mark.parametrize("doc", ["mixed", "sparse"])
async def test_short_document_ocrs_exactly_its_scans_in_parallel_parts(
    h: Harness, pdfs: dict[str, Path], tmp_path: Path, doc: str
) -> None:
    """A short document is not sampled: its extraction finds the pages that need OCR,
    and each of them gets a part of its own (run at the same time), even where a
    sample would have missed them all ("sparse": scans on pages 2 and 4 of 20). The
    transcript is byte for byte the one written from all pages at once."""
    from jobtui.engine.processors import pdf_output as po

    if doc == "sparse":
        assert px.probe(str(pdfs[doc]), None, pdf_parts.PROBE_SAMPLE)["scans"] == 0
    res = await h.run("pdf.transcribe", path=pdfs[doc])
    n = res["pages"]
    assert res["ocr_pages"] == 2 and res["parts"] == 2
    data = json.loads(Path(res["json_path"]).read_text(encoding="utf-8"))
    assert [p["page"] for p in data["pages"] if p["ocr"]] == [2, 4]
    assert "Übung" in data["pages"][3]["text"]
    path, sha = str(pdfs[doc]), res["sha256"]
    records = px.extract_range(path, 0, n, {"languages": "deu+eng", "dpi": 300})
    whole = po.transcript_doc(path, sha, n, "deu+eng", records)
    md, js = po.write_transcript(str(tmp_path), "whole", pdfs[doc].name, whole)
    assert Path(res["markdown_path"]).read_bytes() == Path(md).read_bytes()
    assert Path(res["json_path"]).read_bytes() == Path(js).read_bytes()
    logs = await h.logs_of((await h.store.list_jobs(limit=1000))[-1].job_id)
    assert f"OCR expected on 2 of {n} pages; one OCR page a part" in logs
    most = max(3, n - 3)  # pages 1-3, then 4 to the end
    assert f"transcribe: {n} pages in 2 parts of up to {most} pages" in logs
    assert "OCR (deu+eng) used on 2 pages: 2, 4" in logs


async def test_probe_and_extract_finds_the_pages_to_ocr(pdfs: dict[str, Path]) -> None:
    """Up to ``max_pages``: extracted when no page needs OCR, else the exact pages to
    OCR (every page with ``force_ocr``, without extracting); longer: sampled."""
    opts = {"ocr": True, "force_ocr": False, "languages": "deu+eng", "dpi": 300}
    text = px.probe_and_extract(str(pdfs["text"]), None, 8, opts, 64)
    assert "scans" not in text and "ocr_pages" not in text
    assert [r["text"].strip() for r in text["records"]] == TEXT_PAGES
    assert text["summary"] == {
        "chars": sum(len(r["text"]) for r in text["records"]),
        "ocr": [],
        "no_text": [],
        "notes": [],
    }
    mixed = px.probe_and_extract(str(pdfs["mixed"]), None, 8, opts, 64)
    assert mixed["ocr_pages"] == [2, 4] and "summary" not in mixed and "records" not in mixed
    forced = px.probe_and_extract(str(pdfs["text"]), None, 8, {**opts, "force_ocr": True}, 64)
    assert forced["ocr_pages"] == [1, 2, 3] and "summary" not in forced
    off = px.probe_and_extract(str(pdfs["mixed"]), None, 0, {**opts, "ocr": False}, 64)
    assert off["summary"]["no_text"] == [2, 4] and off["summary"]["ocr"] == []
    long = px.probe_and_extract(str(pdfs["mixed"]), None, 8, opts, 3)
    assert long["scans"] == 2 and "ocr_pages" not in long and "summary" not in long
    assert px.probe_and_extract(str(pdfs["zero"]), None, 8, opts, 64)["summary"]["chars"] == 0


async def test_ocr_ranges_start_a_part_at_each_ocr_page() -> None:
    assert pdf_parts.ocr_ranges(20, [2, 4]) == [(0, 3), (3, 20)]
    assert pdf_parts.ocr_ranges(4, [2, 4]) == [(0, 3), (3, 4)]
    assert pdf_parts.ocr_ranges(5, [1, 2, 3, 4, 5]) == [(0, 1), (1, 2), (2, 3), (3, 4), (4, 5)]
    assert pdf_parts.ocr_ranges(9, [7]) == [(0, 9)]
    assert pdf_parts.ocr_ranges(9, [1, 3, 5, 7], per_part=2) == [(0, 4), (4, 9)]


async def test_summary_says_what_the_page_records_say() -> None:
    """The handler gets a summary instead of the page records: the same counts, pages
    and logged records, merged over parts in page order."""
    from jobtui.engine.processors import pdf_output as po

    records: list[dict[str, Any]] = [
        {"page": 1, "text": "ab", "chars": 2, "ocr": False},
        {"page": 2, "text": "xyz", "chars": 3, "ocr": True, "dpi_lowered": [300, 120]},
        {"page": 3, "text": "", "chars": 0, "ocr": False, "no_text_layer": True},
        {"page": 4, "text": "", "chars": 0, "ocr": False, "error": "OCR failed: boom"},
        {"page": 5, "text": "q", "chars": 1, "ocr": True},
    ]
    merged = po.merge_summaries([po.summarize(records[:2]), po.summarize(records[2:])])
    assert merged == po.summarize(records)
    assert merged["chars"] == 6 and merged["ocr"] == [2, 5] and merged["no_text"] == [3]
    notes = [{k: v for k, v in r.items() if k != "text"} for r in (records[1], records[3])]
    assert merged["notes"] == notes


async def test_probe_samples_scanned_pages(pdfs: dict[str, Path]) -> None:
    """The probe's sample decides the OCR part size (progress keeps moving on scans)."""
    assert px.probe(str(pdfs["mixed"]), None, 8)["scans"] == 2
    assert px.probe(str(pdfs["text"]), None, 8)["scans"] == 0
    assert px.probe(str(pdfs["zero"]), None, 8)["scans"] == 0
    assert px.probe(str(pdfs["text"]), None)["scans"] == 0  # no sample asked
    many = px.probe(str(pdfs["many"]), None, 8)
    assert many["pages"] == 45 and many["repaired"] is False


async def test_markdown_ocrs_scanned_pages(h: Harness, pdfs: dict[str, Path]) -> None:
    res = await h.run("pdf.markdown", path=pdfs["scan"])
    assert res["ocr_pages"] == 1
    md = Path(res["markdown_path"]).read_text(encoding="utf-8")
    assert "Übung" in md and "schön" in md


async def test_input_roots_refuse_paths_outside(
    h: Harness, pdfs: dict[str, Path], tmp_path: Path
) -> None:
    ctx = await h.context("pdf.transcribe", {"path": str(pdfs["text"])})
    ctx.settings = {"input_roots": [str(tmp_path)]}
    with pytest.raises(JobFailed) as info:
        await pdf.transcribe(ctx, pdf_params.TranscribeParams(path=str(pdfs["text"])))
    assert info.value.code == "PATH_NOT_ALLOWED"
    ctx.settings = {"input_roots": [str(pdfs["text"].parent)]}
    assert (await pdf.transcribe(ctx, pdf_params.TranscribeParams(path=str(pdfs["text"]))))[
        "pages"
    ] == 3


async def test_structure_markdown_lead_in_lists_and_contents_lines() -> None:
    pages = [
        {
            "page": 1,
            "blocks": [
                [11.0, False, ["The main features are:", "• fast", "• small and", "portable"]],
                [11.0, False, ["1 Introduction . . . . . . 1", "2.1", "Usage . . . . . . . 12"]],
            ],
        }
    ]
    md = structure_markdown(pages, "doc")
    assert "The main features are:\n\n- fast\n- small and portable" in md
    assert "1 Introduction . . . . . . 1\n\n2.1 Usage . . . . . . . 12" in md
