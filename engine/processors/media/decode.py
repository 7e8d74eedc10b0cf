"""Reading media with PyAV, inside the engine's worker processes.

PyAV's wheels bundle FFmpeg, so every common audio and video format opens without a
system FFmpeg. Bad input becomes a ``JobFailed`` with a stable code: a file FFmpeg
does not recognise is ``NOT_MEDIA``, one it recognises but cannot read through is
``MEDIA_CORRUPT``, a video without sound asked for speech is ``NO_AUDIO_TRACK``.
Like ``pdf_extract``, nothing here imports pydantic or the engine's models (a fresh
worker process would pay for them); PyAV and NumPy are imported on first use.
"""

from __future__ import annotations

import hashlib
import os
import stat
from collections.abc import Iterator
from typing import Any

from jobtui.engine.errors import JobFailed

SAMPLE_RATE = 16_000  # what Whisper and its voice-activity model take
HASH_CHUNK = 1 << 20
CHUNK_SECONDS = 600.0  # audio decoded and handed on in pieces of this length (38 MB)


class ErrorCode:
    """The codes this plug-in raises, as plain strings (no pydantic in worker processes)."""

    FILE_NOT_FOUND = "FILE_NOT_FOUND"
    FILE_UNREADABLE = "FILE_UNREADABLE"
    NOT_MEDIA = "NOT_MEDIA"
    MEDIA_CORRUPT = "MEDIA_CORRUPT"
    NO_AUDIO_TRACK = "NO_AUDIO_TRACK"
    NO_VIDEO_TRACK = "NO_VIDEO_TRACK"
    MODEL_UNAVAILABLE = "MODEL_UNAVAILABLE"
    OUTPUT_ERROR = "OUTPUT_ERROR"


def fail(code: str, message: str, path: str, **details: Any) -> JobFailed:
    return JobFailed(code, message, {"path": path, **details})


def check_file(path: str) -> os.stat_result:
    try:
        st = os.stat(path)
    except (FileNotFoundError, NotADirectoryError):
        raise fail(ErrorCode.FILE_NOT_FOUND, f"no such file: {path}", path) from None
    except OSError as exc:
        raise fail(ErrorCode.FILE_UNREADABLE, f"cannot read {path}: {exc.strerror}", path) from None
    if not stat.S_ISREG(st.st_mode):
        raise fail(ErrorCode.FILE_UNREADABLE, f"{path} is not a regular file", path)
    return st


def sha256_of(path: str) -> str:
    digest = hashlib.sha256()
    try:
        with open(path, "rb") as f:
            while chunk := f.read(HASH_CHUNK):
                digest.update(chunk)
    except OSError as exc:
        raise fail(ErrorCode.FILE_UNREADABLE, f"cannot read {path}: {exc.strerror}", path) from None
    return digest.hexdigest()


def open_container(path: str) -> Any:
    """``av.open`` with FFmpeg's errors turned into codes."""
    import av

    check_file(path)
    try:
        container = av.open(path, metadata_errors="ignore")
    except av.error.InvalidDataError:
        raise fail(
            ErrorCode.NOT_MEDIA, f"{path} is not an audio or video file FFmpeg knows", path
        ) from None
    except av.error.FFmpegError as exc:
        raise fail(ErrorCode.MEDIA_CORRUPT, f"cannot open {path}: {exc}", path) from None
    except OSError as exc:
        raise fail(ErrorCode.FILE_UNREADABLE, f"cannot read {path}: {exc}", path) from None
    if not container.streams.audio and not container.streams.video:
        container.close()
        raise fail(ErrorCode.NOT_MEDIA, f"{path} holds no audio or video stream", path)
    return container


def _is_picture(stream: Any) -> bool:
    """An MP3's or M4A's cover image: a "video" stream of one attached picture."""
    import av

    return bool(stream.disposition & av.stream.Disposition.attached_pic)


def probe(path: str) -> dict[str, Any]:
    """``{size, sha256, duration, audio, video, format, ...}`` of a media file."""
    st = check_file(path)
    sha = sha256_of(path)
    with open_container(path) as container:
        audio = container.streams.audio[0] if container.streams.audio else None
        videos = [s for s in container.streams.video if not _is_picture(s)]
        video = videos[0] if videos else None
        duration = container.duration / 1_000_000 if container.duration else None
        if duration is None:
            for s in (audio, video):
                if s is not None and s.duration and s.time_base:
                    duration = float(s.duration * s.time_base)
                    break
        info: dict[str, Any] = {
            "size": st.st_size,
            "sha256": sha,
            "format": container.format.name,
            "duration": duration,
            "audio": audio is not None,
            "video": video is not None,
        }
        if audio is not None:
            info.update(
                audio_codec=audio.codec_context.name,
                sample_rate=audio.codec_context.sample_rate,
                channels=audio.codec_context.channels,
            )
        if video is not None:
            info.update(
                video_codec=video.codec_context.name,
                width=video.codec_context.width,
                height=video.codec_context.height,
                fps=float(video.average_rate) if video.average_rate else None,
            )
    return info


def audio_chunks(
    path: str, start: float = 0.0, end: float | None = None, chunk: float = CHUNK_SECONDS
) -> Iterator[tuple[float, Any]]:
    """``(offset_seconds, float32 mono 16 kHz samples)`` pieces of ``[start, end)``.

    Seeks to ``start`` (to the key frame before it, then drops the samples before
    ``start``): a part of a long recording decodes only its own stretch.
    """
    import av
    import numpy as np

    container = open_container(path)
    try:
        if not container.streams.audio:
            raise fail(ErrorCode.NO_AUDIO_TRACK, f"{path} has no audio track", path)
        stream = container.streams.audio[0]
        stream.thread_type = "AUTO"
        resampler = av.AudioResampler(format="flt", layout="mono", rate=SAMPLE_RATE)
        first = int(round(start * SAMPLE_RATE))
        last = None if end is None else int(round(end * SAMPLE_RATE))
        if start > 0:
            container.seek(int(start / stream.time_base), stream=stream, backward=True)
        pos: int | None = None  # sample index of the next decoded sample
        size = int(chunk * SAMPLE_RATE)
        buf: list[Any] = []
        have = 0
        emitted = first

        def frames() -> Iterator[Any]:
            try:
                for packet in container.demux(stream):
                    yield from packet.decode()
            except av.error.FFmpegError as exc:
                if pos is None:  # nothing decoded at all
                    raise fail(
                        ErrorCode.MEDIA_CORRUPT, f"cannot decode {path}: {exc}", path
                    ) from None
                # A damaged tail: keep what was decoded (a truncated recording
                # still has its first hour).
            yield None  # flush the resampler

        for frame in frames():
            if frame is not None and pos is None:
                pos = (
                    int(round(float(frame.pts * frame.time_base) * SAMPLE_RATE))
                    if frame.pts is not None
                    else 0
                )
            for out in resampler.resample(frame):
                data = out.to_ndarray().reshape(-1)
                assert pos is not None
                a, b = pos, pos + len(data)
                pos = b
                lo, hi = max(a, emitted), b if last is None else min(b, last)
                if hi > lo:
                    buf.append(data[lo - a : hi - a])
                    have += hi - lo
                    emitted = hi
                while have >= size:
                    joined = np.concatenate(buf)
                    yield (emitted - have) / SAMPLE_RATE, joined[:size]
                    buf, have = [joined[size:]], have - size
            if last is not None and pos is not None and pos >= last:
                break
        if pos is None:
            raise fail(ErrorCode.MEDIA_CORRUPT, f"no audio could be decoded from {path}", path)
        if have:
            yield (emitted - have) / SAMPLE_RATE, np.concatenate(buf)
    finally:
        container.close()


def load_audio(path: str, start: float = 0.0, end: float | None = None) -> Any:
    """The samples of ``[start, end)`` as one float32 array (a part: a few minutes)."""
    import numpy as np

    pieces = [samples for _, samples in audio_chunks(path, start, end)]
    return np.concatenate(pieces) if pieces else np.zeros(0, dtype=np.float32)
