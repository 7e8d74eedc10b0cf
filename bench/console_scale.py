"""How the console behaves with 100,000 jobs in the store and a batch running.

Runs the real ``JobtuiApp`` headless (120x40) over a SQLite store holding ``--jobs``
jobs in batches of 1,000, with an engine in the same process working through a
batch of short ``sleep`` jobs, and measures per refresh:

* the longest time the event loop was blocked (a 5 ms ticker records how late it
  wakes; the lag is attributed to the refresh window it falls in), and the time
  the refresh spent rendering (synchronous, on the loop);
* the store commands and the documents (rows) they returned, counted by a proxy
  around the store.

The console is driven through "all jobs", the running batch, and pages 2 and 3.
Target: no block over 50 ms; documents per refresh bounded by the visible rows plus
a constant, whatever the number of jobs. The last line printed is one JSON object.

    python bench/console_scale.py [--jobs 100000] [--refreshes 40] [--pdf DIR]

With ``--pdf DIR`` the running batch transcribes real PDFs, so the CPU worker
processes compete with the console for the cores (their niceness is what keeps the
console responsive then).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from jobtui.engine.api import OperatorAPI
from jobtui.engine.config import Settings
from jobtui.engine.models import Batch, Job, JobStatus, utcnow
from jobtui.engine.registry import default_registry
from jobtui.engine.store.sqlite import SQLiteStore
from jobtui.engine.worker import Engine

BATCH = 1000
TICK = 0.005


class CountingStore:
    """Delegates to a store; counts the commands and the documents they return."""

    def __init__(self, inner: Any) -> None:
        self._inner = inner
        self.commands = 0
        self.documents = 0
        self.counting = False

    def __getattr__(self, name: str) -> Any:
        attr = getattr(self._inner, name)
        if not callable(attr) or not asyncio.iscoroutinefunction(attr):
            return attr

        async def call(*args: Any, **kwargs: Any) -> Any:
            result = await attr(*args, **kwargs)
            if self.counting:
                self.commands += 1
                if isinstance(result, list | dict):
                    self.documents += len(result)
                elif result is not None and not isinstance(result, bool | int):
                    self.documents += 1
            return result

        return call


async def fill(store: SQLiteStore, n: int) -> None:
    """``n`` finished and pending jobs in batches of 1,000 (as an old queue would hold)."""
    now = utcnow()
    statuses = [JobStatus.COMPLETED] * 8 + [JobStatus.FAILED, JobStatus.PENDING]
    for b in range(0, n, BATCH):
        batch = Batch(name=f"archive-{b // BATCH:04d}", total_jobs=min(BATCH, n - b))
        jobs = []
        for i in range(b, min(b + BATCH, n)):
            status = statuses[i % len(statuses)]
            jobs.append(
                Job(
                    job_type="noop-archived",
                    status=status,
                    batch_id=batch.batch_id,
                    parameters={"path": f"/archive/{b // BATCH:04d}/doc-{i:06d}.pdf"},
                    created_at=now,
                    started_at=now if status.terminal else None,
                    completed_at=now if status.terminal else None,
                )
            )
        await store.insert_jobs(jobs)
        await store.create_batch(batch)


async def run(
    n_jobs: int, refreshes: int, folder: Path, pdf_dir: Path | None = None
) -> dict[str, Any]:
    from jobtui.tui.app import JobtuiApp
    from jobtui.tui.console import start_process_helpers
    from jobtui.tui.widgets.tables import KeyedTable

    os.environ["JOBTUI_CONFIG_DIR"] = str(folder / "config")
    raw = SQLiteStore(folder / "jobs.db")
    await raw.open()
    t0 = time.perf_counter()
    await fill(raw, n_jobs)
    fill_s = time.perf_counter() - t0

    store = CountingStore(raw)
    start_process_helpers()
    settings = Settings(concurrency=8, poll_interval=0.1, output_dir=folder / "out")
    engine = Engine(raw, default_registry(), settings)
    await engine.start()
    if pdf_dir is None:
        running = await OperatorAPI(engine.store, engine.registry).enqueue(
            "sleep", [{"seconds": 0.3} for _ in range(400)], batch_name="running"
        )
    else:  # real CPU work: the worker processes compete with the console for the cores
        pdfs = sorted(str(p) for p in pdf_dir.rglob("*.pdf"))
        running = await OperatorAPI(engine.store, engine.registry).enqueue(
            "pdf.transcribe", [{"path": p} for p in pdfs], batch_name="running"
        )
    # The console's own API over the counting store: the engine's commands are not counted.
    console_api = OperatorAPI(store, engine.registry)  # type: ignore[arg-type]
    app = JobtuiApp(api=console_api, engine=engine, settings=settings, refresh_interval=0.25)

    loop = asyncio.get_running_loop()
    lags: list[tuple[float, float]] = []  # (when, how late)
    stop = asyncio.Event()

    async def ticker() -> None:
        while not stop.is_set():
            before = loop.time()
            await asyncio.sleep(TICK)
            lags.append((loop.time(), loop.time() - before - TICK))

    # The longest single callback the loop ran (asyncio.Handle._run), per window: what
    # one piece of code blocked for, as opposed to the ticker's lag (a whole loop
    # iteration of many short callbacks, plus the wait for the GIL).
    # Wall time includes being descheduled on a busy machine; the main thread's CPU
    # time (thread_time) is what the console itself spent, so both are reported.
    callbacks: list[tuple[float, float, float]] = []  # (when it ended, wall ms, cpu ms)
    original_handle_run = asyncio.events.Handle._run

    def timed_handle_run(handle: asyncio.events.Handle) -> None:
        started, cpu = time.perf_counter(), time.thread_time()
        original_handle_run(handle)
        took = (time.perf_counter() - started) * 1000
        if took > 1:
            callbacks.append((loop.time(), took, (time.thread_time() - cpu) * 1000))

    asyncio.events.Handle._run = timed_handle_run  # type: ignore[method-assign]
    render_ms: list[float] = []
    paint_ms: list[float] = []  # Textual painting the screen (its compositor), per update
    from textual.screen import Screen

    original_paint = Screen._compositor_refresh

    def timed_paint(screen: Screen[Any]) -> None:
        started = time.perf_counter()
        original_paint(screen)
        paint_ms.append((time.perf_counter() - started) * 1000)

    Screen._compositor_refresh = timed_paint  # type: ignore[method-assign]
    windows: list[tuple[float, float, int, int, str]] = []  # start, end, commands, docs, view
    async with app.run_test(size=(120, 40)) as pilot:
        main = app.main
        original = main.show_snapshot

        def timed_show(snap: Any) -> None:
            started = time.perf_counter()
            original(snap)
            render_ms.append((time.perf_counter() - started) * 1000)

        main.show_snapshot = timed_show  # type: ignore[method-assign]
        await app.refresh_now()
        tick_task = asyncio.create_task(ticker())
        views = ["all jobs", "running batch", "running batch p2", "running batch p3"]
        for i in range(refreshes):
            view = views[min(i * len(views) // refreshes, len(views) - 1)]
            if view == "running batch" and main.batch_id != running.batch_id:
                main.select_batch(running.batch_id or "")
            elif view.endswith(("p2", "p3")) and len(main.cursors) < int(view[-1]):
                main.query_one("#jobs", KeyedTable).focus()
                await pilot.press("pagedown")
            store.commands = store.documents = 0
            store.counting = True
            start = loop.time()
            await app.refresh_now()
            store.counting = False
            windows.append((start, loop.time(), store.commands, store.documents, view))
        stop.set()
        await tick_task
        visible_rows = main.page_size()
        page_rows = len(main.jobs)
    Screen._compositor_refresh = original_paint  # type: ignore[method-assign]
    asyncio.events.Handle._run = original_handle_run  # type: ignore[method-assign]
    await engine.stop(grace=0)
    batch = await raw.get_batch(running.batch_id or "")
    await raw.close()

    per_refresh_block = []
    per_refresh_callback = []
    per_refresh_cpu = []
    for start, end, *_ in windows:
        inside = [lag for when, lag in lags if start <= when <= end + TICK]
        per_refresh_block.append(max(inside, default=0.0) * 1000)
        ran = [(ms, cpu) for when, ms, cpu in callbacks if start <= when <= end + TICK]
        per_refresh_callback.append(max((ms for ms, _ in ran), default=0.0))
        per_refresh_cpu.append(max((cpu for _, cpu in ran), default=0.0))
    docs = [w[3] for w in windows]
    commands = [w[2] for w in windows]
    return {
        "jobs": n_jobs + len(running.job_ids),
        "workload": "pdf.transcribe" if pdf_dir else "sleep",
        "fill_s": round(fill_s, 1),
        "refreshes": len(windows),
        "visible_rows": visible_rows,
        "page_rows_fetched": page_rows,
        "max_block_ms": round(max(per_refresh_block), 1),
        "p95_block_ms": round(
            sorted(per_refresh_block)[int(0.95 * (len(per_refresh_block) - 1))], 1
        ),
        "max_callback_cpu_ms": round(max(per_refresh_cpu), 1),
        "p95_callback_cpu_ms": round(
            sorted(per_refresh_cpu)[int(0.95 * (len(per_refresh_cpu) - 1))], 1
        ),
        "median_callback_cpu_ms": round(statistics.median(per_refresh_cpu), 1),
        "median_block_ms": round(statistics.median(per_refresh_block), 1),
        "max_callback_ms": round(max(per_refresh_callback), 1),
        "p95_callback_ms": round(
            sorted(per_refresh_callback)[int(0.95 * (len(per_refresh_callback) - 1))], 1
        ),
        "max_render_ms": round(max(render_ms), 1),
        "median_render_ms": round(statistics.median(render_ms), 1),
        "max_paint_ms": round(max(paint_ms), 1),
        "median_paint_ms": round(statistics.median(paint_ms), 1),
        "store_commands_per_refresh_max": max(commands),
        "documents_per_refresh_max": max(docs),
        "documents_per_refresh_median": statistics.median(docs),
        "running_batch_progress": batch.counts if batch else None,
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=100_000)
    parser.add_argument("--refreshes", type=int, default=40)
    parser.add_argument(
        "--pdf",
        type=Path,
        metavar="DIR",
        help="the running batch transcribes the PDFs in DIR (default: 400 sleep jobs)",
    )
    parser.add_argument(
        "--compare",
        type=int,
        default=1_000,
        help="also run with this many jobs to show documents do not grow (0: skip)",
    )
    args = parser.parse_args()
    results = {}
    sizes = [args.jobs] + ([args.compare] if args.compare else [])
    for n in sizes:
        with tempfile.TemporaryDirectory() as tmp:
            r = asyncio.run(run(n, args.refreshes, Path(tmp), args.pdf))
        results[n] = r
        print(
            f"{r['jobs']:>7} jobs: {r['refreshes']} refreshes, longest single callback "
            f"{r['max_callback_cpu_ms']} ms CPU (p95 {r['p95_callback_cpu_ms']} ms, median "
            f"{r['median_callback_cpu_ms']} ms), "
            f"{r['max_callback_ms']} ms wall (p95 {r['p95_callback_ms']} ms), longest ticker lag "
            f"{r['max_block_ms']} ms (p95 {r['p95_block_ms']} ms), render max "
            f"{r['max_render_ms']} ms, paint max {r['max_paint_ms']} ms (median "
            f"{r['median_paint_ms']} ms), {r['store_commands_per_refresh_max']} store commands "
            f"and at most {r['documents_per_refresh_max']} documents per refresh "
            f"({r['visible_rows']} visible rows); fill {r['fill_s']} s",
            file=sys.stderr,
        )
    big = results[args.jobs]
    summary = dict(big)
    summary["target_block_ms"] = 50
    summary["callback_cpu_ok"] = big["max_callback_cpu_ms"] <= 50
    summary["callback_ok"] = big["max_callback_ms"] <= 50
    summary["block_ok"] = big["max_block_ms"] <= 50
    if args.compare:
        small = results[args.compare]
        summary["documents_per_refresh_max_small"] = small["documents_per_refresh_max"]
        summary["small_jobs"] = small["jobs"]
    print(json.dumps(summary))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
