"""Speech transcription throughput: one recording by one process, against the same
recording cut at pauses into parts run across every core (what audio.transcribe does).

(a) ``one``: a pool of one worker process transcribes the whole recording as a single
    part (faster-whisper's own voice-activity filter and 30 s windows, one thread).
(b) ``split``: a pool of ``--cpu-workers`` processes (default: all cores) runs the
    handler's steps: voice activity over the recording, cut into parts of
    ``--part-seconds``, parts at once, reassembled in order.

Both with one CTranslate2 thread per process and the same language (given, so the
comparison leaves detection out). Printed: wall time, real-time factor (wall time /
recording length, lower is faster), the speed-up (a)/(b) (issue 16's target: >= 1.7x
on 2 cores) and each worker's peak resident memory (VmHWM). Last line: one JSON object.

    python bench/audio_throughput.py [--model DIR] [--dims tiny|base|small]
                                     [--minutes 4] [--part-seconds 120] [--cpu-workers N]

Without ``--model`` it builds a random-weight Whisper model of the given dimensions
(``media.tiny``; no download is possible where jobtui is tested): its compute per token
is that of a real model of the same size, but it produces noise and runs every 30 s
window to the maximum length (224 tokens), so its absolute real-time factors are worse
than a real model's on speech; the temperature fallback is off for it (``--fallback``),
since noise would always fall back five more times. The speed-up is what this measures.
Because every window costs the random model the same, whatever it holds, parts should
hold whole 30 s windows of speech (hence 120 s parts by default): a part's last, partly
empty window costs it a full one, where a real model stops at the end of the speech. The recording is espeak-ng speech (German) with pauses, made here.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from jobtui.engine.processors.media import decode, speech  # noqa: E402
from jobtui.engine.processors.media.parts import run_parts  # noqa: E402
from jobtui.engine.processors.media.tiny import build_random_whisper  # noqa: E402
from jobtui.engine.procpool import ProcessPool  # noqa: E402

DIMS = {  # (d_model, layers, heads) of the real models of these names
    "tiny": (384, 4, 6),
    "base": (512, 6, 8),
    "small": (768, 12, 12),
}
SENTENCES = [
    "Guten Morgen. Heute sprechen wir über das Wetter in Berlin und in Hamburg.",
    "Der zweite Abschnitt beginnt nach einer kurzen Pause mit einer Frage.",
    "Zum Schluss noch ein paar Worte über Übungen, Größen und schöne Grüße.",
]


def make_recording(path: Path, minutes: float) -> float:
    """espeak-ng sentences with 1-3 s pauses, to ``minutes`` long, as FLAC; its length."""
    import av
    import numpy as np

    rate = 16_000
    pieces: list[Any] = []
    total = 0
    i = 0
    while total < minutes * 60 * rate:
        wav = subprocess.run(
            ["espeak-ng", "-v", "de", "-s", "150", "--stdout", SENTENCES[i % len(SENTENCES)]],
            check=True,
            capture_output=True,
        ).stdout
        tmp = path.with_suffix(".wav")
        tmp.write_bytes(wav)
        samples = decode.load_audio(str(tmp))
        pause = np.zeros(int(rate * (1 + i % 3)), dtype=np.float32)
        pieces += [samples, pause]
        total += len(samples) + len(pause)
        i += 1
    tmp.unlink()
    audio = np.concatenate(pieces)
    with av.open(str(path), "w") as c:
        s = c.add_stream("flac", rate=rate, layout="mono")
        pcm = (audio * 32767).astype(np.int16)
        for k in range(0, len(pcm), 4096):
            frame = av.AudioFrame.from_ndarray(
                pcm[k : k + 4096].reshape(1, -1), format="s16", layout="mono"
            )
            frame.sample_rate, frame.pts = rate, k
            for packet in s.encode(frame):
                c.mux(packet)
        for packet in s.encode(None):
            c.mux(packet)
    return len(audio) / rate


def peak_rss_mb(pids: list[int]) -> list[float]:
    out = []
    for pid in pids:
        try:
            for line in Path(f"/proc/{pid}/status").read_text().splitlines():
                if line.startswith("VmHWM:"):
                    out.append(round(int(line.split()[1]) / 1024, 1))
        except OSError:
            pass
    return out


class _Ctx:
    """What ``run_parts`` needs of a job context, without a store."""

    def __init__(self, pool: ProcessPool) -> None:
        self.pool = pool
        self.cancel_event = asyncio.Event()
        self.job_id = "bench"

    async def run_cpu(self, fn: Any, *args: Any) -> Any:
        return await self.pool.run(fn, *args)

    async def progress(self, *args: Any) -> None:
        return None

    def check_cancelled(self) -> None:
        return None


async def run(
    args: argparse.Namespace, model_dir: str, recording: Path, seconds: float
) -> dict[str, Any]:
    opts = {
        "model_dir": model_dir,
        "compute_type": "int8",
        "language": "de",
        "task": "transcribe",
        "beam_size": args.beam_size,
        "word_timestamps": False,
        "initial_prompt": None,
    }
    if not args.fallback:
        opts["temperature"] = 0.0
    out: dict[str, Any] = {}

    one = ProcessPool(1, initializer=speech.warm)
    await one.warm()
    await one.run(speech.ensure_model, model_dir, "int8")  # model load is not part of the timing
    t0 = time.perf_counter()
    whole = await one.run(speech.transcribe_part, str(recording), 0.0, seconds, opts)
    wall = time.perf_counter() - t0
    out["one"] = {
        "wall_s": round(wall, 2),
        "rtf": round(wall / seconds, 3),
        "segments": len(whole["segments"]),
        "peak_rss_mb": peak_rss_mb(one.processes),
    }
    await one.close()
    print(f"one process : {wall:7.1f} s  RTF {wall / seconds:.3f}  {out['one']['peak_rss_mb']} MB")

    pool = ProcessPool(args.cpu_workers, initializer=speech.warm)
    await pool.warm()
    await asyncio.gather(
        *(pool.run(speech.ensure_model, model_dir, "int8") for _ in range(pool.size))
    )
    t0 = time.perf_counter()
    plan = await pool.run(speech.plan, str(recording), args.part_seconds)
    parts = plan["parts"]
    ctx = _Ctx(pool)
    results = await run_parts(
        ctx,  # type: ignore[arg-type]
        [(speech.transcribe_part, (str(recording), a, b, opts)) for a, b in parts],
        [b - a for a, b in parts],
        "transcribe",
    )
    wall = time.perf_counter() - t0
    segs = [s for r in results for s in r["segments"]]
    assert [s["start"] for s in segs] == sorted(s["start"] for s in segs)
    out["split"] = {
        "workers": pool.size,
        "parts": len(parts),
        "wall_s": round(wall, 2),
        "rtf": round(wall / seconds, 3),
        "segments": len(segs),
        "peak_rss_mb_per_worker": peak_rss_mb(pool.processes),
    }
    await pool.close()
    print(
        f"split ({len(parts)} parts on {out['split']['workers']}): {wall:7.1f} s  "
        f"RTF {wall / seconds:.3f}  {out['split']['peak_rss_mb_per_worker']} MB"
    )
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--model", help="a CTranslate2 Whisper model folder (default: random weights)")
    ap.add_argument("--dims", choices=sorted(DIMS), default="tiny")
    ap.add_argument("--minutes", type=float, default=4.0)
    ap.add_argument("--part-seconds", type=float, default=120.0)
    ap.add_argument("--beam-size", type=int, default=5)
    ap.add_argument(
        "--fallback",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="faster-whisper's temperature fallback (default: on for --model, off for "
        "random weights, whose noise would always fall back five times)",
    )
    ap.add_argument("--cpu-workers", type=int, default=len(os.sched_getaffinity(0)))
    args = ap.parse_args()
    if args.fallback is None:
        args.fallback = bool(args.model)
    with tempfile.TemporaryDirectory(prefix="jobtui-audio-bench-") as tmp:
        work = Path(tmp)
        if args.model:
            model_dir, random_weights = args.model, False
        else:
            d, layers, heads = DIMS[args.dims]
            t0 = time.perf_counter()
            model_dir = str(
                build_random_whisper(
                    work / f"random-{args.dims}", d_model=d, layers=layers, heads=heads
                )
            )
            random_weights = True
            print(f"built a random-weight '{args.dims}' model in {time.perf_counter() - t0:.1f} s")
        recording = work / "talk.flac"
        seconds = make_recording(recording, args.minutes)
        print(f"recording: {seconds:.1f} s of espeak-ng speech with pauses")
        out = asyncio.run(run(args, model_dir, recording, seconds))
    speedup = out["one"]["wall_s"] / out["split"]["wall_s"]
    print(f"speed-up: {speedup:.2f}x (target >= 1.7x on 2 cores)")
    print(
        json.dumps(
            {
                "bench": "audio_throughput",
                "model": args.model or f"random-{args.dims}",
                "random_weights": random_weights,
                "audio_s": round(seconds, 1),
                "cores": len(os.sched_getaffinity(0)),
                "beam_size": args.beam_size,
                "part_seconds": args.part_seconds,
                "temperature_fallback": args.fallback,
                **out,
                "speedup": round(speedup, 2),
                "target": 1.7,
            }
        )
    )


if __name__ == "__main__":
    main()
