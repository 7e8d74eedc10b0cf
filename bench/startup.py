"""Start-up of ``jobtui run``: from launching the command to its first job starting.

Runs ``python -m jobtui.tui --store FRESH run DIR --json`` (what the ``jobtui``
command runs) ``--repeat`` times, each on a fresh embedded store, and reads the first
job's ``started_at`` (the claim) from the store: ``startup_s`` is that instant minus
the launch. Also times ``import jobtui.tui.cli`` alone in a fresh interpreter (the
imports on the start path) and an empty interpreter (``python -c pass``), so a slow
start can be split into interpreter, imports, and the rest (store, scan, hashing,
enqueue, claim).

Target (issue 15): ``startup_s`` <= 0.25 on a quiet machine. Best of the runs counts (a
busy machine only ever makes a run slower). Last line: one JSON object.

    python bench/startup.py [DIR] [--generate 50] [--repeat 7]

Without DIR, a temporary folder with ``--generate`` generated PDFs is used.
"""

from __future__ import annotations

import argparse
import json
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(Path(__file__).resolve().parent))

from pdf_throughput import compile_project, generate  # noqa: E402  (a sibling bench script)


def run_once(target: Path, work: Path) -> float:
    store, out = work / "jobs.db", work / "out"
    store.unlink(missing_ok=True)
    cmd = [sys.executable, "-m", "jobtui.tui", "--store", str(store), "run", str(target)]
    cmd += ["--output", str(out), "--json"]
    with open(work / "stdout.json", "w") as out_f, open(work / "stderr.txt", "w") as err_f:
        launched = time.time()
        code = subprocess.Popen(cmd, cwd=ROOT, stdout=out_f, stderr=err_f).wait()
    if code not in (0, 1):
        raise SystemExit(f"jobtui run failed ({code}):\n{(work / 'stderr.txt').read_text()}")
    with sqlite3.connect(store) as db:
        (first,) = db.execute("SELECT min(started_at) FROM jobs").fetchone()
    return first / 1e6 - launched


def wall(code: str) -> float:
    t0 = time.perf_counter()
    subprocess.run([sys.executable, "-c", code], cwd=ROOT, check=True)
    return time.perf_counter() - t0


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("dir", type=Path, nargs="?")
    ap.add_argument("--generate", type=int, default=50, metavar="N")
    ap.add_argument("--repeat", type=int, default=7)
    args = ap.parse_args()

    compile_project()
    with tempfile.TemporaryDirectory(prefix="jobtui-startup-") as tmp:
        work = Path(tmp)
        target = args.dir
        if target is None:
            target = work / "pdfs"
            generate(target, args.generate, scanned_every=0)
        startup, imports, bare = [], [], []
        for _ in range(args.repeat):
            bare.append(wall("pass"))
            imports.append(wall("import jobtui.tui.cli"))
            startup.append(run_once(target, work))
        print(
            f"startup (launch -> first job claimed): best {min(startup):.3f} s, "
            f"median {statistics.median(startup):.3f} s; "
            f"interpreter {min(bare):.3f} s, interpreter + CLI imports {min(imports):.3f} s",
            file=sys.stderr,
        )
        print(
            json.dumps(
                {
                    "startup_best_s": round(min(startup), 3),
                    "startup_median_s": round(statistics.median(startup), 3),
                    "startup_runs_s": [round(s, 3) for s in startup],
                    "interpreter_s": round(min(bare), 3),
                    "cli_imports_s": round(min(imports), 3),
                    "target_s": 0.25,
                }
            )
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
