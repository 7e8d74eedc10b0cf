"""Speech work inside the engine's worker processes: find the pauses, detect the
language, transcribe one part.

A long recording is planned once (voice activity over the whole file, decoded in
ten-minute pieces so memory stays small), cut at pauses into parts of a few minutes,
and the parts run as separate tasks across the pool: two processes with one thread
each on half the audio each were 1.8x faster than one process, where two threads in
one process gained 8 %. So every process loads the model once (kept across tasks)
with one CTranslate2 thread.

The speech engine is reached only through ``load_model(model_dir, compute_type)``,
which returns an object with faster-whisper's ``transcribe`` and ``detect_language``;
tests replace it in their worker processes with a fake one.
"""

from __future__ import annotations

from typing import Any

from jobtui.engine.processors.media.decode import (
    SAMPLE_RATE,
    ErrorCode,
    audio_chunks,
    fail,
    load_audio,
)

LANGUAGE_SAMPLE_SECONDS = 30.0  # Whisper decides the language from one 30 s window
PAUSE_MIN_SECONDS = 0.5  # a cut needs at least this much silence (Silero: 2 s default)

# (model_dir, compute_type) -> the loaded model; one at a time per process.
_MODELS: dict[tuple[str, str], Any] = {}


def warm() -> None:
    """Worker warm-up: import faster-whisper (~1 s: CTranslate2, onnxruntime) once."""
    import faster_whisper  # noqa: F401


def _load_faster_whisper(model_dir: str, compute_type: str) -> Any:
    from faster_whisper import WhisperModel

    # One thread: parts run in parallel processes instead (see the module's docstring).
    return WhisperModel(model_dir, device="cpu", compute_type=compute_type, cpu_threads=1)


load_model = _load_faster_whisper  # replaced by tests (their fake speech engine)


def model(model_dir: str, compute_type: str) -> Any:
    """The process's model, loaded on first use and kept for later parts and jobs."""
    key = (model_dir, compute_type)
    if key not in _MODELS:
        _MODELS.clear()  # another model replaces it: two would double the memory
        try:
            _MODELS[key] = load_model(model_dir, compute_type)
        except (RuntimeError, ValueError, OSError) as exc:
            raise fail(
                ErrorCode.MODEL_UNAVAILABLE,
                f"cannot load the speech model in {model_dir}: {exc}",
                model_dir,
            ) from None
    return _MODELS[key]


def ensure_model(model_dir: str, compute_type: str) -> None:
    """Load the model in this process now (a pool task: the model itself stays here)."""
    model(model_dir, compute_type)


# -- planning ------------------------------------------------------------------------


def speech_spans(path: str) -> tuple[float, list[tuple[float, float]]]:
    """The decoded duration and the spans of speech ``[(start, end), ...]`` in seconds."""
    from faster_whisper.vad import VadOptions, get_speech_timestamps

    opts = VadOptions(min_silence_duration_ms=int(PAUSE_MIN_SECONDS * 1000), speech_pad_ms=200)
    spans: list[tuple[float, float]] = []
    duration = 0.0
    for offset, samples in audio_chunks(path):
        for ts in get_speech_timestamps(samples, opts):
            a, b = offset + ts["start"] / SAMPLE_RATE, offset + ts["end"] / SAMPLE_RATE
            if spans and a - spans[-1][1] < PAUSE_MIN_SECONDS:  # across a chunk boundary
                spans[-1] = (spans[-1][0], b)
            else:
                spans.append((a, b))
        duration = offset + len(samples) / SAMPLE_RATE
    return duration, [(round(a, 3), round(b, 3)) for a, b in spans]


def plan_parts(
    duration: float, spans: list[tuple[float, float]], part_seconds: float
) -> list[tuple[float, float]]:
    """Contiguous ``[start, end)`` parts covering ``[0, duration]``, each cut in a
    pause after at least ``part_seconds`` of recording (a speech span longer than
    that is not cut: a part then holds it whole). Pure: tests check it directly."""
    if duration <= 0:
        return []
    cuts: list[float] = []
    part_start = 0.0
    for (_, end), (nxt, _) in zip(spans, spans[1:], strict=False):
        if end - part_start >= part_seconds:
            cut = round((end + nxt) / 2, 3)  # the middle of the pause: never in speech
            cuts.append(cut)
            part_start = cut
    bounds = [0.0, *cuts, duration]
    return [(a, b) for a, b in zip(bounds, bounds[1:], strict=False) if b > a]


def plan(path: str, part_seconds: float) -> dict[str, Any]:
    """Voice activity over the whole file, and the parts to run."""
    duration, spans = speech_spans(path)
    return {
        "duration": round(duration, 3),
        "speech": round(sum(b - a for a, b in spans), 3),
        "spans": spans,
        "parts": plan_parts(duration, spans, part_seconds),
    }


# -- language and parts --------------------------------------------------------------


def detect_language(
    path: str, spans: list[tuple[float, float]], model_dir: str, compute_type: str
) -> dict[str, Any]:
    """The language of the first ~30 s of speech (pauses left out), with its probability."""
    import numpy as np

    pieces, have = [], 0.0
    for a, b in spans:
        b = min(b, a + LANGUAGE_SAMPLE_SECONDS - have)
        pieces.append(load_audio(path, a, b))
        have += b - a
        if have >= LANGUAGE_SAMPLE_SECONDS:
            break
    if not pieces:
        return {"language": None, "probability": None}
    m = model(model_dir, compute_type)
    language, probability, _ = m.detect_language(audio=np.concatenate(pieces))
    return {"language": language, "probability": round(float(probability), 4)}


def _words(seg: Any, offset: float) -> list[dict[str, Any]] | None:
    if not getattr(seg, "words", None):
        return None
    return [
        {
            "start": round(w.start + offset, 3),
            "end": round(w.end + offset, 3),
            "word": w.word,
            "probability": round(float(w.probability), 4),
        }
        for w in seg.words
    ]


def transcribe_part(path: str, start: float, end: float, opts: dict[str, Any]) -> dict[str, Any]:
    """Segments of ``[start, end)`` with times from the recording's start.

    ``opts``: ``model_dir``, ``compute_type``, ``language`` (None: detect here, for a
    recording of one part), ``task``, ``beam_size``, ``word_timestamps``,
    ``initial_prompt``.
    """
    audio = load_audio(path, start, end)
    m = model(opts["model_dir"], opts["compute_type"])
    segments, info = m.transcribe(
        audio,
        language=opts.get("language"),
        task=opts.get("task", "transcribe"),
        beam_size=opts.get("beam_size", 5),
        word_timestamps=bool(opts.get("word_timestamps")),
        initial_prompt=opts.get("initial_prompt"),
        # Not a job parameter: the benchmark's random-weight model turns the fallback
        # off (its noise would always fall back). Jobs keep faster-whisper's default.
        **({"temperature": opts["temperature"]} if "temperature" in opts else {}),
        vad_filter=True,  # leaves out this part's pauses (the plan found them already)
        vad_parameters={"min_silence_duration_ms": int(PAUSE_MIN_SECONDS * 1000)},
    )
    out = []
    for seg in segments:  # a generator: the decoding happens here
        text = seg.text.strip()
        if not text:
            continue
        # Timestamps past the part's end happen (a model's last window): clamped, so
        # parts never overlap and every segment has start <= end.
        seg_start = min(seg.start + start, end)
        rec: dict[str, Any] = {
            "start": round(seg_start, 3),
            "end": round(min(max(seg.end + start, seg_start), end), 3),
            "text": text,
        }
        words = _words(seg, start)
        if words is not None:
            rec["words"] = words
        out.append(rec)
    return {
        "start": start,
        "end": end,
        "segments": out,
        "language": info.language,
        "language_probability": round(float(info.language_probability), 4),
    }
