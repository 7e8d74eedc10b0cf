"""The parameters of the PDF job types ``pdf.transcribe``, ``pdf.markdown`` and
``pdf.render`` (their handlers are in ``pdf``)."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field, model_validator

from jobtui.engine.inputs import InputPath
from jobtui.engine.processors.ocr import DEFAULT_LANGUAGES, LANGUAGES_PATTERN


class PdfParams(BaseModel):
    """Parameters every PDF job type shares. Unknown keys are refused (typos show)."""

    # Built on first use, not at start (every registered type's parameters model is
    # imported with its handler; a run uses one or two of them).
    model_config = ConfigDict(extra="forbid", defer_build=True)

    path: InputPath  # any file name, UTF-8 or not
    # for encrypted PDFs; never echoed in results or logs, redacted wherever shown
    password: str | None = Field(None, json_schema_extra={"secret": True})
    sha256: str | None = Field(None, pattern=r"^[0-9a-f]{64}$")  # set by enqueue
    pages_per_part: int = Field(200, ge=1, le=1_000_000)


class OcrParams(PdfParams):
    languages: str = Field(DEFAULT_LANGUAGES, pattern=LANGUAGES_PATTERN)
    ocr: bool = True  # OCR pages that have no text layer but have images
    force_ocr: bool = False  # OCR every page, even those with a text layer
    dpi: int = Field(300, ge=72, le=600)  # OCR resolution


class TranscribeParams(OcrParams):
    pass


class MarkdownParams(OcrParams):
    pass


class RenderParams(PdfParams):
    dpi: int = Field(150, ge=10, le=1200)
    first_page: int | None = Field(None, ge=1)  # 1-based, inclusive
    last_page: int | None = Field(None, ge=1)  # 1-based, inclusive

    @model_validator(mode="after")
    def _ordered(self) -> RenderParams:
        if self.first_page and self.last_page and self.first_page > self.last_page:
            raise ValueError("first_page is after last_page")
        return self
