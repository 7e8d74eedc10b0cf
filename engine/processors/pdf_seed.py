"""``pdf``: the seed's PDF job documents, run as ``pdf.transcribe`` (and ``pdf.render``).

The seed's plan enqueued PDF work as ``{"job_type": "pdf", "parameters": {"extra":
{"file_path", "extraction_method", "include_images", "template", "context"}}}``.
Those documents run here with their parameters mapped onto jobtui's:

* ``file_path`` -> ``path``
* ``extraction_method``: ``native`` -> no OCR; ``ocr`` -> OCR every page; ``both``
  (or none) -> OCR where a page has no text layer.
* ``include_images: true`` -> the pages are also rendered to PNG (``pdf.render``).

What jobtui cannot do fails the job with ``UNSUPPORTED_PARAMETER`` naming the
parameter, never silently ignored: ``template`` and ``context`` (an LLM
transformation of the text) and LLM extraction methods.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict

from jobtui.engine.context import JobContext
from jobtui.engine.errors import JobFailed
from jobtui.engine.models import ErrorCode
from jobtui.engine.registry import Registry

#: seed extraction method -> pdf.transcribe options
METHODS: dict[str, dict[str, bool]] = {
    "native": {"ocr": False},
    "ocr": {"force_ocr": True},
    "tesseract_ocr": {"force_ocr": True},
    "both": {},
    "native_and_ocr": {},
    "auto": {},
}
#: seed parameters jobtui cannot honour, and why
UNSUPPORTED = {
    "template": "a template is an LLM transformation of the text",
    "context": "a context steers an LLM transformation of the text",
}


class SeedPdfParams(BaseModel):
    """The seed's shape: options under ``extra`` (or, flattened, beside it)."""

    model_config = ConfigDict(extra="allow", defer_build=True)

    extra: dict[str, Any] = {}

    def options(self) -> dict[str, Any]:
        flat = {k: v for k, v in (self.model_extra or {}).items()}
        return {**flat, **self.extra}


def _unsupported(name: str, value: Any, why: str) -> JobFailed:
    return JobFailed(
        ErrorCode.UNSUPPORTED_PARAMETER,
        f"parameter {name}={value!r} cannot be honoured: {why}; "
        "jobtui extracts text with PyMuPDF and Tesseract only",
        {"parameter": name},
    )


def mapped(options: dict[str, Any]) -> tuple[dict[str, Any], bool]:
    """(pdf.transcribe parameters, whether to render page images) from the seed's
    options; raises ``JobFailed(UNSUPPORTED_PARAMETER)`` for what cannot be done."""
    for name, why in UNSUPPORTED.items():
        if options.get(name) not in (None, "", {}, []):
            raise _unsupported(name, options[name], why)
    path = options.get("file_path") or options.get("path")
    if not path:
        raise JobFailed(
            ErrorCode.INVALID_PARAMETERS, "a seed pdf job needs parameters.extra.file_path"
        )
    method = str(options.get("extraction_method") or "both").lower()
    if method not in METHODS:
        raise _unsupported(
            "extraction_method", method, f"known methods are {', '.join(sorted(METHODS))}"
        )
    params: dict[str, Any] = {"path": str(path), **METHODS[method]}
    return params, bool(options.get("include_images"))


async def seed_pdf(ctx: JobContext, p: SeedPdfParams) -> dict[str, Any]:
    """The seed's ``pdf`` job: transcribe (and render, with ``include_images``)."""
    from jobtui.engine.processors.pdf import render, transcribe
    from jobtui.engine.processors.pdf_params import RenderParams, TranscribeParams

    params, images = mapped(p.options())
    ctx.log(f"seed pdf job: running as pdf.transcribe {params}")
    results = await transcribe(ctx, TranscribeParams.model_validate(params))
    if images:
        rendered = await render(ctx, RenderParams(path=params["path"]))
        results["images"] = rendered
    return results


def register(registry: Registry, **options: Any) -> None:
    """Called from ``pdf.register`` with that plug-in's worker options."""
    registry.handler("pdf", params=SeedPdfParams, **options)(seed_pdf)
