"""``jobtui run PATH...``: make sure these files have their outputs in ``--output``.

Every file of the run ends with a completed job, or the run says why not:

* new content is enqueued as one batch and processed here;
* content completed earlier with the same (normalised) parameters is not computed
  again: its outputs are linked (or copied) into ``--output`` under the file's own
  name, and the file is reported ``done earlier``;
* content whose job failed or was cancelled is retried (a new attempt) unless
  ``--no-retry-failed``; content still queued from before (an interrupted run) is
  processed here; content running in another process is waited for;
* two files with the same bytes share one job, and each gets its own named outputs.

The engine here claims only those jobs (its batch plus the earlier jobs it adopted),
never other work in a shared store, unless ``--drain``. Exit 0 only when every file
has a completed job and its outputs are in place.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import time
from typing import Any

from jobtui.engine.api import (
    ClaimScope,
    OperatorAPI,
    local_engine,
    place_outputs,
    short_id,
    start_worker_processes,
)
from jobtui.engine.config import Settings
from jobtui.engine.logsetup import status
from jobtui.engine.models import Job, JobStatus, Outcome, new_id
from jobtui.engine.registry import Registry
from jobtui.engine.signals import ShutdownSignals, signal_name
from jobtui.tui.cli_common import (
    EXIT_JOB_FAILED,
    EXIT_OK,
    check_enqueue_args,
    chosen_types,
    scan_progress,
    with_api,
)
from jobtui.tui.run_files import RunFile, file_line
from jobtui.tui.run_progress import RunProgress, RunState

TICK = 0.5  # seconds between progress refreshes while waiting
RETRIED_STATUSES = (JobStatus.FAILED, JobStatus.CANCELLED)


def add_run_options(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--no-retry-failed",
        action="store_true",
        help="files whose earlier job failed or was cancelled stay failed (default: retry them)",
    )
    p.add_argument(
        "--drain",
        action="store_true",
        help="also process every other pending job of the store (default: only this run's)",
    )


def _bump_concurrency(args: argparse.Namespace, settings: Settings) -> None:
    if (
        getattr(args, "concurrency", None) is None
        and "concurrency" not in settings.model_fields_set
    ):
        # A batch run wants every core busy: while one job waits on the store or
        # writes its files, another's pages are in the process pool.
        settings.concurrency = max(
            settings.concurrency, 4 * (settings.cpu_workers or os.cpu_count() or 1)
        )


async def cmd_run(args: argparse.Namespace, settings: Settings, registry: Registry) -> int:
    # 'run' processes its own batch here: asking for that is the operator's explicit
    # choice, whatever a shared config says about the background worker.
    settings = settings.model_copy(update={"claim": True})
    job_type, params = check_enqueue_args(args, registry)
    _, types = chosen_types(registry, args.type)
    served = registry.select(settings.types)
    uses_workers = any(jt.worker_preload or jt.worker_warm for jt in types if jt.name in served)
    if uses_workers:
        # Loads what the types' worker processes need in the background while the
        # folder is scanned.
        start_worker_processes(registry)
    _bump_concurrency(args, settings)

    async def body(api: OperatorAPI) -> int:
        batch_id = new_id()
        scope = None if args.drain else ClaimScope(batch_id=batch_id)
        engine = local_engine(api, settings, scope=scope)
        run = _Run(args, settings, api, batch_id, engine)
        engine.terminal_hooks.add(run.on_terminal)

        async def work() -> None:
            # The engine runs before the enqueue: jobs are written as files are hashed,
            # largest first, so the first documents run while the rest of the folder
            # is still hashed. The worker processes start meanwhile too (~10 ms each,
            # forked from the server loading since the command began), so the first
            # document's CPU work is not held up by them; a re-run whose files were
            # all done earlier pays that, overlapped with its scan.
            if uses_workers:
                warming.append(asyncio.create_task(engine.pool().warm()))
            await run.enqueue(job_type, params)
            await run.adopt_earlier_jobs()
            await run.wait()

        # Awaited before the engine (and its pool) stops, even after Ctrl-C: a pool
        # closed while it starts processes could leave one behind.
        warming: list[asyncio.Task[None]] = []

        work_task: asyncio.Task[None] | None = None

        def interrupt(_sig: int) -> None:
            if work_task is not None:
                work_task.cancel()

        with ShutdownSignals(interrupt) as signals:
            await engine.start()
            work_task = asyncio.create_task(work())
            try:
                await work_task
            except asyncio.CancelledError:
                if signals.received is None or not work_task.cancelled():
                    raise
            finally:
                run.progress.close()
                handed_back = len(engine.running)
                await asyncio.gather(*warming, return_exceptions=True)
                await engine.stop(grace=0)
            if signals.received is not None and work_task.cancelled():
                await run.explain_interrupt(signal_name(signals.received), handed_back)
                return signals.exit_code or EXIT_JOB_FAILED
        return await run.finish()

    return await with_api(settings, registry, body)


class _Run:
    def __init__(
        self,
        args: argparse.Namespace,
        settings: Settings,
        api: OperatorAPI,
        batch_id: str,
        engine: Any,
    ) -> None:
        self.args = args
        self.settings = settings
        self.api = api
        self.batch_id = batch_id
        self.engine = engine
        self.start = time.monotonic()
        self.report: Any = None
        self.files: list[RunFile] = []
        self.jobs: dict[str, Job] = {}  # the run's jobs by id (one per content)
        self.outside: set[str] = set()  # jobs of the run in other batches
        self.unserved: set[str] = set()  # unfinished jobs of types not served here
        self.pages = 0
        self.progress = RunProgress.for_stderr(args.json, emit=status)

    def on_terminal(self, job: Job, outcome: Outcome) -> None:
        pages = (outcome.results or {}).get("pages")
        if isinstance(pages, int):
            self.pages += pages

    async def enqueue(self, job_type: str | None, params: dict[str, Any]) -> None:
        self.report = await self.api.enqueue_paths(
            self.args.paths,
            job_type=job_type,  # None (auto): each file under the type declaring it
            parameters=params,
            force=self.args.force,
            recursive=not self.args.no_recursive,
            batch_name=self.args.name,
            on_progress=scan_progress(self.args.json),
            batch_id=self.batch_id,
        )
        if not self.args.json:
            status(self.report.summary_line())
        self.files = [RunFile(path, key) for path, key in self.report.keys.items()]

    async def adopt_earlier_jobs(self) -> None:
        """Find every file's job; retry failed ones, and serve the earlier jobs that
        still need work (queued by an interrupted run) alongside this batch."""
        by_key = await self.api.jobs_by_dedupe_keys(sorted({f.key for f in self.files}))
        retry: set[str] = set()
        for f in self.files:
            f.job = by_key.get(f.key)
            if f.job is None or f.job.batch_id == self.batch_id:
                continue
            self.outside.add(f.job.job_id)
            if f.job.status is JobStatus.COMPLETED:
                f.earlier = True
            elif f.job.status in RETRIED_STATUSES and not self.args.no_retry_failed:
                retry.add(f.job.job_id)
                f.retried = True
        for job_id in sorted(retry):
            await self.api.retry_job(job_id)
        for f in self.files:  # pending now, whatever was read before
            if f.retried and f.job is not None:
                f.job = f.job.model_copy(update={"status": JobStatus.PENDING})
        self.jobs = {f.job.job_id: f.job for f in self.files if f.job is not None}
        # Jobs of a type this engine does not serve (``--types``) are left to other
        # workers and not waited for: a run must end.
        served = set(self.engine.registry.names())
        self.unserved = {
            j.job_id
            for j in self.jobs.values()
            if not j.status.terminal and j.job_type not in served
        }
        self.outside -= self.unserved
        self.engine.serve_also(self.outside)

    async def _refresh_outside(self) -> bool:
        """Re-read the run's jobs in other batches that are not finished; True when
        all are."""
        waiting = [j for j in self.outside if not self.jobs[j].status.terminal]
        if not waiting:
            return True
        keys = [self.jobs[j].dedupe_key for j in waiting if self.jobs[j].dedupe_key]
        fresh = await self.api.jobs_by_dedupe_keys(keys)  # type: ignore[arg-type]
        for job in fresh.values():
            self.jobs[job.job_id] = job
        return all(self.jobs[j].status.terminal for j in waiting)

    async def wait(self) -> None:
        """Until every job of the run is finished, here or elsewhere; progress meanwhile."""
        mine = bool(self.report.job_ids)
        # Known before the first look: with the first document claimed as soon as it
        # is hashed, small jobs can all be done by then (and would look like a re-run).
        self.progress.expect(mine or any(not self.jobs[j].status.terminal for j in self.outside))
        unserved_here = sum(1 for j in self.unserved if self.jobs[j].batch_id == self.batch_id)
        batch_done = (
            asyncio.ensure_future(self.engine.wait_batch(self.batch_id))
            if mine and not unserved_here
            else None
        )
        try:
            while True:
                outside_done = await self._refresh_outside()
                if self.progress.mode != "off":  # --json: no counting for nobody
                    self.progress.update(await self._state())
                if unserved_here:  # the batch cannot finish here: all but those
                    summary = await self.api.batch(self.batch_id)
                    left = summary.total - summary.done if summary else 0
                    running = summary.counts.get("processing", 0) if summary else 0
                    mine_done = left <= unserved_here and not running
                else:
                    mine_done = batch_done is None or batch_done.done()
                if outside_done and mine_done:
                    return
                if batch_done is not None and not batch_done.done():
                    await asyncio.wait([batch_done], timeout=TICK)
                else:
                    await asyncio.sleep(TICK)
        finally:
            if batch_done is not None:
                batch_done.cancel()

    async def _state(self) -> RunState:
        state = RunState(pages=self.pages)
        counts: dict[str, int] = {}
        if self.report.job_ids:
            summary = await self.api.batch(self.batch_id)
            counts = dict(summary.counts) if summary else {}
        for j in self.outside:
            s = self.jobs[j].status.value
            counts[s] = counts.get(s, 0) + 1
        state.total = sum(counts.values())
        state.done = sum(counts.get(s.value, 0) for s in JobStatus if s.terminal)
        state.failed = counts.get("failed", 0) + counts.get("cancelled", 0)
        state.running = counts.get("processing", 0)
        state.elsewhere = max(0, state.running - len(self.engine.running))
        return state

    async def finish(self) -> int:
        final = await self.api.jobs_by_dedupe_keys(sorted({f.key for f in self.files}))
        out_dir = str(self.settings.output_dir)
        for f in self.files:
            f.job = final.get(f.key, f.job)
            if f.job is not None and f.job.status is JobStatus.COMPLETED:
                self._place(f, out_dir)
        self._print()
        return EXIT_OK if all(f.ok for f in self.files) else EXIT_JOB_FAILED

    def _place(self, f: RunFile, out_dir: str) -> None:
        job = f.job
        assert job is not None
        source = job.path or f.path
        try:
            f.outputs = place_outputs(job.results, source, f.path, out_dir)
        except OSError as exc:
            where = exc.filename or out_dir
            f.output_error = (
                f"cannot place the outputs in {out_dir}: {where}: {exc.strerror or exc}"
                + (" (--force computes it again)" if isinstance(exc, FileNotFoundError) else "")
            )

    def _print(self) -> None:
        elapsed = round(time.monotonic() - self.start, 3)
        counts: dict[str, int] = {}
        for f in self.files:
            counts[f.status] = counts.get(f.status, 0) + 1
        jobs = list({f.job.job_id: f.job for f in self.files if f.job is not None}.values())
        out_dir = os.path.abspath(self.settings.output_dir)
        batch = self.batch_id if self.report.job_ids else None
        if self.args.json:
            job_counts: dict[str, int] = {}
            for j in jobs:
                job_counts[j.status.value] = job_counts.get(j.status.value, 0) + 1
            print(
                json.dumps(
                    {
                        "batch_id": batch,
                        "output_dir": out_dir,
                        "total": len(jobs),
                        "counts": job_counts,
                        "file_counts": counts,
                        "elapsed_s": elapsed,
                        "files": [f.summary() for f in self.files],
                        "jobs": [j.summary() for j in jobs],
                        "duplicates": self.report.duplicates,
                        "skipped": self.report.skipped,
                    },
                    default=str,
                )
            )
            return
        for f in self.files:
            print(file_line(f))
        parts = ", ".join(f"{n} {s.replace('_', ' ')}" for s, n in sorted(counts.items()))
        what = f"batch {short_id(batch)}: " if batch else ""
        n = len(self.files)
        print(f"{what}{n} file{'s' if n != 1 else ''} ({parts}) in {elapsed:.2f}s")
        if self.files:
            print(f"outputs in {out_dir}")

    async def explain_interrupt(self, signame: str, handed_back: int) -> None:
        """What happens to the run's jobs now, said plainly on stderr."""
        waiting = 0
        if self.report is not None and self.report.job_ids:
            summary = await self.api.batch(self.batch_id)
            if summary:
                waiting = summary.counts.get("pending", 0)
        status(f"{signame}: stopped.")
        if handed_back:
            status(f"{handed_back} running job(s) went back to the queue (no attempt used).")
        if waiting:
            b = short_id(self.batch_id)
            status(
                f"{waiting} job(s) of batch {b} wait in the queue: run the same command "
                f"again to finish them here, start `jobtui worker`, or `jobtui cancel --batch {b}`."
            )
        if self.report is None:
            status("the folder was still being scanned; jobs written so far stay queued.")
