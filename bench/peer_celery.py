"""jobtui against the peer a user would pick instead, on one folder of PDFs, in one run.

Contenders, each transcribing every page of every PDF in FOLDER (OCR where a page has
images and no text) and writing the text to files, with one worker process per core:

(a) ``pool``: a whole-process script (``_peer_pool.py``): a ``ProcessPoolExecutor`` over
    documents, largest first. Timed from launching the interpreter to its exit.
(b) ``celery``: Celery + Redis with a warm prefork worker (started once, before the
    rounds, and warmed with one round that is not counted), one task per document,
    largest first, sent from this already-running process; timed from the first send
    to the last result. Its worker and ``redis-server`` run on a free local port and
    are stopped by PID at the end.
(c) ``jobtui``: ``jobtui run FOLDER --json`` as a whole process on a fresh embedded
    store, timed from launch to exit.

Each round runs a, b and c, starting one later each round (a b c, b c a, c a b...):
these machines are noisy, and drift within a round must not always favour the same
contender. Medians count; each round's own ratios are reported too
(``per_round_ratios``, and their medians), since the machine's speed changes between
rounds more than within one. Per-page text is checked equal across the three.

Each run's CPU time is measured too (``cpu_s``): the machine's busy time during the run
from ``/proc/stat`` (all processes: a contender's whole tree, Redis included, on a
machine that runs nothing else; time stolen by the hypervisor not counted). With it,
``idle_core_s`` (cores x wall - CPU) tells a contender that does more work from one
that leaves cores idle. Last line: one JSON object with medians and ratios.

    python bench/peer_celery.py FOLDER [--rounds 3] [--workers N] [--generate N]

It installs nothing. It needs Debian's ``redis-server`` (``apt-get install
redis-server``) and, from PyPI, ``celery`` and ``redis`` (``pip install celery redis``).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
sys.path.insert(0, str(BENCH))


def missing_tools() -> list[str]:
    out = []
    if not shutil.which("redis-server"):
        out.append("redis-server (Debian: apt-get install redis-server)")
    for module in ("celery", "redis"):
        try:
            __import__(module)
        except ImportError:
            out.append(f"the Python package {module} (pip install celery redis)")
    return out


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def find_pdfs(folder: Path) -> list[Path]:
    return sorted(
        (p for p in folder.rglob("*") if p.suffix.lower() == ".pdf" and p.is_file()),
        key=lambda p: -p.stat().st_size,
    )


def busy_s() -> float | None:
    """Seconds of CPU the whole machine has spent so far (None without /proc/stat)."""
    try:
        with open("/proc/stat") as f:
            fields = [int(v) for v in f.readline().split()[1:]]
    except (OSError, ValueError):
        return None
    # user nice system idle iowait irq softirq steal ...: busy is all but idle,
    # iowait and steal (guest time is already inside user and nice).
    busy = sum(fields[:8]) - fields[3] - fields[4] - fields[7]
    return busy / os.sysconf("SC_CLK_TCK")


def timed(run: Any, *args: Any) -> tuple[Any, float | None]:
    """``run(*args)``'s result and the CPU the machine spent meanwhile."""
    before = busy_s()
    result = run(*args)
    after = busy_s()
    return result, None if before is None or after is None else after - before


def read_texts(out_dir: Path) -> dict[str, list[str]]:
    texts = {}
    for f in out_dir.glob("*.json"):
        data = json.loads(f.read_text(encoding="utf-8"))
        texts[data["path"]] = data["pages"]
    return texts


# -- (a) ------------------------------------------------------------------------------


def run_pool(folder: Path, out: Path, workers: int) -> float:
    out.mkdir(parents=True)
    t0 = time.perf_counter()
    subprocess.run(
        [sys.executable, str(BENCH / "_peer_pool.py"), str(folder), str(out), str(workers)],
        cwd=BENCH,
        check=True,
        stdout=subprocess.DEVNULL,
    )
    return time.perf_counter() - t0


# -- (b) ------------------------------------------------------------------------------


class CeleryPeer:
    """redis-server and a warm prefork Celery worker, started once, stopped by PID."""

    def __init__(self, workers: int, work: Path) -> None:
        self.port = free_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self.work = work
        self.redis = subprocess.Popen(
            ["redis-server", "--port", str(self.port), "--bind", "127.0.0.1", "--save", ""]
            + ["--appendonly", "no", "--dir", str(work)],
            stdout=subprocess.DEVNULL,
        )
        os.environ["PEER_REDIS_URL"] = self.url
        self._wait_redis()
        env = {**os.environ, "PEER_REDIS_URL": self.url}
        self.log = open(work / "celery.log", "w")  # noqa: SIM115 - closed in stop()
        self.worker = subprocess.Popen(
            [sys.executable, "-m", "celery", "-A", "_peer_task", "worker", "--pool", "prefork"]
            + ["--concurrency", str(workers), "--loglevel", "WARNING"]
            + ["--without-gossip", "--without-mingle", "--without-heartbeat"],
            cwd=BENCH,
            env=env,
            stdout=self.log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        import _peer_task

        self.app = _peer_task.app
        self.app.conf.broker_url = self.app.conf.result_backend = self.url
        deadline = time.monotonic() + 60
        while not self.app.control.ping(timeout=0.5):
            if self.worker.poll() is not None or time.monotonic() > deadline:
                raise SystemExit(f"celery worker did not start: see {work / 'celery.log'}")

    def _wait_redis(self) -> None:
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.2) as s:
                    s.sendall(b"PING\r\n")
                    if s.recv(16).startswith(b"+PONG"):
                        return
            except OSError:
                time.sleep(0.05)
        raise SystemExit("redis-server did not start")

    def run(self, pdfs: list[Path], out: Path) -> float:
        out.mkdir(parents=True)
        t0 = time.perf_counter()
        results = [
            self.app.send_task("peer.transcribe", args=(str(p.resolve()), str(out))) for p in pdfs
        ]
        for r in results:
            r.get(timeout=3600)
        return time.perf_counter() - t0

    def stop(self) -> None:
        for proc in (self.worker, self.redis):
            if proc.poll() is None:
                if proc is self.worker:
                    os.killpg(proc.pid, signal.SIGTERM)  # the prefork children too
                else:
                    proc.terminate()
                try:
                    proc.wait(20)
                except subprocess.TimeoutExpired:
                    proc.kill()
        self.log.close()


# -- (c) ------------------------------------------------------------------------------


def run_jobtui(folder: Path, work: Path) -> tuple[float, dict[str, list[str]]]:
    work.mkdir(parents=True)
    out = work / "out"
    cmd = [sys.executable, "-m", "jobtui.tui", "--store", str(work / "jobs.db"), "run"]
    cmd += [str(folder), "--output", str(out), "--json"]
    # Output to files, not pipes: the clock stops when the command exits, as in a shell.
    with open(work / "stdout.json", "w") as so, open(work / "stderr.txt", "w") as se:
        t0 = time.perf_counter()
        code = subprocess.Popen(cmd, cwd=ROOT, stdout=so, stderr=se).wait()
        elapsed = time.perf_counter() - t0
    if code not in (0, 1):
        raise SystemExit(f"jobtui run failed ({code}): {(work / 'stderr.txt').read_text()}")
    report = json.loads((work / "stdout.json").read_text())
    texts: dict[str, list[str]] = {}
    for entry in report.get("files") or report.get("jobs") or []:
        outputs = entry.get("outputs") or []
        if isinstance(outputs, dict):  # {"json_path": ..., "markdown_path": ...}
            outputs = list(outputs.values())
        paths = [entry.get("json_path"), *outputs]
        json_path = next((p for p in paths if p and str(p).endswith(".json")), None)
        if entry.get("status") in ("completed", "done earlier") and json_path:
            data = json.loads(Path(json_path).read_text(encoding="utf-8"))
            texts[str(Path(entry["path"]).resolve())] = [p["text"] for p in data["pages"]]
    return elapsed, texts


def cpu_figures(
    cpu: dict[str, list[float | None]], times: dict[str, list[float]], cores: int
) -> dict[str, Any]:
    """Median CPU seconds and idle core-seconds (of the machine's ``cores``) per
    contender, and CPU ratios (none without /proc/stat)."""
    if any(v is None for runs in cpu.values() for v in runs):
        return {}
    used = {k: [float(v or 0) for v in runs] for k, runs in cpu.items()}
    med = {k: statistics.median(v) for k, v in used.items()}
    idle = {
        k: statistics.median(cores * w - c for w, c in zip(times[k], used[k], strict=True))
        for k in used
    }
    return {
        "cpu_s": {k: round(v, 2) for k, v in med.items()},
        "idle_core_s": {k: round(v, 2) for k, v in idle.items()},
        "cpu_jobtui_vs_pool": round(med["jobtui"] / med["pool"], 3),
        "cpu_jobtui_vs_celery": round(med["jobtui"] / med["celery"], 3),
    }


# -- main -----------------------------------------------------------------------------


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("folder", type=Path)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--workers", type=int, default=os.cpu_count() or 1)
    ap.add_argument(
        "--generate",
        type=int,
        default=0,
        metavar="N",
        help="fill an empty FOLDER with N generated PDFs first",
    )
    args = ap.parse_args()
    args.folder = args.folder.resolve()
    missing = missing_tools()
    if missing:
        print("peer_celery.py needs: " + "; ".join(missing), file=sys.stderr)
        return 2
    if args.generate and not (args.folder.exists() and any(args.folder.iterdir())):
        from pdf_throughput import generate

        generate(args.folder, args.generate, scanned_every=0)
    pdfs = find_pdfs(args.folder)
    if not pdfs:
        print(f"no PDFs in {args.folder}", file=sys.stderr)
        return 2
    from pdf_throughput import compile_project

    compile_project()
    times: dict[str, list[float]] = {"pool": [], "celery": [], "jobtui": []}
    cpu: dict[str, list[float | None]] = {"pool": [], "celery": [], "jobtui": []}
    same = differ = 0
    with tempfile.TemporaryDirectory(prefix="jobtui-peer-") as tmp:
        work = Path(tmp)
        peer = CeleryPeer(args.workers, work)
        try:
            peer.run(pdfs, work / "celery-warm")  # the warm-up round, not counted
            for i in range(args.rounds):
                order = ["pool", "celery", "jobtui"]
                order = order[i % 3 :] + order[: i % 3]
                for name in order:
                    if name == "pool":
                        wall, used = timed(run_pool, args.folder, work / f"pool{i}", args.workers)
                    elif name == "celery":
                        wall, used = timed(peer.run, pdfs, work / f"celery{i}")
                    else:
                        (wall, jt_texts), used = timed(run_jobtui, args.folder, work / f"jobtui{i}")
                    times[name].append(wall)
                    cpu[name].append(used)
                print(
                    f"round {i + 1}: "
                    + ", ".join(
                        f"{k} {v[-1]:.2f} s"
                        + (f" ({cpu[k][-1]:.1f} CPU-s)" if cpu[k][-1] is not None else "")
                        for k, v in times.items()
                    ),
                    file=sys.stderr,
                )
                if i == 0:
                    pool_texts = read_texts(work / "pool0")
                    celery_texts = read_texts(work / "celery0")
                    for path, pages in pool_texts.items():
                        if celery_texts.get(path) == pages == jt_texts.get(path):
                            same += 1
                        else:
                            differ += 1
        finally:
            peer.stop()
    med = {k: statistics.median(v) for k, v in times.items()}
    paired = {
        f"{a}_vs_{b}": [round(x / y, 3) for x, y in zip(times[a], times[b], strict=True)]
        for a, b in (("jobtui", "celery"), ("jobtui", "pool"), ("celery", "pool"))
    }
    figures: dict[str, Any] = {
        "documents": len(pdfs),
        "workers": args.workers,
        "rounds": args.rounds,
        "median_s": {k: round(v, 3) for k, v in med.items()},
        "runs_s": {k: [round(x, 3) for x in v] for k, v in times.items()},
        "jobtui_vs_celery": round(med["jobtui"] / med["celery"], 3),
        "jobtui_vs_pool": round(med["jobtui"] / med["pool"], 3),
        "celery_vs_pool": round(med["celery"] / med["pool"], 3),
        "per_round_ratios": paired,
        "median_per_round_ratio": {k: statistics.median(v) for k, v in paired.items()},
        **cpu_figures(cpu, times, os.cpu_count() or 1),
        "identical_docs": same,
        "differing_docs": differ,
    }
    print(json.dumps(figures))
    return 0


if __name__ == "__main__":
    sys.exit(main())
