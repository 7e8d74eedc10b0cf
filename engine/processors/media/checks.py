"""``jobtui doctor`` checks the audio and video types declare.

``speech_check``: the speech model is where jobs will look for it (or will be
downloaded, or cannot be, offline). The slide OCR shares the PDF processor's
Tesseract check (``processors.ocr``), declared by ``video.slides`` directly.
"""

from __future__ import annotations

import asyncio
import shutil

from jobtui.engine.checks import FAIL, OK, WARN, Check, CheckContext
from jobtui.engine.processors.media.models import (
    MODEL_SIZES_MB,
    ModelSettings,
    how_to_get,
    local_model,
    looks_like_path,
)


def _size_mb(path: object) -> int:
    from pathlib import Path

    return round(sum(f.stat().st_size for f in Path(str(path)).glob("*") if f.is_file()) / 1e6)


async def speech_check(ctx: CheckContext) -> list[Check]:
    """The model ``audio.transcribe`` and ``video.transcribe`` will load."""
    settings = ModelSettings.from_env()
    model = str(ctx.option("speech_model", settings.model))
    found = await asyncio.to_thread(local_model, model, settings.models_dir)
    if found is not None:
        mb = await asyncio.to_thread(_size_mb, found)
        return [Check("speech", OK, f"model '{model}' in {found} ({mb} MB)")]
    fix = how_to_get(model, settings)
    if looks_like_path(model):
        return [Check("speech", FAIL, f"model folder {model} holds no model", fix)]
    size = MODEL_SIZES_MB.get(model)
    about = f" (~{size} MB)" if size else ""
    if settings.offline:
        return [
            Check(
                "speech",
                FAIL,
                f"model '{model}'{about} is not in {settings.models_dir} and downloads "
                "are off: audio/video transcription jobs fail MODEL_UNAVAILABLE",
                fix,
            )
        ]
    free = shutil.disk_usage(_existing(settings.models_dir)).free // 1_000_000
    return [
        Check(
            "speech",
            WARN,
            f"model '{model}'{about} is not in {settings.models_dir}: the first job "
            f"downloads it ({free} MB free there)",
            f"jobtui models pull {model} (ahead of a batch), or JOBTUI_AUDIO_OFFLINE=1 "
            "to forbid downloads",
        )
    ]


def _existing(path: object) -> str:
    from pathlib import Path

    p = Path(str(path))
    while not p.exists() and p != p.parent:
        p = p.parent
    return str(p)
