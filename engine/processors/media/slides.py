"""Slides of a video, inside the engine's worker processes: key frames and their text.

About one frame a second is compared, as a small grey thumbnail, with the last slide
kept: when more than ``threshold`` of the thumbnail's pixels changed by more than
``PIXEL_DELTA`` grey levels, and the picture then holds still for one more sample, it
is a new slide (so a fade or a build-up is taken once, when it has settled). A share
of changed pixels, not a mean difference: a slide that differs from the last only in
a line of text changes the mean by ~1 level of 255, less than compression noise can.
Measured on a test video: thumbnails at ~1 frame/s found all 40 slide changes where
FFmpeg's usual scene threshold (0.3) missed 19. Each slide is saved as a PNG and OCRed
with Tesseract through PyMuPDF, as the PDF processor does. A long video is split into
time ranges run across the pool; the handler drops a range's first slide when it is
the same picture as the previous range's last one.
"""

from __future__ import annotations

import os
from typing import Any

from jobtui.engine.processors.media.decode import ErrorCode, fail, open_container

THUMB = (64, 36)  # thumbnail size: small enough to average noise and compression away
PIXEL_DELTA = 24.0  # grey levels (of 255) a thumbnail pixel must change by to count
# Share of changed thumbnail pixels that makes a new slide: a slide title that
# changes alone moves ~0.7-1.5 % of them (measured on the tests' slides).
DEFAULT_THRESHOLD = 0.005


def _video_stream(container: Any, path: str) -> Any:
    import av

    for s in container.streams.video:
        if not s.disposition & av.stream.Disposition.attached_pic:
            return s
    raise fail(ErrorCode.NO_VIDEO_TRACK, f"{path} has no video track", path)


def thumb(frame: Any) -> Any:
    import numpy as np

    small = frame.reformat(width=THUMB[0], height=THUMB[1], format="gray")
    return small.to_ndarray()[: THUMB[1], : THUMB[0]].astype(np.float32)


def difference(a: Any, b: Any) -> float:
    """The share of pixels (0..1) that differ by more than ``PIXEL_DELTA``."""
    import numpy as np

    return float(np.mean(np.abs(a - b) > PIXEL_DELTA))


def difference_lists(a: list[list[float]], b: list[list[float]]) -> float:
    """``difference`` of two thumbnails sent back from worker processes as lists."""
    import numpy as np

    return difference(np.asarray(a, dtype=np.float32), np.asarray(b, dtype=np.float32))


def _save_and_ocr(frame: Any, out_dir: str, name: str, languages: str, ocr: bool) -> str:
    import pymupdf

    from jobtui.engine.processors.pdf_output import write_in_dir

    rgb = frame.to_ndarray(format="rgb24")
    h, w = rgb.shape[:2]
    pix = pymupdf.Pixmap(pymupdf.csRGB, w, h, rgb.tobytes(), 0)
    png = os.path.join(out_dir, name)
    try:
        # Bytes written by us, as pdf.render does: no symlink planted in the output
        # folder is followed (pix.save(path) would write through one).
        write_in_dir(out_dir, name, pix.tobytes("png"))
    except Exception as exc:  # noqa: BLE001 - OSError, or MuPDF's RuntimeError
        raise fail(ErrorCode.OUTPUT_ERROR, f"cannot write {png}: {exc}", png) from None
    if not ocr:
        return ""
    with pymupdf.open("pdf", pix.pdfocr_tobytes(language=languages)) as doc:
        return str(doc[0].get_text()).strip()


def key_frames(path: str, start: float, end: float, opts: dict[str, Any]) -> list[dict[str, Any]]:
    """Slides first seen in ``[start, end)``: ``{time, image, text, thumb}`` each.

    ``opts``: ``out_dir`` (images go there), ``base`` (their name's start),
    ``interval`` (seconds between samples), ``threshold``, ``languages``, ``ocr``.
    """
    import av

    interval, threshold = float(opts["interval"]), float(opts["threshold"])
    slides: list[dict[str, Any]] = []
    last: Any = None  # thumbnail of the last slide kept
    prev: Any = None  # thumbnail of the previous sample
    changed_at: float | None = None
    next_t = start
    os.makedirs(opts["out_dir"], exist_ok=True)
    with open_container(path) as container:
        stream = _video_stream(container, path)
        stream.thread_type = "AUTO"
        if start > 0:
            container.seek(int(start / stream.time_base), stream=stream, backward=True)
        try:
            for frame in container.decode(stream):
                t = frame.time
                if t is None or t < next_t:
                    continue
                if t >= end:
                    break
                next_t = t + interval
                cur = thumb(frame)
                if last is None or difference(cur, last) > threshold:
                    changed_at = t if changed_at is None else changed_at
                    settled = prev is not None and difference(cur, prev) <= threshold / 2
                    if last is None or settled:
                        at = changed_at if last is not None else t
                        name = f"{opts['base']}-{at:09.2f}s.png"
                        png = os.path.join(opts["out_dir"], name)
                        text = _save_and_ocr(
                            frame, opts["out_dir"], name, opts["languages"], opts["ocr"]
                        )
                        slides.append(
                            {
                                "time": round(at, 2),
                                "image": png,
                                "text": text,
                                "thumb": cur.tolist(),
                            }
                        )
                        last, changed_at = cur, None
                else:
                    changed_at = None
                prev = cur
        except av.error.FFmpegError as exc:
            if not slides:
                raise fail(ErrorCode.MEDIA_CORRUPT, f"cannot decode {path}: {exc}", path) from None
    return slides
