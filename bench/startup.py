"""Start-up of ``jobtui run``: from launching the command to its first job starting.

Runs ``python -m jobtui.tui --store FRESH run DIR --json`` (what the ``jobtui``
command runs) ``--repeat`` times, each on a fresh embedded store, and reads the first
job's ``started_at`` (the claim) from the store: ``startup_s`` is that instant minus
the launch. Also times ``import jobtui.tui.cli`` alone in a fresh interpreter (the
imports on the start path), an empty interpreter (``python -c pass``), and the
libraries no start can do without as jobtui is built (``FLOOR``: asyncio, sqlite3 and
pydantic, whose models the settings, the registry and the store speak), so a slow
start can be split into interpreter, imports, and the rest (store, scan, hashing,
enqueue, claim), and the part jobtui's own code could still win told apart. Two more
references bracket that floor: the standard library alone (``STDLIB``: what a start
path without pydantic would still import) and ``FLOOR`` plus pydantic-settings, which
the ``Settings`` model is built on (``SETTINGS_FLOOR``: the floor as jobtui is
designed).

Target (issue 15): ``startup_s`` <= 0.25 on a quiet machine. Best of the runs counts (a
busy machine only ever makes a run slower). Last line: one JSON object.

``--phases`` adds as many traced runs: the same command through a small wrapper that
does what ``jobtui.tui.launch.main`` does, marking the wall-clock instant each step
of the start ends (interpreter, fork server start, imports, settings, registry,
checks, store open, engine start; then the first job's ``created_at`` (enqueued) and
``started_at`` (claimed) from the store). The phases of the fastest traced run are
printed and put in the JSON line (``phases_s``).

    python bench/startup.py [DIR] [--generate 50] [--repeat 7] [--phases]

Without DIR, a temporary folder with ``--generate`` generated PDFs is used.
"""

from __future__ import annotations

import argparse
import json
import os
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

# The traced run: launch.main's steps, each followed by a mark (wall clock), and the
# later steps wrapped where cli.main calls them. Marks go to MARKS as JSON at exit.
TRACE = """
import atexit, json, os, sys, time
marks = [("interpreter", time.time())]
def mark(name):
    marks.append((name, time.time()))
atexit.register(lambda: open(os.environ["MARKS"], "w").write(json.dumps(marks)))
from jobtui.tui import launch
argv = sys.argv[1:]
workers = launch.needs_workers(argv)
if workers:
    from jobtui.engine.forkstart import start_forkserver
    start_forkserver()
    mark("fork server start")
import jobtui.tui.cli as cli
import jobtui.tui.cli_common as common
import jobtui.tui.commands_run as run
mark("imports")
def after(module, name, label, is_async=False):
    fn = getattr(module, name)
    if is_async:
        async def wrapped(*a, **k):
            out = await fn(*a, **k)
            mark(label)
            return out
    else:
        def wrapped(*a, **k):
            out = fn(*a, **k)
            mark(label)
            return out
    setattr(module, name, wrapped)
after(cli, "settings_from_args", "settings")
after(cli, "default_registry", "registry")
after(run, "_bump_concurrency", "checks")
after(common, "connect", "store open", is_async=True)
def local_engine(*a, **k):
    engine = orig_local_engine(*a, **k)
    start = engine.start
    async def started():
        await start()
        mark("engine start")
    engine.start = started
    return engine
orig_local_engine, run.local_engine = run.local_engine, local_engine
code = cli.main(argv)
if workers:
    launch.exit_now(code)
sys.exit(code)
"""


def run_once(target: Path, work: Path, trace: bool = False) -> tuple[float, dict[str, float]]:
    """Launch -> first job claimed (s); with ``trace``, also the phases (s each)."""
    store, out, marks = work / "jobs.db", work / "out", work / "marks.json"
    store.unlink(missing_ok=True)
    marks.unlink(missing_ok=True)
    head = ["-c", TRACE] if trace else ["-m", "jobtui.tui"]
    cmd = [sys.executable, *head, "--store", str(store), "run", str(target)]
    cmd += ["--output", str(out), "--json"]
    env = {**os.environ, "MARKS": str(marks)}
    with open(work / "stdout.json", "w") as out_f, open(work / "stderr.txt", "w") as err_f:
        launched = time.time()
        code = subprocess.Popen(cmd, cwd=ROOT, stdout=out_f, stderr=err_f, env=env).wait()
    if code not in (0, 1):
        raise SystemExit(f"jobtui run failed ({code}):\n{(work / 'stderr.txt').read_text()}")
    with sqlite3.connect(store) as db:
        first_enqueued, first_claimed = db.execute(
            "SELECT min(created_at), min(started_at) FROM jobs"
        ).fetchone()
    phases: dict[str, float] = {}
    if trace:
        steps = [("launch", launched), *json.loads(marks.read_text())]
        steps += [("scan, hash, enqueue", first_enqueued / 1e6), ("claim", first_claimed / 1e6)]
        for (_, t0), (name, t1) in zip(steps, steps[1:], strict=False):
            phases[name] = round(t1 - t0, 4)
    return first_claimed / 1e6 - launched, phases


STDLIB = "import argparse, asyncio, hashlib, json, sqlite3"
FLOOR = (
    STDLIB + "\nfrom pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator"
)
SETTINGS_FLOOR = FLOOR + "\nimport pydantic_settings"


def wall(code: str) -> float:
    t0 = time.perf_counter()
    subprocess.run([sys.executable, "-c", code], cwd=ROOT, check=True)
    return time.perf_counter() - t0


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("dir", type=Path, nargs="?")
    ap.add_argument("--generate", type=int, default=50, metavar="N")
    ap.add_argument("--repeat", type=int, default=7)
    ap.add_argument("--phases", action="store_true", help="also time each step (traced runs)")
    args = ap.parse_args()

    compile_project()
    with tempfile.TemporaryDirectory(prefix="jobtui-startup-") as tmp:
        work = Path(tmp)
        target = args.dir
        if target is None:
            target = work / "pdfs"
            generate(target, args.generate, scanned_every=0)
        startup, imports, bare, floor = [], [], [], []
        stdlib, settings_floor = [], []
        traced: list[tuple[float, dict[str, float]]] = []
        for _ in range(args.repeat):
            bare.append(wall("pass"))
            floor.append(wall(FLOOR))
            stdlib.append(wall(STDLIB))
            settings_floor.append(wall(SETTINGS_FLOOR))
            imports.append(wall("import jobtui.tui.cli"))
            startup.append(run_once(target, work)[0])
            if args.phases:
                traced.append(run_once(target, work, trace=True))
        phases = min(traced)[1] if traced else {}
        if phases:
            print(f"phases of the fastest of {len(traced)} traced runs:", file=sys.stderr)
            for name, secs in phases.items():
                print(f"  {name:<20} {secs:.3f} s", file=sys.stderr)
            print(f"  {'total':<20} {min(traced)[0]:.3f} s", file=sys.stderr)
        print(
            f"startup (launch -> first job claimed): best {min(startup):.3f} s, "
            f"median {statistics.median(startup):.3f} s; "
            f"interpreter {min(bare):.3f} s, interpreter + CLI imports {min(imports):.3f} s, "
            f"interpreter + asyncio, sqlite3, pydantic {min(floor):.3f} s "
            f"(without pydantic {min(stdlib):.3f} s; with pydantic-settings too "
            f"{min(settings_floor):.3f} s)",
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
                    "floor_imports_s": round(min(floor), 3),
                    "stdlib_imports_s": round(min(stdlib), 3),
                    "settings_floor_s": round(min(settings_floor), 3),
                    "target_s": 0.25,
                    **({"phases_s": phases} if phases else {}),
                }
            )
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
