"""``audio.transcribe`` and ``video.transcribe``: speech to text with timestamps.

The steps, each in a worker process: probe the file (bad input fails at once with a
stable code), find the speech (voice activity over the whole recording) and cut it
at pauses into parts of about ``part_seconds``, detect the language once from the
first 30 s of speech (unless given), transcribe the parts concurrently across the
pool with that one language, and assemble them in order. Progress is the seconds of
recording done of the total. Outputs go under ``ctx.output_dir`` as
``<stem>-<sha256[:12]>.<json|txt|srt|vtt|md>``, written atomically.
"""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from jobtui.engine.context import JobContext
from jobtui.engine.errors import JobFailed
from jobtui.engine.models import ErrorCode as EngineCode
from jobtui.engine.processors import pdf_output as po
from jobtui.engine.processors.media import decode, output, speech
from jobtui.engine.processors.media.decode import ErrorCode
from jobtui.engine.processors.media.models import (
    COMPUTE_TYPE,
    ModelSettings,
    local_model,
    looks_like_path,
    resolve,
)
from jobtui.engine.processors.media.parts import run_parts
from jobtui.engine.processors.pages import named_errors, note_changed, output_stem

Format = Literal["json", "txt", "srt", "vtt", "md"]
_DOWNLOADS: dict[str, asyncio.Lock] = {}  # model name -> held while it downloads


def _all_formats() -> list[Format]:
    return ["json", "txt", "srt", "vtt", "md"]


class TranscribeParams(BaseModel):
    """Parameters of ``audio.transcribe`` and ``video.transcribe``. Unknown keys are
    refused (typos show)."""

    model_config = ConfigDict(extra="forbid", defer_build=True)

    path: str = Field(min_length=1)
    sha256: str | None = Field(None, pattern=r"^[0-9a-f]{64}$")  # set by enqueue
    # "auto": detected once from the first 30 s of speech. Give it for mixed-language
    # recordings: detection on German/English audio picked English and garbled the German.
    language: str = Field("auto", pattern=r"^(auto|[a-z]{2,3})$")
    task: Literal["transcribe", "translate"] = "transcribe"  # translate: into English
    beam_size: int = Field(5, ge=1, le=20)
    word_timestamps: bool = False
    initial_prompt: str | None = Field(None, max_length=2000)  # names, spellings, jargon
    part_seconds: float = Field(300.0, ge=30.0, le=7200.0)  # cut at pauses after this long
    formats: list[Format] = Field(default_factory=_all_formats, min_length=1)
    model: str | None = Field(None, min_length=1)  # a model name or folder; default: settings

    @field_validator("formats")
    @classmethod
    def _unique(cls, v: list[str]) -> list[str]:
        return list(dict.fromkeys(v))


# Result field of each format's file: a name ending in ``_path`` marks an output
# (``engine.outputs``), so ``jobtui run`` lists and places them.
RESULT_FIELDS = {
    "json": "json_path",
    "txt": "txt_path",
    "srt": "srt_path",
    "vtt": "vtt_path",
    "md": "markdown_path",
}


def _check_language(language: str) -> None:
    if language == "auto":
        return
    from faster_whisper.tokenizer import _LANGUAGE_CODES

    if language not in _LANGUAGE_CODES:
        raise JobFailed(
            EngineCode.INVALID_PARAMETERS,
            f"language '{language}' is not one Whisper knows (e.g. de, en, fr; or auto)",
            {"language": language},
        )


async def _model_dir(ctx: JobContext, p: TranscribeParams) -> str:
    settings = ModelSettings.from_env()
    name = p.model or settings.model
    found: Path | None
    try:
        found = await asyncio.to_thread(resolve, name, settings, download=False)
    except JobFailed:
        if settings.offline or looks_like_path(name):
            raise
        # Said in the log and as the job's step: a download of hundreds of MB must
        # not look like a hang. Downloaded once, into the models folder.
        # One download per model in this engine: jobs that need it meanwhile wait
        # for it (and find it there) instead of downloading it again.
        async with _DOWNLOADS.setdefault(name, asyncio.Lock()):
            found = local_model(name, settings.models_dir)
            if found is None:
                ctx.log(
                    f"speech model '{name}' is not in {settings.models_dir}: downloading it",
                    "warning",
                )
                await ctx.progress(0.0, "model", f"downloading {name}")
                found = await asyncio.to_thread(resolve, name, settings)
    return str(found)


async def _probe(ctx: JobContext, p: TranscribeParams, path: str, read: str) -> dict[str, Any]:
    info: dict[str, Any] = await ctx.run_cpu(decode.probe, read)
    note_changed(ctx, path, p.sha256, info["sha256"])
    if not info["audio"]:
        raise decode.fail(ErrorCode.NO_AUDIO_TRACK, f"{path} has no audio track", path)
    return info


async def transcribe(ctx: JobContext, p: TranscribeParams) -> dict[str, Any]:
    """Speech to text with timestamps (JSON, TXT, SRT, WebVTT, Markdown)."""
    _check_language(p.language)
    src = ctx.open_input(p.path)  # checked as opened; pinned until the attempt ends
    with named_errors(src):
        return await _transcribe(ctx, p, str(src.path), src.read_path)


async def _transcribe(ctx: JobContext, p: TranscribeParams, path: str, read: str) -> dict[str, Any]:
    """``path``: the input's name (messages, outputs); ``read``: what workers open."""
    t0 = time.monotonic()
    info = await _probe(ctx, p, path, read)
    model_dir = await _model_dir(ctx, p)
    ctx.log(
        f"{path}: {info['format']}, {info.get('duration') or 0:.1f} s, audio "
        f"{info.get('audio_codec')} {info.get('sample_rate')} Hz; model {model_dir}"
    )
    await ctx.progress(0.0, "voice activity", "finding speech")
    plan = await ctx.run_cpu(speech.plan, read, p.part_seconds)
    expected = info.get("duration") or 0.0
    if expected and plan["duration"] < expected - max(1.0, 0.02 * expected):
        ctx.log(
            f"only {plan['duration']:.1f} s of the {expected:.1f} s the file announces could "
            "be decoded: it is probably cut off or damaged there",
            "warning",
        )
    parts: list[tuple[float, float]] = plan["parts"]
    spans: list[tuple[float, float]] = plan["spans"]
    with_speech = [(a, b) for a, b in parts if any(s < b and e > a for s, e in spans)]
    ctx.log(
        f"{plan['speech']:.1f} s of speech in {plan['duration']:.1f} s; "
        f"{len(with_speech)} part{'s' if len(with_speech) != 1 else ''} to transcribe"
    )
    language = None if p.language == "auto" else p.language
    probability: float | None = None if language is None else 1.0
    if language is None and len(with_speech) > 1:
        await ctx.progress(0.0, "language", "detecting the language")
        found = await ctx.run_cpu(speech.detect_language, read, spans, model_dir, COMPUTE_TYPE)
        language, probability = found["language"], found["probability"]
        ctx.log(f"language {language} (probability {probability})")
    opts = {
        "model_dir": model_dir,
        "compute_type": COMPUTE_TYPE,
        "language": language,
        "task": p.task,
        "beam_size": p.beam_size,
        "word_timestamps": p.word_timestamps,
        "initial_prompt": p.initial_prompt,
    }
    results = await run_parts(
        ctx,
        [(speech.transcribe_part, (read, a, b, opts)) for a, b in with_speech],
        [b - a for a, b in with_speech],
        "transcribe",
        done_weight=plan["duration"] - sum(b - a for a, b in with_speech),
    )
    if language is None and results:  # one part: it detected the language itself
        language, probability = results[0]["language"], results[0]["language_probability"]
    segments = [seg for r in results for seg in r["segments"]]
    summary = {
        "source": path,
        "sha256": info["sha256"],
        "duration": plan["duration"],
        "speech": plan["speech"],
        "language": language,
        "language_probability": probability,
        "task": p.task,
        "model": Path(model_dir).name,
    }
    out_dir = str(Path(ctx.output_dir).absolute())
    base = str(Path(out_dir) / output_stem(path, info["sha256"]))
    made = output.files(base, list(p.formats), Path(path).name, summary, segments)
    await asyncio.to_thread(po.write_files, out_dir, {f: mk for f, mk in made.values()})
    ctx.log(f"{len(segments)} segments, language {language} -> {base}.*")
    return {
        "language": language,
        "language_probability": probability,
        "duration_s": plan["duration"],
        "speech_s": plan["speech"],
        "segments": len(segments),
        "parts": len(with_speech),
        "model": Path(model_dir).name,
        **{RESULT_FIELDS[f]: pth for f, (pth, _) in made.items()},
        "sha256": info["sha256"],
        "elapsed_s": round(time.monotonic() - t0, 3),
    }
