"""Audio and video job types: ``audio.transcribe``, ``video.transcribe``, ``video.slides``.

They need the optional extra (``pip install 'jobtui[audio]'``: faster-whisper and
PyAV, ~460 MB), so the base install stays small. Without it ``register`` registers
none of them and says so in the log; ``jobtui doctor`` then reports how to get them
(``MISSING_EXTRA_HINT``). Modules here that run in worker processes (``decode``,
``speech``, ``slides``) import the heavy libraries only on first use.
"""

from __future__ import annotations

import importlib.util
import logging
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from jobtui.engine.registry import Registry

log = logging.getLogger(__name__)

EXTRA = "audio"
MISSING_EXTRA_HINT = "pip install 'jobtui[audio]' (faster-whisper and PyAV)"
REQUIRES = ("faster_whisper", "av", "numpy")

AUDIO_EXTENSIONS = frozenset(
    {".wav", ".mp3", ".m4a", ".aac", ".flac", ".ogg", ".oga", ".opus", ".wma", ".aiff", ".aif"}
)
VIDEO_EXTENSIONS = frozenset(
    {".mp4", ".mkv", ".webm", ".mov", ".avi", ".m4v", ".mpg", ".mpeg", ".wmv", ".ts", ".flv"}
)
# Modules the CPU worker processes import once, in the fork server they start from.
# Only this package's light modules: the heavy libraries (faster-whisper ~0.7 s with
# CTranslate2 and onnxruntime, PyAV, numpy) are imported by a worker process on its
# first audio or video task. The fork server loads every registered type's preload
# before it forks its first process, so preloading them here made every run, a folder
# of PDFs too, wait ~1 s for its first worker; and a warm-up (``worker_warm``) runs in
# every new process whatever the job type. Once per process is small next to
# transcribing a recording.
WORKER_PRELOAD = (
    "jobtui.engine.processors.media.decode",
    "jobtui.engine.processors.media.speech",
    "jobtui.engine.processors.media.slides",
)


def missing() -> list[str]:
    """The extra's modules that cannot be imported here (empty: all present)."""
    return [name for name in REQUIRES if importlib.util.find_spec(name) is None]


def register(registry: Registry) -> None:
    """Entry point of the ``audio`` plug-in (pyproject's ``jobtui.handlers``)."""
    absent = missing()
    if absent:
        log.info(
            "audio and video job types not registered (%s not installed): %s",
            ", ".join(absent),
            MISSING_EXTRA_HINT,
        )
        registry.unavailable(
            "audio",
            "audio.transcribe, video.transcribe, video.slides not installed "
            f"({', '.join(absent)} missing): {MISSING_EXTRA_HINT}",
        )
        return
    from jobtui.engine.processors.media import checks, slides_job, transcribe
    from jobtui.engine.processors.ocr import tesseract_check
    from jobtui.engine.registry import FileTypes

    common: dict[str, Any] = {
        "worker_preload": WORKER_PRELOAD,
        "checks": (checks.speech_check,),
    }
    registry.handler(
        "audio.transcribe",
        params=transcribe.TranscribeParams,
        files=FileTypes(extensions=AUDIO_EXTENSIONS, path_param="path", auto=True),
        **common,
    )(transcribe.transcribe)
    registry.handler(
        "video.transcribe",
        params=transcribe.TranscribeParams,
        files=FileTypes(extensions=VIDEO_EXTENSIONS, path_param="path", auto=True),
        **common,
    )(transcribe.transcribe)
    registry.handler(
        "video.slides",
        params=slides_job.SlidesParams,
        files=FileTypes(extensions=VIDEO_EXTENSIONS, path_param="path", auto=False),
        worker_preload=WORKER_PRELOAD,
        checks=(tesseract_check,),
    )(slides_job.slides_handler)
