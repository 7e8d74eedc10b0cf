"""audio.transcribe / video.transcribe on recordings made here (espeak-ng speech,
silence, tones; PyAV encodes them as FLAC, MP3, Opus, M4A and MP4).

Two speech engines: a fake one installed in the pool's worker processes (it "hears"
every stretch of sound and says which process, which load of the model and which
language it used), for the job logic: splitting at pauses, order, progress, cancel,
outputs, codes. And the real faster-whisper on a random-weight model built offline
(``media.tiny``): loading, features, voice activity, language detection, beam search
and assembly run for real; its words are noise, so only structure and timing are
asserted. Everything here is skipped when the ``audio`` extra is not installed.
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import subprocess
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio

pytest.importorskip("faster_whisper")
av = pytest.importorskip("av")
np = pytest.importorskip("numpy")

from jobtui.engine.context import JobContext  # noqa: E402
from jobtui.engine.errors import JobCancelled, JobFailed  # noqa: E402
from jobtui.engine.logsink import LogSink  # noqa: E402
from jobtui.engine.models import Job, utcnow  # noqa: E402
from jobtui.engine.processors.media import output, speech, transcribe  # noqa: E402
from jobtui.engine.processors.media.models import ModelSettings, resolve  # noqa: E402
from jobtui.engine.processors.media.tiny import build_random_whisper  # noqa: E402
from jobtui.engine.procpool import ProcessPool  # noqa: E402
from jobtui.engine.store.sqlite import SQLiteStore  # noqa: E402
from tests.util import wait_for  # noqa: E402

pytestmark = pytest.mark.asyncio(loop_scope="module")

RATE = 16_000
SENTENCES = [
    "Guten Morgen. Heute sprechen wir über das Wetter in Berlin.",
    "Der zweite Abschnitt beginnt nach einer Pause.",
    "Zum Schluss noch ein paar Worte über Übungen und Größen.",
]


# -- media made here -----------------------------------------------------------------


def espeak(text: str, voice: str = "de") -> Any:
    """Speech as float32 samples at 16 kHz (espeak-ng writes 22,050 Hz WAV)."""
    out = subprocess.run(
        ["espeak-ng", "-v", voice, "-s", "165", "--stdout", text], check=True, capture_output=True
    ).stdout
    path = Path(os.environ.get("TMPDIR", "/tmp")) / f"espeak-{os.getpid()}-{abs(hash(text))}.wav"
    path.write_bytes(out)
    try:
        return read_audio(path)
    finally:
        path.unlink()


def read_audio(path: Path) -> Any:
    with av.open(str(path)) as c:
        rs = av.AudioResampler(format="flt", layout="mono", rate=RATE)
        chunks = [f.to_ndarray().reshape(-1) for fr in c.decode(audio=0) for f in rs.resample(fr)]
        chunks += [f.to_ndarray().reshape(-1) for f in rs.resample(None)]
    return np.concatenate(chunks)


def silence(seconds: float) -> Any:
    return np.zeros(int(seconds * RATE), dtype=np.float32)


def tone(seconds: float, hz: float = 440.0) -> Any:
    t = np.arange(int(seconds * RATE)) / RATE
    return (0.3 * np.sin(2 * np.pi * hz * t)).astype(np.float32)


def write_audio(path: Path, samples: Any, codec: str, rate: int = RATE) -> Path:
    """Encode mono float samples with PyAV (``codec`` from the container's choice)."""
    with av.open(str(path), "w") as c:
        s = c.add_stream(codec, rate=rate, layout="mono")
        fmt = s.codec_context.codec.audio_formats[0].name
        frame_size = s.codec_context.frame_size or 1024
        pcm = (samples * 32767).astype(np.int16) if fmt.startswith("s16") else samples
        for i in range(0, len(pcm), frame_size):
            piece = pcm[i : i + frame_size].reshape(1, -1)
            frame = av.AudioFrame.from_ndarray(
                piece.astype(np.int16 if fmt.startswith("s16") else np.float32),
                format="s16" if fmt.startswith("s16") else "flt",
                layout="mono",
            )
            frame.sample_rate = rate
            frame.pts = i
            for packet in s.encode(frame):
                c.mux(packet)
        for packet in s.encode(None):
            c.mux(packet)
    return path


@pytest.fixture(scope="module")
def media(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    d = tmp_path_factory.mktemp("media")
    speech_parts = [espeak(s) for s in SENTENCES] * 3
    # Nine sentences, each followed by 4 s of silence: pauses to cut at (~75 s).
    long = np.concatenate([x for sp in speech_parts for x in (sp, silence(4.0))])
    spans, t = [], 0.0
    for sp in speech_parts:
        spans.append((t, t + len(sp) / RATE))
        t += len(sp) / RATE + 4.0
    out: dict[str, Any] = {"spans": spans, "long_seconds": len(long) / RATE}
    out["flac"] = write_audio(d / "talk.flac", long, "flac")
    out["mp3"] = write_audio(d / "talk.mp3", long, "mp3")
    out["opus"] = write_audio(d / "talk.opus", long, "libopus")
    out["m4a"] = write_audio(d / "talk.m4a", long, "aac")
    out["silent"] = write_audio(d / "silent.flac", silence(8.0), "flac")
    out["short"] = write_audio(d / "short.flac", speech_parts[0], "flac")
    out["text"] = d / "notes.mp3"
    out["text"].write_text("this is not audio at all, just text\n" * 50)
    data = out["flac"].read_bytes()
    out["truncated"] = d / "cut.flac"
    out["truncated"].write_bytes(data[:200])
    out["empty"] = d / "empty.wav"
    out["empty"].write_bytes(b"")
    out["mute_video"] = mute_video(d / "mute.mp4")
    return out


def mute_video(path: Path, seconds: int = 2) -> Path:
    with av.open(str(path), "w") as c:
        s = c.add_stream("mpeg4", rate=5)
        s.width, s.height, s.pix_fmt = 64, 48, "yuv420p"
        for i in range(seconds * 5):
            img = np.full((48, 64, 3), i * 10 % 255, dtype=np.uint8)
            for packet in s.encode(av.VideoFrame.from_ndarray(img, format="rgb24")):
                c.mux(packet)
        for packet in s.encode(None):
            c.mux(packet)
    return path


# -- the fake speech engine (installed in the pool's processes) ----------------------

_LOADS = 0


class FakeSegment:
    def __init__(self, start: float, end: float, text: str, words: list[Any] | None) -> None:
        self.start, self.end, self.text, self.words = start, end, text, words


class FakeWord:
    def __init__(self, start: float, end: float, word: str) -> None:
        self.start, self.end, self.word, self.probability = start, end, word, 0.9


class FakeInfo:
    def __init__(self, language: str) -> None:
        self.language, self.language_probability = language, 0.75


class FakeModel:
    """Hears every stretch of sound louder than -40 dBFS; says what it knows in text."""

    def __init__(self, model_dir: str, compute_type: str) -> None:
        global _LOADS
        _LOADS += 1
        self.load = _LOADS

    def detect_language(self, audio: Any) -> tuple[str, float, list[Any]]:
        return "de", 0.93, []

    def transcribe(self, audio: Any, **kw: Any) -> tuple[Any, FakeInfo]:
        if kw.get("initial_prompt") == "fake:hang":
            while True:  # a part that never ends: only a kill stops it
                time.sleep(0.05)
        frame = RATE // 50
        loud = [
            float(np.sqrt(np.mean(audio[i : i + frame] ** 2))) > 0.01
            for i in range(0, len(audio), frame)
        ]
        runs, start = [], None
        for i, on in enumerate([*loud, False]):
            if on and start is None:
                start = i
            elif not on and start is not None:
                if runs and start - runs[-1][1] < 50:  # gaps under 1 s join (one sentence)
                    runs[-1] = (runs[-1][0], i)
                else:
                    runs.append((start, i))
                start = None
        # Its own guess differs from detect_language's: a part that was not given
        # the detected language shows it.
        lang = kw.get("language") or "en"
        segs = []
        for a, b in runs:
            s, e = a / 50, b / 50
            words = [FakeWord(s, e, " wort")] if kw.get("word_timestamps") else None
            text = f" pid={os.getpid()} load={self.load} lang={lang}"
            segs.append(FakeSegment(s, e, text, words))
        return iter(segs), FakeInfo(lang)


def install_fake() -> None:
    """Pool initializer: this process's speech engine is the fake one."""
    speech.load_model = FakeModel


# -- engine pieces -------------------------------------------------------------------


class RecordingContext(JobContext):
    """A real context that also keeps every progress report (the store keeps the last
    one written, at most one a second)."""

    def __init__(self, *args: Any, **kw: Any) -> None:
        super().__init__(*args, **kw)
        self.reports: list[tuple[float, str | None, str | None]] = []

    async def progress(
        self,
        percent: float,
        step: str | None = None,
        message: str | None = None,
        **units: Any,
    ) -> None:
        self.reports.append((percent, step, message))
        await super().progress(percent, step, message, **units)


class Harness:
    def __init__(self, store: SQLiteStore, logs: LogSink, pool: ProcessPool, out: Path) -> None:
        self.store, self.logs, self.pool, self.out = store, logs, pool, out
        self.last: RecordingContext | None = None

    async def context(
        self, params: dict[str, Any], settings: dict[str, Any] | None = None
    ) -> RecordingContext:
        job = Job(job_type="audio.transcribe", parameters=params)
        await self.store.insert_jobs([job])
        claimed = await self.store.claim(
            worker_id="test",
            slots={"audio.transcribe": 1},
            limit=1,
            lease_seconds=60,
            timeouts={},
            now=utcnow(),
        )
        pool = self.pool
        return RecordingContext(
            claimed[0],
            store=self.store,
            token=claimed[0].lease.token,  # type: ignore[union-attr]
            logs=self.logs,
            pool=lambda: pool,
            output_dir=self.out,
            settings=settings,
        )

    async def run(self, settings: dict[str, Any] | None = None, **params: Any) -> dict[str, Any]:
        params = {k: str(v) if isinstance(v, Path) else v for k, v in params.items()}
        model = transcribe.TranscribeParams.model_validate(params)
        ctx = self.last = await self.context(params, settings)
        try:
            return await transcribe.transcribe(ctx, model)
        finally:
            ctx.close()

    async def logs_of(self, job_id: str) -> list[str]:
        await self.logs.flush()
        return [e.message for e in await self.store.tail_logs(job_id, limit=1000)]


@pytest.fixture(scope="module")
def fake_model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    d = tmp_path_factory.mktemp("fake-model")
    (d / "model.bin").write_bytes(b"fake")
    (d / "config.json").write_text("{}")
    return d


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def h(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Harness]:
    d = tmp_path_factory.mktemp("engine")
    store = SQLiteStore(d / "jobs.db")
    await store.open()
    logs = LogSink(store)
    pool = ProcessPool(2, initializer=install_fake)
    await pool.warm()
    try:
        yield Harness(store, logs, pool, d / "out")
    finally:
        await pool.close()
        await logs.stop()
        await store.close()


def _segments(result: dict[str, Any]) -> list[dict[str, Any]]:
    doc = json.loads(Path(result["json_path"]).read_text(encoding="utf-8"))
    return list(doc["segments"])


async def _fails(h: Harness, code: str, **params: Any) -> str:
    with pytest.raises(JobFailed) as info:
        await h.run(**params)
    assert info.value.code == code, info.value.message
    assert info.value.retryable is False
    return info.value.message


# -- planning (pure) -----------------------------------------------------------------


async def test_parts_are_cut_in_pauses_after_part_seconds() -> None:
    spans = [(1.0, 20.0), (22.0, 40.0), (41.0, 70.0), (75.0, 80.0)]
    parts = speech.plan_parts(90.0, spans, 25.0)
    assert parts[0][0] == 0.0 and parts[-1][1] == 90.0
    assert all(a < b for a, b in parts)
    assert all(p[1] == q[0] for p, q in zip(parts, parts[1:], strict=False))  # contiguous
    # cuts fall in pauses, never inside speech
    for _, cut in parts[:-1]:
        assert not any(a < cut < b for a, b in spans), cut
    assert parts == [(0.0, 40.5), (40.5, 72.5), (72.5, 90.0)]
    assert speech.plan_parts(90.0, [(0.0, 90.0)], 30.0) == [(0.0, 90.0)]  # one long span
    assert speech.plan_parts(0.0, [], 30.0) == []


# -- the job logic, fake engine ------------------------------------------------------


async def test_long_recording_split_across_the_pool_and_reassembled(
    h: Harness, media: dict[str, Any], fake_model_dir: Path
) -> None:
    result = await h.run(path=media["flac"], model=str(fake_model_dir), part_seconds=30)
    assert result["parts"] >= 2
    assert abs(result["duration_s"] - media["long_seconds"]) < 0.1
    assert 0 < result["speech_s"] < result["duration_s"]
    segs = _segments(result)
    assert result["segments"] == len(segs) == len(media["spans"])
    starts = [s["start"] for s in segs]
    assert starts == sorted(starts)
    # every sentence comes back where it was spoken (absolute times, across parts);
    # espeak-ng ends each sentence with ~0.3 s of silence of its own
    for seg, (a, b) in zip(segs, media["spans"], strict=True):
        assert abs(seg["start"] - a) < 0.3 and b - 0.6 < seg["end"] < b + 0.05, (seg, a, b)
    texts = [s["text"] for s in segs]
    pids = {t.split()[0] for t in texts}
    assert len(pids) == 2, texts  # parts ran in both processes
    for pid in pids:  # the model was loaded once per process
        assert len({t.split()[1] for t in texts if t.startswith(pid)}) == 1
    # the language was detected once and given to every part
    assert result["language"] == "de" and result["language_probability"] == 0.93
    assert all(t.endswith("lang=de") for t in texts)
    logs = await h.logs_of(h.last.job_id)  # type: ignore[union-attr]
    assert any(line.startswith("language de") for line in logs)
    # progress: seconds of recording done, rising part by part to the total
    assert h.last is not None
    steps = [r for r in h.last.reports if r[1] == "transcribe"]
    total = round(result["duration_s"])
    assert [r[0] for r in steps] == sorted(r[0] for r in steps)
    # The start, then one per wake-up that found parts done: two parts that end
    # together (both processes, under load) are one report (tests/test_media_parts.py
    # checks one report per part ending on its own).
    assert 2 <= len(steps) <= result["parts"] + 1, steps
    assert steps[0][0] <= 0 and steps[-1] == (100.0, "transcribe", f"{total}/{total} s")
    assert all(0 < r[0] < 100 for r in steps[1:-1]), steps


async def test_outputs_in_every_format(
    h: Harness, media: dict[str, Any], fake_model_dir: Path
) -> None:
    result = await h.run(
        path=media["flac"], model=str(fake_model_dir), part_seconds=30, word_timestamps=True
    )
    from jobtui.engine.outputs import output_paths

    outs = {f: result[field] for f, field in transcribe.RESULT_FIELDS.items()}
    assert sorted(outs) == sorted(output.FORMATS)
    assert output_paths(result) == {transcribe.RESULT_FIELDS[f]: p for f, p in outs.items()}
    n = result["segments"]
    segs = _segments(result)
    assert all(w["start"] >= s["start"] - 0.01 for s in segs for w in s["words"])
    srt = Path(outs["srt"]).read_text()
    assert srt.count(" --> ") == n and srt.startswith("1\n00:00:0")
    vtt = Path(outs["vtt"]).read_text()
    assert vtt.startswith("WEBVTT\n\n") and vtt.count(" --> ") == n
    assert len(Path(outs["txt"]).read_text().splitlines()) == n
    md = Path(outs["md"]).read_text()
    assert md.startswith("# talk.flac\n") and "- Language: de (93%)" in md
    assert md.count("**[00:") == n
    stem = Path(outs["json"]).name
    assert stem.startswith("talk-") and stem.endswith(".json")
    only = await h.run(path=media["flac"], model=str(fake_model_dir), formats=["srt", "srt"])
    from jobtui.engine.outputs import output_paths

    assert list(output_paths(only)) == ["srt_path"]


async def test_given_language_is_used_without_detection(
    h: Harness, media: dict[str, Any], fake_model_dir: Path
) -> None:
    result = await h.run(path=media["flac"], model=str(fake_model_dir), language="fr")
    assert result["language"] == "fr"
    assert all(s["text"].endswith("lang=fr") for s in _segments(result))
    logs = await h.logs_of(h.last.job_id)  # type: ignore[union-attr]
    assert not any(line.startswith("language ") for line in logs)


async def test_no_speech_completes_with_zero_segments(
    h: Harness, media: dict[str, Any], fake_model_dir: Path
) -> None:
    result = await h.run(path=media["silent"], model=str(fake_model_dir))
    assert result["segments"] == 0 and result["parts"] == 0
    assert result["speech_s"] == 0 and abs(result["duration_s"] - 8.0) < 0.1
    assert "_(no speech found)_" in Path(result["markdown_path"]).read_text()
    assert json.loads(Path(result["json_path"]).read_text())["segments"] == []


async def test_one_part_detects_its_own_language(
    h: Harness, media: dict[str, Any], fake_model_dir: Path
) -> None:
    result = await h.run(path=media["short"], model=str(fake_model_dir))
    assert result["parts"] == 1 and result["segments"] == 1
    assert result["language"] == "en" and result["language_probability"] == 0.75


@pytest.mark.parametrize("kind", ["mp3", "m4a", "opus"])
async def test_compressed_formats_decode_to_the_same_timeline(
    h: Harness, media: dict[str, Any], fake_model_dir: Path, kind: str
) -> None:
    result = await h.run(path=media[kind], model=str(fake_model_dir), part_seconds=30)
    # encoders pad a little at the start and the end
    assert abs(result["duration_s"] - media["long_seconds"]) < 0.2
    segs = _segments(result)
    assert len(segs) == len(media["spans"])
    for seg, (a, _) in zip(segs, media["spans"], strict=True):
        assert abs(seg["start"] - a) < 0.3


async def test_bad_inputs_fail_with_stable_codes(
    h: Harness, media: dict[str, Any], fake_model_dir: Path, tmp_path: Path
) -> None:
    m = str(fake_model_dir)
    await _fails(h, "NOT_MEDIA", path=media["text"], model=m)
    await _fails(h, "NOT_MEDIA", path=media["empty"], model=m)
    await _fails(h, "MEDIA_CORRUPT", path=media["truncated"], model=m)
    await _fails(h, "NO_AUDIO_TRACK", path=media["mute_video"], model=m)
    await _fails(h, "FILE_NOT_FOUND", path=tmp_path / "gone.wav", model=m)
    await _fails(h, "INVALID_PARAMETERS", path=media["short"], model=m, language="xx")


async def test_under_input_roots_workers_read_the_pinned_file(
    h: Harness, media: dict[str, Any], fake_model_dir: Path
) -> None:
    """With input roots the parts read the file the engine opened and checked
    (/proc/PID/fd/N); names and messages still show the input's own path."""
    roots = {"input_roots": [str(media["flac"].parent)]}
    result = await h.run(settings=roots, path=media["flac"], model=str(fake_model_dir))
    assert result["segments"] == len(media["spans"])
    assert Path(result["json_path"]).name.startswith("talk-")
    doc = json.loads(Path(result["json_path"]).read_text())
    assert doc["source"] == str(media["flac"].resolve())
    with pytest.raises(JobFailed) as info:
        await h.run(settings=roots, path=media["text"], model=str(fake_model_dir))
    assert info.value.code == "NOT_MEDIA" and "/proc/" not in info.value.message
    assert str(media["text"].resolve()) in info.value.message
    assert info.value.details == {"path": str(media["text"].resolve())}


async def test_a_recording_cut_off_midway_keeps_what_was_recorded(
    h: Harness, media: dict[str, Any], fake_model_dir: Path, tmp_path: Path
) -> None:
    data = media["flac"].read_bytes()
    cut = tmp_path / "cut-off.flac"
    cut.write_bytes(data[: len(data) // 2])
    result = await h.run(path=cut, model=str(fake_model_dir))
    assert 0.3 * media["long_seconds"] < result["duration_s"] < 0.7 * media["long_seconds"]
    assert 0 < result["segments"] < len(media["spans"])
    logs = await h.logs_of(h.last.job_id)  # type: ignore[union-attr]
    assert any("probably cut off" in line for line in logs), logs


async def test_missing_model_says_how_to_get_it(
    h: Harness, media: dict[str, Any], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    msg = await _fails(h, "MODEL_UNAVAILABLE", path=media["short"], model=str(tmp_path / "nope"))
    assert "not a model folder" in msg
    monkeypatch.setenv("JOBTUI_AUDIO_OFFLINE", "1")
    monkeypatch.setenv("JOBTUI_AUDIO_MODELS_DIR", str(tmp_path / "models"))
    msg = await _fails(h, "MODEL_UNAVAILABLE", path=media["short"], model="small")
    assert "downloads are off" in msg and "jobtui models pull small" in msg
    settings = ModelSettings.from_env()
    assert settings.offline and settings.models_dir == tmp_path / "models"
    shutil.copytree(_fake_dir(tmp_path), tmp_path / "models" / "small")
    assert resolve("small", settings) == tmp_path / "models" / "small"


def _fake_dir(tmp_path: Path) -> Path:
    d = tmp_path / "fake"
    d.mkdir()
    (d / "model.bin").write_bytes(b"x")
    (d / "config.json").write_text("{}")
    return d


async def test_cancel_stops_the_parts_within_two_seconds(
    h: Harness, media: dict[str, Any], fake_model_dir: Path
) -> None:
    params = {
        "path": str(media["flac"]),
        "model": str(fake_model_dir),
        "part_seconds": 30,
        "language": "de",
        "initial_prompt": "fake:hang",
    }
    ctx = await h.context(params)
    task = asyncio.ensure_future(
        transcribe.transcribe(ctx, transcribe.TranscribeParams.model_validate(params))
    )

    async def both_running() -> bool:
        return len(h.pool.running) == 2

    await wait_for(both_running, timeout=30, what="two parts running")
    busy = list(h.pool.running)
    t0 = time.monotonic()
    ctx.cancel_event.set()
    with pytest.raises(JobCancelled):
        await task
    assert time.monotonic() - t0 < 2.0
    for pid in busy:  # the processes running the parts are gone
        with pytest.raises(ProcessLookupError):
            os.kill(pid, 0)
    ctx.close()


# -- the real faster-whisper path, on a random-weight model built here ---------------


@pytest.fixture(scope="module")
def tiny_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_random_whisper(tmp_path_factory.mktemp("models") / "random-tiny")


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def real(h: Harness) -> AsyncIterator[Harness]:
    """The same store and output, a pool whose processes run the real faster-whisper."""
    pool = ProcessPool(2, initializer=speech.warm)
    await pool.warm()
    try:
        yield Harness(h.store, h.logs, pool, h.out / "real")
    finally:
        await pool.close()


def _well_formed(result: dict[str, Any]) -> list[dict[str, Any]]:
    segs = _segments(result)
    assert result["segments"] == len(segs)
    for s in segs:
        assert 0 <= s["start"] <= s["end"] <= result["duration_s"] + 0.01, s
        assert s["text"] == s["text"].strip() and s["text"]
    assert [s["start"] for s in segs] == sorted(s["start"] for s in segs)
    srt = Path(result["srt_path"]).read_text()
    assert srt.count(" --> ") == len(segs)
    return segs


async def test_real_model_long_recording_in_parts(
    real: Harness, media: dict[str, Any], tiny_model: Path
) -> None:
    t0 = time.monotonic()
    result = await real.run(path=media["flac"], model=str(tiny_model), part_seconds=30, beam_size=2)
    elapsed = time.monotonic() - t0
    assert result["parts"] >= 2
    assert result["model"] == "random-tiny"
    # detected once, on the real language-detection path (its answer is noise)
    assert isinstance(result["language"], str) and len(result["language"]) in (2, 3)
    assert 0 < result["language_probability"] <= 1
    logs = await real.logs_of(real.last.job_id)  # type: ignore[union-attr]
    assert any(line.startswith(f"language {result['language']} ") for line in logs)
    segs = _well_formed(result)
    # the parts' segments come back in the parts' own stretches, in order
    assert segs and segs[-1]["start"] > 30.0
    assert elapsed < 120, elapsed


async def test_doctor_speech_check(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from jobtui.engine.checks import CheckContext
    from jobtui.engine.config import Settings
    from jobtui.engine.processors.media.checks import speech_check
    from jobtui.engine.registry import Registry

    ctx = CheckContext(Settings(), Registry())
    monkeypatch.delenv("JOBTUI_AUDIO_MODEL", raising=False)
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    monkeypatch.setenv("JOBTUI_AUDIO_MODELS_DIR", str(tmp_path / "models"))
    monkeypatch.setenv("JOBTUI_AUDIO_OFFLINE", "0")
    [check] = await speech_check(ctx)
    assert check.verdict == "warn" and "first job downloads it" in check.detail
    assert "jobtui models pull small" in check.fix
    monkeypatch.setenv("JOBTUI_AUDIO_OFFLINE", "1")
    [check] = await speech_check(ctx)
    assert check.verdict == "fail" and "MODEL_UNAVAILABLE" in check.detail
    shutil.copytree(_fake_dir(tmp_path), tmp_path / "models" / "small")
    [check] = await speech_check(ctx)
    assert check.verdict == "ok" and str(tmp_path / "models" / "small") in check.detail


async def test_a_dropped_folder_sends_audio_and_video_to_their_types(
    h: Harness, media: dict[str, Any], tmp_path: Path
) -> None:
    """Through the declarations (registered by the ``audio`` entry point): one batch,
    PDFs, recordings and videos each under the type that declared its kind."""
    import pymupdf

    from jobtui.engine.api import OperatorAPI
    from jobtui.engine.registry import default_registry

    folder = tmp_path / "drop"
    folder.mkdir()
    shutil.copy(media["flac"], folder / "Besprechung.flac")
    shutil.copy(media["m4a"], folder / "memo.M4A")
    shutil.copy(media["mute_video"], folder / "clip.mp4")
    doc = pymupdf.open()
    doc.new_page().insert_text((72, 72), "Protokoll")
    doc.save(folder / "protokoll.pdf")
    (folder / "notes.txt").write_text("nothing to do")
    registry = default_registry()
    assert {"audio.transcribe", "video.transcribe", "video.slides"} <= set(registry.names())
    store = SQLiteStore(tmp_path / "drop.db")
    await store.open()
    try:
        rep = await OperatorAPI(store, registry).enqueue_paths([str(folder)])
        jobs = await store.list_jobs(limit=100)
    finally:
        await store.close()
    assert {Path(j.parameters["path"]).name: j.job_type for j in jobs} == {
        "Besprechung.flac": "audio.transcribe",
        "memo.M4A": "audio.transcribe",
        "clip.mp4": "video.transcribe",  # video.slides takes videos only when named
        "protokoll.pdf": "pdf.transcribe",
    }
    assert {j.batch_id for j in jobs} == {rep.batch_id}
    assert rep.skipped["unsupported"] == 1
    for j in jobs:
        if j.job_type.endswith(".transcribe") and not j.job_type.startswith("pdf"):
            transcribe.TranscribeParams.model_validate(j.parameters)  # sha256 set by enqueue


def _cli(argv: list[str]) -> int:
    from jobtui.tui.cli import main

    return main(argv)


async def test_models_command_lists_and_refuses_offline_pulls(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.delenv("JOBTUI_AUDIO_MODEL", raising=False)
    models = tmp_path / "models"
    shutil.copytree(_fake_dir(tmp_path), models / "small")
    # main() runs its own event loop: off this test's loop, in a thread
    code = await asyncio.to_thread(_cli, ["models", "list", "--models-dir", str(models)])
    out = capsys.readouterr().out
    assert code == 0 and "* small" in out
    code = await asyncio.to_thread(_cli, ["models", "list", "--json", "--models-dir", str(models)])
    data = json.loads(capsys.readouterr().out)
    assert data["model_path"] == str(models / "small") and data["models"][0]["name"] == "small"
    monkeypatch.setenv("JOBTUI_AUDIO_OFFLINE", "1")
    code = await asyncio.to_thread(_cli, ["models", "pull", "tiny", "--models-dir", str(models)])
    assert code == 2 and "MODEL_UNAVAILABLE" in capsys.readouterr().err


async def test_jobtui_run_on_a_folder_of_recordings_end_to_end(
    media: dict[str, Any], tiny_model: Path, tmp_path: Path
) -> None:
    """The real command: types from the entry point, the fork server preloading what
    they declare, the real speech path; a bad file fails alone with its code."""
    import sys

    folder = tmp_path / "recordings"
    folder.mkdir()
    shutil.copy(media["short"], folder / "Ansage.flac")
    shutil.copy(media["mute_video"], folder / "stumm.mp4")
    root = Path(__file__).resolve().parent.parent
    env = {**os.environ, "JOBTUI_AUDIO_MODEL": str(tiny_model), "PYTHONPATH": str(root)}
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "jobtui.tui.cli",
        "run",
        str(folder),
        "--json",
        "--store",
        str(tmp_path / "q.db"),
        "--output",
        str(tmp_path / "out"),
        cwd=root,
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(proc.communicate(), 300)
    report = json.loads(out.decode().strip().splitlines()[-1])
    jobs = {Path(j["path"]).name: j for j in report["jobs"]}
    assert jobs["stumm.mp4"]["job_type"] == "video.transcribe"
    assert jobs["stumm.mp4"]["error_code"] == "NO_AUDIO_TRACK", err.decode()
    done = jobs["Ansage.flac"]
    assert done["job_type"] == "audio.transcribe" and done["status"] == "completed", err.decode()
    assert done["parts"] == 1 and done["model"] == tiny_model.name
    files = next(f for f in report["files"] if f["path"].endswith("Ansage.flac"))
    assert {Path(p).suffix for p in files["outputs"].values()} == {
        ".json",
        ".txt",
        ".srt",
        ".vtt",
        ".md",
    }
    assert all(Path(p).is_file() for p in files["outputs"].values())
