"""The engine: claim loop, running jobs, heartbeats, shutdown.

One ``Engine`` per process. It claims only registered job types and only for free
slots (global ``concurrency`` and each type's own limit). It wakes through the store:
``Store.listen`` for enqueues, retries and cancels made through the same store object
(the operator API in this process), ``Store.watch_wakeups`` for those made elsewhere
where the store can carry them, and otherwise it polls every ``poll_interval``. Each running job holds a
lease renewed by the heartbeat loop; the heartbeat's reply also carries operator
cancels, which cancel the handler's task (and so kill its worker process).
Shutdown stops claiming, lets running jobs finish within a grace period, then hands
their leases back without burning an attempt.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import functools
import logging
import math
import os
import socket
import time
import traceback
from collections.abc import AsyncIterator, Callable, Collection, Iterable, Sequence
from dataclasses import replace
from datetime import timedelta
from typing import Any

from pydantic import ValidationError

from jobtui.engine.attempts import POISON, call_handler, crash_error
from jobtui.engine.batchcounts import BatchRecounter
from jobtui.engine.config import Settings
from jobtui.engine.context import JobContext
from jobtui.engine.errors import ConfigError, JobCancelled, JobFailed
from jobtui.engine.finisher import Finisher, short
from jobtui.engine.finisher import until_done as _until_done
from jobtui.engine.inputs import output_dir_for
from jobtui.engine.logsink import LogSink
from jobtui.engine.loopwatch import LoopWatch
from jobtui.engine.models import (
    ErrorCode,
    Job,
    JobError,
    JobStatus,
    LogEntry,
    Outcome,
    WorkerInfo,
    new_id,
    utcnow,
)
from jobtui.engine.procpool import ProcessPool, WorkerCrashed, call_all
from jobtui.engine.registry import JobType, Registry
from jobtui.engine.retention import RetentionSweep
from jobtui.engine.store.base import (
    ClaimRequest,
    ClaimScope,
    LeaseState,
    Store,
    StoreError,
    Wake,
)
from jobtui.engine.watchdog import TerminalHooks, Watchdog
from jobtui.engine.webhooks import Webhooks

log = logging.getLogger(__name__)
TRACEBACK_CHARS = 8000  # of a handler's traceback kept in error.details
# How long a finished job may wait for others to be written with it (Finisher): its
# result is in the store at most this much later, and the slot is claimed again then.
FINISH_LINGER_S = 0.03
# Why jobs claimed but never started go back (the log line of the hand back): a claim
# was under way when the engine stopped, or was paused (``pause``: nothing new starts,
# as the console's quit question needs: it counts the jobs running when it asks).
STOPPED_WHILE_CLAIMING = "at shutdown (claimed as it stopped)"
PAUSED_WHILE_CLAIMING = "unstarted: claimed as it was paused"


def _describe(outcome: Outcome) -> str:
    """The outcome word of the per-job log line: ``completed``, ``failed CODE``, ..."""
    if outcome.status is JobStatus.PENDING:
        return "retry pending" + (f" ({outcome.error.code})" if outcome.error else "")
    code = f" {outcome.error.code}" if outcome.error and outcome.status is JobStatus.FAILED else ""
    return outcome.status.value + code


class _Running:
    __slots__ = (
        "cancel_requested",
        "ctx",
        "deadline",
        "finishing",
        "handing_back",
        "job",
        "jt",
        "started",
        "task",
        "timed_out",
        "token",
    )

    def __init__(self, job: Job, jt: JobType, token: str, ctx: JobContext) -> None:
        self.job = job
        self.jt = jt
        self.token = token
        self.ctx = ctx
        self.task: asyncio.Task[None] | None = None
        self.cancel_requested = False
        self.finishing = False  # the outcome is decided and queued: nothing may cancel it now
        self.handing_back = False  # cancelled to be handed back: cancelling again would
        # interrupt the hand back itself
        self.started = False  # _run_job has begun: before, a cancel would skip its body
        #: loop time by which the handler must have returned (None: no limit, or it
        #: returned); enforced by the engine's one deadline timer (``_check_deadlines``)
        self.deadline: float | None = None
        self.timed_out = False  # the deadline passed while the handler ran

    def interrupt(self) -> None:
        """Cancel the job's task; one that has not begun yet is cancelled by
        ``_run_job`` itself as it begins (a task cancelled before its first step never
        runs its body: nothing would hand the job back or free its slot)."""
        if self.task is not None and self.started:
            self.task.cancel()


class Engine:
    """Runs registered handlers for claimed jobs.

    ``store``: an opened Store. ``registry``: the job types this engine serves
    (``settings.types`` globs narrow it further). ``settings``: concurrency,
    lease_seconds, heartbeat_interval, poll_interval, watchdog_interval,
    shutdown_grace, output_dir, cpu_workers. ``run_watchdog``: whether this engine
    also recovers expired leases (safe in many engines at once). ``scope``: claim
    only these jobs (a batch and named jobs; ``jobtui run``), or all when None;
    ``serve_also`` widens it while the engine runs.
    """

    def __init__(
        self,
        store: Store,
        registry: Registry,
        settings: Settings | None = None,
        *,
        run_watchdog: bool = True,
        worker_id: str | None = None,
        scope: ClaimScope | None = None,
    ) -> None:
        self.store = store
        self.scope = scope
        self.settings = settings or Settings()
        unmatched = [t for t in self.settings.types or [] if not registry.select([t]).names()]
        if unmatched:  # a typo, or a plug-in not installed here: serving nothing is no use
            raise ConfigError(
                "UNKNOWN_JOB_TYPE",
                f"no job type registered here matches --types {' '.join(unmatched)}; "
                f"registered: {', '.join(registry.names()) or 'none'}",
            )
        self.registry = registry.select(self.settings.types)
        self.worker_id = worker_id or f"{socket.gethostname()}:{os.getpid()}:{new_id()[:6]}"
        self.logs = LogSink(store)
        self._jobs: dict[str, _Running] = {}
        self._start_mono = time.monotonic()  # reset by start(); throughput's time base
        self._wake = asyncio.Event()
        # The finisher also claims for the slots its finishes free (one transaction
        # on SQLite); one claim at a time, from there or from the claim loop, so the
        # free slots are never counted twice.
        self._finisher = Finisher(
            store, self.worker_id, claimer=self, linger=FINISH_LINGER_S, gather=self._to_gather
        )
        self._claiming = False
        self._poke = asyncio.Event()
        self._slot_free = asyncio.Event()
        self._waiting_for_work = asyncio.Event()  # the claim loop found nothing to claim
        self._stopping = False
        self._stop_task: asyncio.Future[None] | None = None
        self._paused = False
        self._tasks: list[asyncio.Task[Any]] = []
        self._pool: ProcessPool | None = None
        #: makes each job's context; jobtui.engine.testing records progress through it
        self.context_factory: type[JobContext] = JobContext
        self._unlisten: Callable[[], None] | None = None
        #: called (never awaited by the engine) when a job this process ran or recovered
        #: reaches a terminal state; webhooks subscribe here.
        self.terminal_hooks = TerminalHooks()
        self.webhooks = Webhooks.from_settings(store, self.settings)
        self.terminal_hooks.add(self.webhooks.on_terminal)
        #: writes the seed's counters into batch documents (engine/batchcounts.py)
        self.batch_counts = BatchRecounter(store, on_recounted=self.webhooks.announce_soon)
        self.terminal_hooks.add(self.batch_counts.on_terminal)
        self._watchdog = (
            Watchdog(
                store,
                self.registry,
                self.logs,
                self.terminal_hooks,
                stall_timeout=self.settings.stall_timeout,
            )
            if run_watchdog
            else None
        )
        #: expires old finished jobs and log lines (engine/retention.py); with the watchdog
        self.retention = RetentionSweep(store, self.settings) if run_watchdog else None
        self._finished_times: collections.deque[float] = collections.deque(maxlen=10_000)
        # Running here per batch; the event is set when a batch's last one here ends.
        self._running_by_batch: collections.Counter[str | None] = collections.Counter()
        self._batch_idle = asyncio.Event()
        self.started_at = utcnow()
        self.claims = 0
        #: Set when the engine stopped for good because its store is no longer the one
        #: it was opened on (``STORE_REPLACED``); ``failed`` is set with it. Commands
        #: print it and exit 2; ``wait_batch`` raises it.
        self.fatal: StoreError | None = None
        self.failed = asyncio.Event()
        self.loop_watch = LoopWatch(self._loop_blocked, self.settings.loop_blocked_after)
        # Job timeouts: one timer, at the earliest deadline of the jobs running here
        # (not an asyncio.timeout per job); see _check_deadlines.
        self._deadline_timer: asyncio.TimerHandle | None = None
        self._deadline_at = math.inf
        #: what every job's context gets as ``settings`` (a copy each)
        self._ctx_settings: dict[str, Any] = {
            "input_roots": list(self.settings.input_roots),
            "input_refuse_hard_links": self.settings.input_refuse_hard_links,
        }

    # -- public surface ----------------------------------------------------------

    @property
    def running(self) -> dict[str, Job]:
        """The jobs running in this process, by id."""
        return {job_id: r.job for job_id, r in self._jobs.items()}

    @property
    def paused(self) -> bool:
        return self._paused

    def pause(self) -> None:
        """Start no new job (running ones go on): claim nothing, and hand back what a
        claim under way takes."""
        self._paused = True

    def resume(self) -> None:
        self._paused = False
        self.wake()

    def wake(self) -> None:
        """Claim now (jobs may have become claimable)."""
        self._wake.set()

    def serve_also(self, job_ids: Iterable[str]) -> None:
        """Add jobs to this engine's ``scope`` (no effect when it serves everything)."""
        if self.scope is not None:
            self.scope = replace(self.scope, job_ids=self.scope.job_ids | frozenset(job_ids))
            self.wake()

    def poke(self) -> None:
        """Run a heartbeat now (a cancel may have been asked for a job running here)."""
        self._poke.set()
        self.webhooks.announce_soon()  # a cancel may have finished a batch

    def _on_wake(self, wake: Wake) -> None:
        if wake is Wake.CANCEL:
            if self._jobs:
                self.poke()
        else:
            self.wake()

    def throughput(self, window: float = 60.0) -> float:
        """Jobs finished per second by this engine over the last ``window`` seconds."""
        now = time.monotonic()
        n = sum(1 for t in self._finished_times if now - t <= window)
        return n / min(window, max(now - self._start_mono, 1e-3))

    def pool(self) -> ProcessPool:
        """The warm process pool for CPU work, started on first use."""
        if self._pool is None:
            # What the served types declare: modules their processes preload (in the
            # fork server, once) and warm-ups run in each new process.
            warms = self.registry.worker_warm()
            self._pool = ProcessPool(
                self.settings.cpu_workers or os.cpu_count() or 1,
                initializer=functools.partial(call_all, warms) if warms else None,
                preload=("jobtui.engine.procpool", *self.registry.worker_preload()),
                niceness=self.settings.cpu_niceness,
                memory_limit=self.settings.cpu_memory_limit,
            )
        return self._pool

    async def start(self) -> None:
        self._start_mono = time.monotonic()
        self.loop_watch.start()
        self.logs.start()
        self.webhooks.start()
        await self._register_worker()
        self._unlisten = self.store.listen(self._on_wake)
        self._tasks = [
            asyncio.create_task(self._finisher.run(), name="jobtui-finisher"),
            asyncio.create_task(self._claim_loop(), name="jobtui-claim"),
            asyncio.create_task(self._heartbeat_loop(), name="jobtui-heartbeat"),
            self.batch_counts.start(),
        ]
        if self._watchdog is not None:
            self._tasks.append(
                asyncio.create_task(
                    self._watchdog.run(self.settings.watchdog_interval), name="jobtui-watchdog"
                )
            )
        if self.retention is not None:
            self._tasks.append(self.retention.start())
        # While the claim loop claims anyway, or waits for a slot, news of more work is
        # of no use: the stream is not read (no round trips) until it waits for work
        # again, and the next read catches up. A cancel from elsewhere meanwhile
        # arrives with the next heartbeat's reply.
        stream = self.store.watch_wakeups(self._waiting_for_work.wait)
        if stream is not None:
            self._tasks.append(asyncio.create_task(self._watch(stream), name="jobtui-watch"))

    async def stop(self, grace: float | None = None) -> None:
        """Stop claiming; wait up to ``grace`` seconds for running jobs; hand the rest back.

        Safe to call again while a stop is under way: the later call waits for the same
        stop, and with ``grace=0`` it first cuts the wait short (``hand_back_now``). The
        stop runs in its own task, so a caller that is cancelled (a console that exits
        while "finishing") does not leave jobs half stopped.
        """
        grace = self.settings.shutdown_grace if grace is None else grace
        if self._stop_task is None:
            self._stop_task = asyncio.ensure_future(self._stop(grace))
        elif grace <= 0:
            self.hand_back_now()
        await asyncio.shield(self._stop_task)

    @property
    def stopping(self) -> bool:
        return self._stopping

    def hand_back_now(self) -> int:
        """Stop claiming and hand every running job back now: to ``pending``, the
        attempt refunded (what ``stop`` does after its grace period). For a quit that
        should not wait, or a closed terminal. Returns how many jobs go back."""
        self._stopping = True
        self._wake.set()
        self._finisher.hurry()
        n = 0
        for r in self._jobs.values():
            if r.task is not None and not r.task.done() and not (r.finishing or r.handing_back):
                r.handing_back = True
                r.interrupt()  # _run_job sees _stopping and hands the lease back
                n += 1
        return n

    async def _stop(self, grace: float) -> None:
        self._stopping = True
        self._finisher.hurry()
        if self._unlisten is not None:
            self._unlisten()
            self._unlisten = None
        self._wake.set()
        running = [r.task for r in self._jobs.values() if r.task is not None]
        if running and grace > 0:
            await asyncio.wait(running, timeout=grace)
        self.hand_back_now()
        leftovers = [r.task for r in self._jobs.values() if r.task is not None]
        if leftovers:
            await asyncio.gather(*leftovers, return_exceptions=True)
        with contextlib.suppress(Exception):
            await self.batch_counts.flush()
        await self.webhooks.stop()  # a few seconds for deliveries still queued, then drop
        await self.loop_watch.stop()
        for t in self._tasks:
            t.cancel()
        if self._deadline_timer is not None:
            self._deadline_timer.cancel()
            self._deadline_timer, self._deadline_at = None, math.inf
        await asyncio.gather(*self._tasks, return_exceptions=True)
        await self.logs.stop()
        with contextlib.suppress(Exception):
            await self.store.remove_worker(self.worker_id)
        if self._pool is not None:
            await self._pool.close()

    def cancel_running(self) -> None:
        """Cancel every job running in this process (ends them ``cancelled``)."""
        for r in self._jobs.values():
            self._cancel(r)

    async def wait_batch(self, batch_id: str, poll: float = 0.25) -> None:
        """Return once every job of the batch is terminal (wherever it ran).

        Asks for one unfinished job (an indexed ``find`` with limit 1) rather than
        counting the batch, so a waiting ``jobtui run`` costs the store next to nothing;
        asks again every ``poll`` seconds, and at once when a job of this engine ends
        and none of the batch's jobs runs here any more.
        """
        while True:
            if self.fatal is not None:
                raise self.fatal
            self._batch_idle.clear()  # before asking: an end during the query wakes us
            running_here = self._running_by_batch[batch_id] > 0
            if not running_here and not await self.store.batch_unfinished(batch_id):
                return
            # timeout(), not wait_for(): on 3.11 wait_for can swallow a cancel
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(poll):
                    await self._batch_idle.wait()

    # -- claiming ----------------------------------------------------------------

    def _free_slots(self, leaving: Collection[str] = ()) -> tuple[int, dict[str, int]]:
        """Free slots, overall and per type; ``leaving``: jobs counted as gone."""
        busy = [r for job_id, r in self._jobs.items() if job_id not in leaving]
        free = self.settings.concurrency - len(busy)
        per_type: dict[str, int] = {}
        if free <= 0:  # full (the claim loop looks each time a job ends)
            return free, per_type
        by_type = collections.Counter(r.jt.name for r in busy)
        caps = self.settings.concurrency_per_type  # the operator's caps beat the type's own
        for jt in self.registry.types():
            limit = caps.get(jt.name, jt.concurrency)
            cap = free if limit is None else min(free, limit - by_type[jt.name])
            if cap > 0:
                per_type[jt.name] = cap
        return free, per_type

    async def _claim_loop(self) -> None:
        while not self._stopping:
            free, slots = self._free_slots()
            if self._claim_allowed() and free > 0 and slots:
                if not self._store_is_ours():
                    return
                self._claiming = True
                try:
                    claimed = await self._claim(free, slots)
                except Exception as exc:  # noqa: BLE001 - store outage: wait and retry
                    log.warning("claim failed (%s); retrying", short(exc))
                    await asyncio.sleep(min(self.settings.poll_interval, 1.0))
                    continue
                finally:
                    self._claiming = False
                if self._stopping:  # stopped while the claim was under way
                    await self._hand_back_claimed(claimed)
                    return
                await self._start_claimed(claimed)
                if claimed:
                    continue  # full now (the next turn waits for a slot), or there is more
            elif free <= 0 or self._claiming:
                # Full, or the finisher is claiming for the slots its finishes free
                # (its answer sets _slot_free too): wait, then look again.
                self._slot_free.clear()
                await self._slot_free.wait()
                continue
            self._wake.clear()
            self._waiting_for_work.set()
            # timeout(), not wait_for(): on 3.11 wait_for can swallow a cancel
            try:
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(self.settings.poll_interval):
                        await self._wake.wait()
            finally:
                self._waiting_for_work.clear()

    def _to_gather(self) -> int:
        """How many finishes a group waits for (``Finisher``): half the running jobs,
        so the other half keep the worker processes busy; one (no wait) when stopping."""
        return 1 if self._stopping else max(1, len(self._jobs) // 2)

    def _claim_allowed(self) -> bool:
        return not (self._paused or self._stopping or self._claiming) and self.settings.claim

    def claim_for(self, leaving: Sequence[str]) -> ClaimRequest | None:
        """The finisher's question (``Claimer``): what to claim in the same store call
        as the finishes of ``leaving``, for the slots they free. Nothing when the claim
        loop last found no work (it claims again when told of some), or is claiming."""
        if not self._claim_allowed() or self._waiting_for_work.is_set():
            return None
        free, slots = self._free_slots(leaving)
        if free <= 0 or not slots or not self._store_is_ours():
            return None
        self._claiming = True
        return self._claim_request(free, slots)

    async def claimed(self, jobs: list[Job] | Exception | None, *, cancelled: bool) -> None:
        """The finisher's claim came back: start its jobs (their slots were freed in
        the same transaction: the finished jobs leave ``_jobs`` as their tasks resume
        next), or hand them back when stopping."""
        self._claiming = False
        self._slot_free.set()  # the claim loop held back meanwhile
        if isinstance(jobs, Exception):
            log.warning("claim failed (%s); retrying", short(jobs))
        elif jobs and (cancelled or self._stopping):
            await self._hand_back_claimed(jobs)
        elif jobs:
            await self._start_claimed(jobs)

    async def _watch(self, stream: AsyncIterator[Wake]) -> None:
        try:
            async for wake in stream:
                self._on_wake(wake)
        except Exception as exc:  # noqa: BLE001 - fall back to polling
            log.info(
                "change stream ended (%s); polling every %.1fs", exc, self.settings.poll_interval
            )

    # -- running -----------------------------------------------------------------

    async def _claim(self, free: int, slots: dict[str, int]) -> list[Job]:
        """One claim; if this task is cancelled meanwhile (a stop), the claim is let
        finish and whatever it took is handed back: the store may have committed it
        (the SQLite store claims in its own thread), and jobs claimed by nobody would
        sit ``processing`` until their leases expire, an attempt burned."""
        claim = asyncio.ensure_future(self.store.claim_request(self._claim_request(free, slots)))
        try:
            return await asyncio.shield(claim)
        except asyncio.CancelledError:
            await _until_done(claim)  # a second cancel must not cut this short either
            if not claim.cancelled() and claim.exception() is None:
                await self._hand_back_claimed(claim.result())
            raise

    def _claim_request(self, free: int, slots: dict[str, int]) -> ClaimRequest:
        return ClaimRequest(
            worker_id=self.worker_id,
            slots=slots,
            limit=free,
            lease_seconds=self.settings.lease_seconds,
            timeouts={jt.name: jt.timeout for jt in self.registry.types()},
            now=utcnow(),
            scope=self.scope,
        )

    async def _start_claimed(self, jobs: list[Job]) -> None:
        """Start what a claim took (the claim loop's or the finisher's), unless the
        engine was paused while it was under way: nothing new starts then, the jobs go
        back (``pause``)."""
        if self._paused:
            await self._hand_back_claimed(jobs, PAUSED_WHILE_CLAIMING)
            return
        for job in jobs:
            self._start_job(job)

    async def _hand_back_claimed(self, jobs: list[Job], why: str = STOPPED_WHILE_CLAIMING) -> None:
        """Jobs claimed but never started here: to ``pending``, the attempt refunded.
        The writes finish even if this task is cancelled meanwhile (a stop cancels the
        claim loop); the cancel is passed on after them."""
        if not jobs:
            return

        async def writes() -> None:
            for job in jobs:
                assert job.lease is not None
                await self._hand_back(job.job_id, job.lease.token, why)

        done = asyncio.ensure_future(writes())
        cancelled = await _until_done(done)
        done.result()
        if cancelled:
            raise asyncio.CancelledError

    def _start_job(self, job: Job) -> None:
        jt = self.registry.get(job.job_type)
        assert job.lease is not None
        if jt is None:  # cannot happen: we only claim our own types
            raise RuntimeError(f"claimed unregistered type {job.job_type}")
        job.adopt_type_policy(jt.max_attempts)  # a legacy document names none
        ctx = self.context_factory(
            job,
            store=self.store,
            token=job.lease.token,
            logs=self.logs,
            pool=self.pool,
            output_dir=self.settings.output_dir,
            settings=dict(self._ctx_settings),
        )
        r = _Running(job, jt, job.lease.token, ctx)
        self._jobs[job.job_id] = r
        self._running_by_batch[job.batch_id] += 1
        self.claims += 1
        loop = asyncio.get_running_loop()
        if jt.timeout is not None:
            r.deadline = deadline = loop.time() + jt.timeout
            if deadline < self._deadline_at:
                self._arm_deadlines(loop, deadline)
        r.task = loop.create_task(self._run_job(r), name=f"job-{job.job_id}")

    def _arm_deadlines(self, loop: asyncio.AbstractEventLoop, at: float) -> None:
        if self._deadline_timer is not None:
            self._deadline_timer.cancel()
        self._deadline_at = at
        self._deadline_timer = loop.call_at(at, self._check_deadlines)

    def _check_deadlines(self) -> None:
        """The deadline timer: time out every job whose handler is past its deadline,
        then wait for the earliest deadline left. A scan of the running jobs (at most
        ``concurrency``) each time a deadline passes, instead of a timer per job."""
        self._deadline_timer = None
        self._deadline_at = math.inf
        loop = asyncio.get_running_loop()
        now = loop.time()
        earliest = math.inf
        for r in list(self._jobs.values()):
            deadline = r.deadline
            if deadline is None:
                continue
            if deadline <= now:
                r.deadline = None
                if not (r.cancel_requested or r.handing_back or r.finishing):
                    r.timed_out = True
                    r.interrupt()  # one not begun yet sees timed_out as it begins
            elif deadline < earliest:
                earliest = deadline
        if earliest < math.inf:
            self._arm_deadlines(loop, earliest)

    async def _run_job(self, r: _Running) -> None:
        job = r.job
        t0 = time.monotonic()
        # The two INFO lines of a job, their fields built only when INFO is logged.
        info = log.isEnabledFor(logging.INFO)
        if info:
            fields = {"job_id": job.job_id, "job_type": job.job_type, "path": job.path}
            log.info(
                "job %s started: %s %s (attempt %d/%d)",
                job.job_id,
                job.job_type,
                job.path or "",
                job.attempts,
                job.max_attempts,
                extra={**fields, "event": "job.started", "attempt": job.attempts},
            )
        ended = "crashed"  # what the INFO line at the end says, whatever way we leave
        try:
            r.started = True  # interrupted before it began: as if just after (see interrupt)
            if r.handing_back:
                raise asyncio.CancelledError
            if not r.cancel_requested:
                outcome = await self._execute(r)
            else:  # as _execute ends a cancelled handler
                outcome = None if r.ctx.lease_lost else self._cancelled_outcome(r)
            if outcome is None:  # lost the lease: write nothing
                ended = "lease lost"
                return
            ended = _describe(outcome) if info else ""
            r.finishing = True
            ok = await self._finisher.finish(job.job_id, r.token, outcome)
            if not ok:
                ended = "lease lost (result discarded)"
                r.ctx.log("lease lost before the result was written; result discarded", "warning")
            elif outcome.status.terminal:
                self.terminal_hooks.notify(job, outcome)
        except asyncio.CancelledError:
            if self._stopping and not r.cancel_requested:
                ended = "handed back"
                await self._hand_back(r.job.job_id, r.token)
            else:
                ended = "stopped"
                raise
        finally:
            now = time.monotonic()
            if info:
                took = now - t0
                log.info(
                    "job %s %s in %.2fs: %s %s",
                    job.job_id,
                    ended,
                    took,
                    job.job_type,
                    job.path or "",
                    extra={
                        **fields,
                        "event": "job.finished",
                        "outcome": ended,
                        "duration_s": round(took, 3),
                    },
                )
            r.ctx.close()
            self._jobs.pop(job.job_id, None)
            self._finished_times.append(now)
            self._running_by_batch[job.batch_id] -= 1
            if self._running_by_batch[job.batch_id] <= 0:
                del self._running_by_batch[job.batch_id]
                self._batch_idle.set()
            self._slot_free.set()
            if not self._stopping:
                self._wake.set()

    async def _execute(self, r: _Running) -> Outcome | None:
        job, jt = r.job, r.jt
        try:
            params = jt.params_model.model_validate(job.parameters)
        except ValidationError as exc:
            errors = [
                {"loc": ".".join(str(p) for p in e["loc"]), "msg": e["msg"]} for e in exc.errors()
            ]
            r.ctx.log(f"invalid parameters: {errors}", "error")
            return Outcome(
                status=JobStatus.FAILED,
                error=JobError(
                    code=ErrorCode.INVALID_PARAMETERS,
                    message="parameters do not match the job type",
                    details={"errors": errors},
                ),
            )
        if job.output_dir is not None:  # chosen at enqueue: checked like an input path
            try:
                r.ctx.output_dir = output_dir_for(job.output_dir, self.settings)
            except JobFailed as exc:
                r.ctx.log(exc.message, "error")
                return Outcome(
                    status=JobStatus.FAILED,
                    error=JobError(code=exc.code, message=exc.message, details=exc.details),
                )
        if r.timed_out:  # the deadline passed before the handler's first step
            return self._timeout_outcome(r)
        try:
            try:
                result = await call_handler(jt.handler, r.ctx, params, jt.is_async)
            finally:
                r.deadline = None  # returned (or raised): the deadline timer lets it be
            await r.ctx.flush_progress()
            return Outcome(status=JobStatus.COMPLETED, results=result or {})
        except JobCancelled:
            return self._cancelled_outcome(r)
        except asyncio.CancelledError:
            task = asyncio.current_task()
            assert task is not None
            if r.cancel_requested:
                task.uncancel()
                if r.ctx.lease_lost:
                    return None
                return self._cancelled_outcome(r)
            if r.timed_out and not r.handing_back:  # the deadline timer's cancel
                task.uncancel()
                return self._timeout_outcome(r)
            raise
        # A TimeoutError the handler raised (a network call's own timeout) is its error
        # like any other, retried as one: only the deadline timer's cancel is TIMEOUT.
        except WorkerCrashed as exc:
            err, final = crash_error(job, str(exc))
            r.ctx.log(err.message, "error")
            if final or job.attempts >= job.max_attempts:
                return Outcome(status=JobStatus.FAILED, error=err)
            return self._retry_outcome(r, err)
        except JobFailed as exc:
            err = JobError(code=exc.code, message=exc.message, details=exc.details)
            if exc.retryable and job.attempts < job.max_attempts:
                return self._retry_outcome(r, err)
            r.ctx.log(f"failed: {exc.code}: {exc.message}", "error")
            return Outcome(status=JobStatus.FAILED, error=err)
        except (Exception, *POISON) as exc:  # noqa: BLE001 - sys.exit too: this job only
            err = JobError(
                code=ErrorCode.HANDLER_ERROR,
                message=f"{type(exc).__name__}: {exc}",
                # Kept as the seed did (the detail screen shows it; webhooks never carry
                # details); the tail, where the cause is, if it is very long.
                details={"traceback": traceback.format_exc()[-TRACEBACK_CHARS:]},
            )
            if job.attempts < job.max_attempts:
                return self._retry_outcome(r, err)
            r.ctx.log(f"failed after {job.attempts} attempts: {err.message}", "error")
            return Outcome(status=JobStatus.FAILED, error=err)

    def _retry_outcome(self, r: _Running, err: JobError) -> Outcome:
        delay = r.jt.backoff(r.job.attempts)
        r.ctx.log(
            f"attempt {r.job.attempts} failed ({err.message}); retrying in {delay:.1f}s", "warning"
        )
        return Outcome(
            status=JobStatus.PENDING, error=err, run_after=utcnow() + timedelta(seconds=delay)
        )

    def _timeout_outcome(self, r: _Running) -> Outcome:
        timeout = r.jt.timeout
        r.ctx.log(f"timed out after {timeout}s", "error")
        return Outcome(
            status=JobStatus.FAILED,
            error=JobError(code=ErrorCode.TIMEOUT, message=f"ran longer than {timeout}s"),
        )

    def _cancelled_outcome(self, r: _Running) -> Outcome:
        r.ctx.log("cancelled by an operator", "warning")
        return Outcome(
            status=JobStatus.CANCELLED,
            error=JobError(code=ErrorCode.CANCELLED, message="cancelled by an operator"),
        )

    def _cancel(self, r: _Running) -> None:
        if r.cancel_requested:
            return
        r.cancel_requested = True
        r.ctx.cancel_event.set()
        r.interrupt()

    async def _hand_back(self, job_id: str, token: str, why: str = "at shutdown") -> None:
        """The job back to ``pending``, the attempt refunded (a stop), and a log line."""
        outcome = Outcome(status=JobStatus.PENDING, refund_attempt=True)
        with contextlib.suppress(Exception):
            await self.store.finish(job_id, token, outcome, now=utcnow())
        message = f"handed back by {self.worker_id} {why}"
        self.logs.add(LogEntry(job_id=job_id, level="info", message=message))

    def _loop_blocked(self, task: asyncio.Task[Any] | None, seconds: float) -> None:
        """From the loop watch's thread: name the job whose handler blocks the loop."""
        r = next((r for r in list(self._jobs.values()) if r.task is task), None)
        if r is None:
            name = task.get_name() if task is not None else "no task"
            log.warning("event loop blocked for %.1fs (running %s)", seconds, name)
            return
        message = (
            f"blocked the event loop for {seconds:.1f}s (type {r.jt.name}): every job of "
            "this process stalls meanwhile; a handler must await, or be a plain def "
            "(run in a thread), or put CPU work in ctx.run_cpu"
        )
        log.warning("job %s %s", r.job.job_id, message)
        r.ctx.log(message, "warning")  # a list append: safe from this thread

    # -- the store going away under us --------------------------------------------

    def _store_is_ours(self) -> bool:
        """Whether the store is still the one we opened; if not, stop for good."""
        try:
            self.store.verify_identity()
        except StoreError as exc:
            self._fail(exc)
            return False
        return self.fatal is None

    def _fail(self, exc: StoreError) -> None:
        """Stop claiming and drop running jobs without a write: whatever this process
        writes now lands in a file nobody will open (their jobs, if the new file has
        them, are recovered there by lease expiry)."""
        if self.fatal is not None:
            return
        self.fatal = exc
        log.error("%s: %s", exc.code, exc.message)
        self._stopping = True
        self._wake.set()
        for r in list(self._jobs.values()):
            r.ctx.lease_lost = True
            self._cancel(r)
        self._batch_idle.set()
        self.failed.set()

    # -- heartbeats ----------------------------------------------------------------

    async def _heartbeat_loop(self) -> None:
        while True:
            self._poke.clear()
            # timeout(), not wait_for(): on 3.11 wait_for can swallow a cancel
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(self.settings.heartbeat_interval):
                    await self._poke.wait()
            if not self._store_is_ours():
                return
            try:
                await self._renew_leases()
            except Exception as exc:  # noqa: BLE001 - store outage: keep trying
                log.warning("heartbeat failed: %s", short(exc))

    async def _renew_leases(self) -> None:
        """One beat: the leases and this worker's record in one store write."""
        leases = {jid: r.token for jid, r in self._jobs.items()}
        expires = utcnow() + timedelta(seconds=self.settings.lease_seconds)
        states = await self.store.beat(self._worker_info(), leases, expires)
        for job_id, state in states.items():
            r = self._jobs.get(job_id)
            # A heartbeat racing our own finish sees the job no longer processing
            # ("lost"); cancelling now would skip the terminal hooks of a finished job.
            if r is None or r.token != leases.get(job_id) or r.finishing:
                continue
            if state is LeaseState.CANCEL:
                self._cancel(r)
            elif state is LeaseState.LOST:
                r.ctx.lease_lost = True
                log.warning("lost the lease of %s; stopping it", job_id)
                self._cancel(r)

    async def _register_worker(self) -> None:
        await self.store.upsert_worker(self._worker_info())

    def _worker_info(self) -> WorkerInfo:
        return WorkerInfo(
            worker_id=self.worker_id,
            host=socket.gethostname(),
            pid=os.getpid(),
            job_types=self.registry.names(),
            concurrency=self.settings.concurrency,
            running=len(self._jobs),
            started_at=self.started_at,
            heartbeat_at=utcnow(),
            paused=self._paused,
            serves_queue=self.settings.claim and self.scope is None,
        )
