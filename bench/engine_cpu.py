"""The engine's own CPU per document: ``jobtui run FOLDER`` against the plain pool, as
whole processes, counting the CPU of the process that hands out the work.

On a machine whose cores the workers fill, every CPU-second the coordinating process
spends is taken from them; issue 15 asks that per-job work there be "close to
nothing". This measures it directly, where wall time (``peer_celery.py``) buries it
under the host's noise: in each round, alternating,

- ``pool``: ``_peer_pool.py`` (a ``ProcessPoolExecutor`` over the documents);
- ``jobtui``: ``jobtui run FOLDER --json`` from this checkout, on a fresh store;
- ``--against DIR``: the same from another checkout of jobtui (a worktree at another
  commit), for an A/B of a change.

Each runs under a small wrapper that reports, as the interpreter shuts down, the CPU
of that process alone (user + system, all its threads; not its worker processes) and
of its main thread. Reported per contender: medians of wall time, process CPU, main
thread CPU, and process CPU per document in ms; and how many jobs each jobtui run
completed (a run that failed documents did less). Last line: one JSON object.

    python bench/engine_cpu.py FOLDER [--rounds 5] [--against /path/to/other/checkout]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent

# Runs the target (jobtui's command, or a script) and prints its CPU when the
# interpreter shuts down (after the command's own work, before teardown).
WRAPPER = """
import json, resource, runpy, sys, threading, time
def report():
    ru = resource.getrusage(resource.RUSAGE_SELF)
    cpu = {"process": ru.ru_utime + ru.ru_stime, "main_thread": time.thread_time()}
    print("CPU " + json.dumps(cpu), file=sys.stderr, flush=True)
shutdown = threading._shutdown
def hooked():
    report()
    shutdown()
threading._shutdown = hooked
if __name__ == "__main__":  # not again in a process the fork server starts
    kind, target, *args = sys.argv[1:]
    if kind == "jobtui":  # what the jobtui command runs (launch.main)
        from jobtui.tui import launch
        sys.argv = ["jobtui", *args]
        sys.exit(launch.main())
    sys.argv = [target, *args]
    sys.path.insert(0, str(__import__("pathlib").Path(target).parent))
    runpy.run_path(target, run_name="__main__")
"""


def run(
    cmd: list[str], cwd: Path, env: dict[str, str], work: Path
) -> tuple[float, dict[str, float]]:
    with open(work / "stdout", "w") as so, open(work / "stderr", "w") as se:
        t0 = time.perf_counter()
        code = subprocess.Popen(cmd, cwd=cwd, env=env, stdout=so, stderr=se).wait()
        wall = time.perf_counter() - t0
    err = (work / "stderr").read_text(errors="replace")
    if code not in (0, 1):
        raise SystemExit(f"{cmd[3]} failed ({code}):\n{err[-2000:]}")
    lines = [line for line in err.splitlines() if line.startswith("CPU ")]
    if not lines:
        raise SystemExit(f"{cmd[3]}: no CPU report:\n{err[-2000:]}")
    return wall, json.loads(lines[-1][4:])


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("folder", type=Path)
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--workers", type=int, default=os.cpu_count() or 1)
    ap.add_argument("--against", type=Path, help="another checkout of jobtui to compare")
    args = ap.parse_args()
    folder = args.folder.resolve()
    docs = sum(1 for p in folder.rglob("*") if p.suffix.lower() == ".pdf" and p.is_file())
    if not docs:
        print(f"no PDFs in {folder}", file=sys.stderr)
        return 2
    trees = {"jobtui": ROOT}
    if args.against is not None:
        trees["against"] = args.against.resolve()
    names = ["pool", *trees]
    got: dict[str, list[tuple[float, dict[str, float]]]] = {n: [] for n in names}
    completed: dict[str, list[int]] = {n: [] for n in trees}  # jobs each run completed
    with tempfile.TemporaryDirectory(prefix="jobtui-cpu-") as tmp:
        for i in range(args.rounds):
            order = names[i % len(names) :] + names[: i % len(names)]
            for name in order:
                work = Path(tmp) / f"{name}{i}"
                work.mkdir()
                head = [sys.executable, "-c", WRAPPER]
                if name == "pool":
                    script = str(BENCH / "_peer_pool.py")
                    cmd = [
                        *head,
                        "script",
                        script,
                        str(folder),
                        str(work / "out"),
                        str(args.workers),
                    ]
                    (work / "out").mkdir()
                    got[name].append(run(cmd, BENCH, dict(os.environ), work))
                else:
                    tree = trees[name]
                    cmd = [*head, "jobtui", "-", "--store", str(work / "jobs.db"), "run"]
                    cmd += [str(folder), "--output", str(work / "out"), "--json"]
                    env = {**os.environ, "PYTHONPATH": str(tree)}
                    got[name].append(run(cmd, tree, env, work))
                    report = json.loads((work / "stdout").read_text() or "{}")
                    completed[name].append(report.get("counts", {}).get("completed", 0))
                shutil.rmtree(work)
            print(
                f"round {i + 1}: "
                + ", ".join(
                    f"{n} {got[n][-1][0]:.2f} s wall, {got[n][-1][1]['process']:.2f} s CPU"
                    for n in names
                ),
                file=sys.stderr,
            )
    figures: dict[str, dict[str, float]] = {}
    for name, runs in got.items():
        process = statistics.median(c["process"] for _, c in runs)
        figures[name] = {
            "wall_s": round(statistics.median(w for w, _ in runs), 3),
            "process_cpu_s": round(process, 3),
            "main_thread_cpu_s": round(statistics.median(c["main_thread"] for _, c in runs), 3),
            "process_cpu_ms_per_doc": round(process / docs * 1000, 3),
        }
    print(
        json.dumps(
            {"documents": docs, "rounds": args.rounds, "median": figures, "completed": completed}
        )
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
