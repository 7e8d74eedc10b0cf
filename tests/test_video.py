"""video.slides and video.transcribe on videos made here: slides drawn with PyMuPDF
(German text), held a few seconds each with a fade between two of them, muxed by
PyAV with an AAC sound track of espeak-ng speech. OCR runs for real (Tesseract
through PyMuPDF); the speech engine is the fake one of ``test_audio``.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio

pytest.importorskip("faster_whisper")
av = pytest.importorskip("av")
np = pytest.importorskip("numpy")

import pymupdf  # noqa: E402

from jobtui.engine.errors import JobFailed  # noqa: E402
from jobtui.engine.logsink import LogSink  # noqa: E402
from jobtui.engine.processors.media import slides_job, transcribe  # noqa: E402
from jobtui.engine.procpool import ProcessPool  # noqa: E402
from jobtui.engine.store.sqlite import SQLiteStore  # noqa: E402
from tests.test_audio import RATE, SENTENCES, Harness, espeak, install_fake, silence  # noqa: E402

pytestmark = pytest.mark.asyncio(loop_scope="module")

W, H, FPS = 640, 360, 5
SLIDE_SECONDS = 6
TITLES = [
    "Folie 1: Einleitung",
    "Folie 2: Größe der Übung",
    "Folie 3: Ergebnisse",
    "Folie 4: Schöne Grüße",
    "Folie 5: Diskussion",
    "Folie 6: Danke",
]


def slide_image(title: str) -> Any:
    doc = pymupdf.open()
    page = doc.new_page(width=W, height=H)
    page.insert_text((40, 120), title, fontsize=32)
    page.insert_text((40, 200), "Zusammenfassung und Ausblick", fontsize=20)
    pix = page.get_pixmap(dpi=72)
    return np.frombuffer(pix.samples, dtype=np.uint8).reshape(H, W, pix.n)[:, :, :3].copy()


def make_video(path: Path, with_audio: bool = True) -> Path:
    """Six slides of 6 s each at 5 frames/s; slide 2 fades into slide 3 over 1 s."""
    images = [slide_image(t) for t in TITLES]
    frames = []
    for i, img in enumerate(images):
        for k in range(SLIDE_SECONDS * FPS):
            if i == 2 and k < FPS:  # the fade: a blend of slides 2 and 3
                a = (k + 1) / (FPS + 1)
                frames.append((images[1] * (1 - a) + img * a).astype(np.uint8))
            else:
                frames.append(img)
    with av.open(str(path), "w") as c:
        v = c.add_stream("libx264", rate=FPS)
        v.width, v.height, v.pix_fmt = W, H, "yuv420p"
        a_stream = c.add_stream("aac", rate=RATE, layout="mono") if with_audio else None
        for img in frames:
            for packet in v.encode(av.VideoFrame.from_ndarray(img, format="rgb24")):
                c.mux(packet)
        for packet in v.encode(None):
            c.mux(packet)
        if a_stream is not None:
            talk = np.concatenate([x for s in SENTENCES for x in (espeak(s), silence(3.0))])
            size = a_stream.codec_context.frame_size or 1024
            for i in range(0, len(talk), size):
                frame = av.AudioFrame.from_ndarray(
                    talk[i : i + size].reshape(1, -1), format="fltp", layout="mono"
                )
                frame.sample_rate, frame.pts = RATE, i
                for packet in a_stream.encode(frame):
                    c.mux(packet)
            for packet in a_stream.encode(None):
                c.mux(packet)
    return path


@pytest.fixture(scope="module")
def videos(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    d = tmp_path_factory.mktemp("video")
    (d / "notes.mp4").write_text("not a video\n" * 20)
    return {
        "talk": make_video(d / "Vortrag.mp4"),
        "text": d / "notes.mp4",
    }


class VideoHarness(Harness):
    async def slides(self, **params: Any) -> dict[str, Any]:
        params = {k: str(v) if isinstance(v, Path) else v for k, v in params.items()}
        model = slides_job.SlidesParams.model_validate(params)
        ctx = self.last = await self.context(params)
        try:
            return await slides_job.slides_handler(ctx, model)
        finally:
            ctx.close()


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def h(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[VideoHarness]:
    d = tmp_path_factory.mktemp("engine")
    store = SQLiteStore(d / "jobs.db")
    await store.open()
    logs = LogSink(store)
    pool = ProcessPool(2, initializer=install_fake)
    await pool.warm()
    try:
        yield VideoHarness(store, logs, pool, d / "out")
    finally:
        await pool.close()
        await logs.stop()
        await store.close()


async def test_slides_found_once_each_with_their_text(
    h: VideoHarness, videos: dict[str, Path]
) -> None:
    # 36 s in ranges of 30 s: the last slide straddles the cut and is kept once
    result = await h.slides(path=videos["talk"], part_seconds=30)
    assert result["slides"] == len(TITLES), result
    doc = json.loads(Path(result["json_path"]).read_text(encoding="utf-8"))
    times = [s["time"] for s in doc["slides"]]
    for t, want in zip(times, range(0, len(TITLES) * SLIDE_SECONDS, SLIDE_SECONDS), strict=True):
        assert abs(t - want) <= 1.2, times  # sampled about once a second
    for s, title in zip(doc["slides"], TITLES, strict=True):
        assert title in s["text"], (s["text"], title)  # OCR, umlauts included
        assert Path(s["image"]).is_file() and Path(s["image"]).parent.name.endswith(".slides")
    assert len(list(Path(result["images_dir"]).glob("*.png"))) == len(TITLES)
    md = Path(result["markdown_path"]).read_text(encoding="utf-8")
    assert md.count("## Slide ") == len(TITLES) and "Größe der Übung" in md
    assert "## Slide 2 — 00:00:06" in md


async def test_slides_without_ocr(h: VideoHarness, videos: dict[str, Path]) -> None:
    result = await h.slides(path=videos["talk"], ocr=False, interval=0.5)
    doc = json.loads(Path(result["json_path"]).read_text(encoding="utf-8"))
    assert result["slides"] == len(TITLES) and all(s["text"] == "" for s in doc["slides"])


async def test_video_transcribe_reads_the_sound_track(
    h: VideoHarness, videos: dict[str, Path], tmp_path: Path
) -> None:
    fake = tmp_path / "fake-model"
    fake.mkdir()
    (fake / "model.bin").write_bytes(b"x")
    (fake / "config.json").write_text("{}")
    params = {"path": str(videos["talk"]), "model": str(fake), "language": "de"}
    ctx = h.last = await h.context(params)
    try:
        result = await transcribe.transcribe(ctx, transcribe.TranscribeParams(**params))
    finally:
        ctx.close()
    assert result["segments"] == len(SENTENCES) and result["language"] == "de"
    # the sound track (three sentences and pauses) is shorter than the pictures
    assert 10 < result["duration_s"] < len(TITLES) * SLIDE_SECONDS


async def test_bad_videos_fail_with_stable_codes(
    h: VideoHarness, videos: dict[str, Path], tmp_path: Path
) -> None:
    with pytest.raises(JobFailed) as info:
        await h.slides(path=videos["text"])
    assert info.value.code == "NOT_MEDIA"
    sound = tmp_path / "sound.flac"
    from tests.test_audio import write_audio

    write_audio(sound, silence(2.0), "flac")
    with pytest.raises(JobFailed) as info:
        await h.slides(path=sound)
    assert info.value.code == "NO_VIDEO_TRACK"
