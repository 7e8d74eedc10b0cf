"""Regenerate examples/pdfs: a text PDF and a scanned (image-only) German page."""

from __future__ import annotations

from pathlib import Path

import pymupdf

OUT = Path(__file__).resolve().parents[1] / "examples" / "pdfs"


def main() -> None:
    OUT.mkdir(parents=True, exist_ok=True)
    doc = pymupdf.open()
    for n, text in enumerate(
        [
            "jobtui example, page one.\nEvery page is transcribed in order.",
            "Page two.\nText PDFs need no OCR.",
        ],
        1,
    ):
        page = doc.new_page()
        page.insert_text((72, 72), text, fontsize=12)
    doc.save(OUT / "text.pdf", garbage=4, deflate=True)

    # A "scan": render German text to a picture, then put only the picture in a PDF.
    src = pymupdf.open()
    page = src.new_page(width=420, height=200)
    page.insert_text((20, 60), "Größe und Übung", fontsize=28)
    page.insert_text((20, 120), "schöne Grüße", fontsize=28)
    pix = page.get_pixmap(dpi=150, colorspace=pymupdf.csGRAY)
    scan = pymupdf.open()
    spage = scan.new_page(width=420, height=200)
    spage.insert_image(spage.rect, stream=pix.tobytes("png"))
    scan.save(OUT / "scan-deu.pdf", garbage=4, deflate=True)


if __name__ == "__main__":
    main()
