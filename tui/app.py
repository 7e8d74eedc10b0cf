"""The operator console: a Textual app over the operator API (and the engine, if local).

One refresh loop feeds every screen: it asks the main screen what it shows
(``ViewRequest``), fetches exactly that through ``OperatorAPI`` (one page of jobs,
the newest batches, counts, workers, the selected job's log tail), renders it, and
only then waits for the next tick or an explicit request. Fetches never overlap.
When the store stops answering, the status line says so and the loop keeps trying.

A paste that names an existing folder, or a file some job type takes, opens the
enqueue dialog, wherever the focus is: ``on_event`` sees ``Paste`` before the focused
widget (an ``Input`` would keep only the first line). Every paste gets an answer:
what was not taken, and why, is a notification.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import os
from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any, TypeVar

from textual import events
from textual.app import App, SystemCommand
from textual.binding import Binding
from textual.css.query import NoMatches
from textual.screen import ModalScreen, Screen
from textual.theme import Theme
from textual.widgets import Input

from jobtui.engine.api import JobCursor, JobPage, LocalEngine, OperatorAPI
from jobtui.engine.config import Settings
from jobtui.engine.models import BatchSummary, Job, JobFilter, LogEntry, WorkerInfo, utcnow
from jobtui.engine.paths import parse_dropped_paths
from jobtui.tui import themes as theme_files
from jobtui.tui.engine_control import EngineControl
from jobtui.tui.screens.dialogs import ConfirmScreen, QuitScreen
from jobtui.tui.screens.enqueue import EnqueueRequest, EnqueueScreen, enqueue_target
from jobtui.tui.screens.main import MainScreen
from jobtui.tui.widgets.status import StatusInfo

T = TypeVar("T")
FETCH_TIMEOUT = 10.0  # a store that does not answer within this is "disconnected"
LOG_TAIL_LINES = 200


@dataclass
class ViewRequest:
    """What the main screen shows, so what one refresh must fetch."""

    flt: JobFilter
    after: JobCursor | None
    page_size: int
    newest_first: bool
    log_job: Job | None = None


@dataclass
class ConsoleSnapshot:
    at: datetime
    status: StatusInfo
    counts: dict[str, int] = field(default_factory=dict)
    batches: list[BatchSummary] | None = None  # None: not fetched (disconnected)
    page: JobPage | None = None
    request: ViewRequest | None = None
    scope_total: int | None = None
    workers: list[WorkerInfo] = field(default_factory=list)
    log_job_id: str | None = None
    logs: list[LogEntry] = field(default_factory=list)


class JobtuiApp(EngineControl, App[int]):
    CSS_PATH = "app.tcss"
    TITLE = "jobtui"

    def __init__(
        self,
        api: OperatorAPI,
        engine: LocalEngine | None = None,
        settings: Settings | None = None,
        *,
        refresh_interval: float = 1.0,
        clock: Callable[[], datetime] | None = None,
        theme_dirs: list[Path] | None = None,
        engine_factory: Callable[[], LocalEngine] | None = None,
    ) -> None:
        super().__init__()
        self.api = api
        self.engine = engine
        # How to make an engine when a watch-only console starts claiming (key W);
        # None: this console cannot claim (tests, a read-only API).
        self.engine_factory = engine_factory
        self.settings = settings if settings is not None else Settings.model_validate({})
        self.refresh_interval = refresh_interval
        self.now: Callable[[], datetime] = clock or utcnow
        self.theme_dirs = theme_dirs
        self.theme_errors: list[str] = []
        self.snapshot: ConsoleSnapshot | None = None
        self.engine_stopped = False
        self.refreshes = 0  # completed refresh cycles
        self.fetch_errors = 0
        self._wake = asyncio.Event()
        self._requested = 0  # refresh requests made
        self._served = 0  # requests covered by a completed refresh
        self._served_changed = asyncio.Event()
        self._disconnected_since: datetime | None = None
        self.finishing_until: float | None = None  # monotonic deadline of a "finish" quit
        self.quit_hold = False  # the quit question holds claiming (engine_control.py)

    def get_default_screen(self) -> Screen[Any]:
        return MainScreen()

    @property
    def main(self) -> MainScreen:
        screen = self.screen_stack[0] if self.screen_stack else None
        assert isinstance(screen, MainScreen)
        return screen

    # -- start: themes, then the refresh loop ------------------------------------------

    def on_mount(self) -> None:
        self._load_themes()
        self.theme_changed_signal.subscribe(self, self._theme_changed)

    def start_refreshing(self) -> None:
        """Called by the main screen once its tables exist."""
        # What is alive now (modules, widgets, themes, the engine) lives as long as the
        # console. Frozen, the cyclic collector's full passes walk only what refreshes
        # allocate: unfrozen they walked ~100,000 objects and paused the loop 25-45 ms.
        gc.collect()
        gc.freeze()
        self.run_worker(self._refresh_loop(), name="refresh", group="refresh", exclusive=True)

    def on_unmount(self) -> None:
        gc.unfreeze()  # an app run inside a longer process (tests) gives it back

    def _load_themes(self) -> None:
        loaded = theme_files.load_themes(self.theme_dirs)
        for theme in loaded.themes:
            self.register_theme(theme)
        self.theme_errors = loaded.errors
        if loaded.errors:
            self.notify(
                "Skipped broken theme file(s): " + "; ".join(loaded.errors),
                title="Themes",
                severity="warning",
                timeout=10,
            )
        choice = theme_files.load_theme_choice()
        for name in (choice, theme_files.DEFAULT_THEME, theme_files.FALLBACK_THEME):
            if name and name in self.available_themes:
                self.theme = name
                break

    def _theme_changed(self, theme: Theme) -> None:
        theme_files.save_theme_choice(theme.name)
        with contextlib.suppress(Exception):
            self.main.rerender()

    # -- the refresh loop -------------------------------------------------------------------

    def request_refresh(self) -> None:
        self._requested += 1
        self._wake.set()

    async def refresh_now(self, timeout: float = 10.0) -> None:
        """Ask for a refresh and wait until one that started after the ask has rendered."""
        self.request_refresh()
        target = self._requested
        async with asyncio.timeout(timeout):
            while self._served < target:
                self._served_changed.clear()
                await self._served_changed.wait()

    async def _refresh_loop(self) -> None:
        while True:
            self._wake.clear()
            covered = self._requested
            if self._shutting_down:
                return
            try:
                request = self.main.view_request()
            except NoMatches:
                return  # the screen is being torn down (its tables are never removed otherwise)
            try:
                snap = await asyncio.wait_for(self.fetch(request), FETCH_TIMEOUT)
            except Exception as exc:  # noqa: BLE001 - any store failure means "disconnected"
                self.fetch_errors += 1
                snap = self._disconnected(exc)
            if self._shutting_down:
                return  # the widgets are going away
            self.snapshot = snap
            for screen in list(self.screen_stack):
                show = getattr(screen, "show_snapshot", None)
                if show is not None and screen.is_attached:
                    try:
                        show(snap)
                    except NoMatches:
                        if screen is self.main:
                            return  # torn down while we fetched
                        # a screen still composing: it shows the snapshot on mount
            self.refreshes += 1
            self._served = covered
            self._served_changed.set()
            if self._requested > covered:
                continue
            interval = (
                self.refresh_interval if snap.status.connected else max(self.refresh_interval, 2.0)
            )
            # timeout(), not wait_for(): on 3.11 wait_for can swallow a cancel
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(interval):
                    await self._wake.wait()

    @property
    def _shutting_down(self) -> bool:
        main = self.screen_stack[0] if self.screen_stack else None
        return bool(
            self._exit
            or main is None
            or not main.is_attached
            or getattr(main, "_closing", False)
            or getattr(self, "_closing", False)
        )

    def _status(self, connected: bool, error: str | None = None) -> StatusInfo:
        engine = self.live_engine
        finishing = None
        if self.finishing_until is not None and self.engine is not None:
            finishing = len(self.engine.running)
        return StatusInfo(
            finishing=finishing,
            store=self.api.description,
            connected=connected,
            error=error,
            disconnected_since=self._disconnected_since,
            running_here=len(engine.running) if engine is not None else None,
            throughput=engine.throughput() if engine is not None else None,
            paused=self.paused_by_operator,
            output_dir=str(self.settings.output_dir) if engine is not None else None,
        )

    def _disconnected(self, exc: BaseException) -> ConsoleSnapshot:
        if self._disconnected_since is None:
            self._disconnected_since = self.now()
        reason = getattr(exc, "code", None) or type(exc).__name__
        status = self._status(False, str(reason))
        last = self.snapshot
        if last is not None:  # keep the last numbers, marked as stale by the status line
            status.live_workers = last.status.live_workers
            status.running_total = last.status.running_total
            status.queue_depth = last.status.queue_depth
        return ConsoleSnapshot(at=self.now(), status=status)

    async def fetch(self, request: ViewRequest) -> ConsoleSnapshot:
        """Everything one refresh shows; bounded by the page size, not the job count."""
        api = self.api
        counts = await api.count_jobs()
        batches = await api.batches(limit=50)
        page = await api.list_jobs(
            request.flt,
            limit=request.page_size,
            after=request.after,
            newest_first=request.newest_first,
        )
        scoped = request.flt.model_dump(exclude_none=True)
        scope_total = (
            sum((await api.count_jobs(request.flt)).values()) if scoped else sum(counts.values())
        )
        now = self.now()
        workers = await api.workers(now)
        unserved, held = self._held_here(await api.unserved_types(now, workers))
        log_job = request.log_job
        logs: list[LogEntry] = []
        if log_job is not None:
            logs = await api.tail_logs(log_job.job_id, limit=LOG_TAIL_LINES, job=log_job)
        self._disconnected_since = None
        status = self._status(True)
        status.live_workers = sum(1 for w in workers if w.alive)
        status.running_total = counts.get("processing", 0)
        status.queue_depth = counts.get("pending", 0)
        status.unserved = unserved
        status.held = held
        return ConsoleSnapshot(
            at=now,
            status=status,
            counts=counts,
            batches=batches,
            page=page,
            request=request,
            scope_total=scope_total,
            workers=[w.info for w in workers],
            log_job_id=log_job.job_id if log_job else None,
            logs=logs,
        )

    def _held_here(self, unserved: dict[str, int]) -> tuple[dict[str, int], dict[str, int]]:
        """Split what the store calls unserved: the types of this console's own engine
        are not unserved; paused here, their pending jobs are *held* (the operator's
        pause, or the quit question's hold), not waiting for a worker.

        The store cannot tell: it reads every engine's record, and a paused engine
        does not count as serving (so other consoles do warn about it), and the record
        trails the engine by up to one heartbeat. Here the engine itself answers; the
        console's engine claims from the whole queue (``run_console`` makes it so)."""
        engine = self.live_engine
        if engine is None or engine.fatal is not None:
            return unserved, {}
        mine = set(engine.registry.names())
        others = {t: n for t, n in unserved.items() if t not in mine}
        if not engine.paused:
            return others, {}
        return others, {t: n for t, n in unserved.items() if t in mine}

    async def call_api(self, what: str, call: Awaitable[T]) -> T | None:
        """Run one steering call; a failure is a notification, and the view refreshes."""
        try:
            result = await call
        except Exception as exc:  # noqa: BLE001 - shown to the operator, the app goes on
            self.notify(f"{what} failed: {exc}", severity="error")
            return None
        self.request_refresh()
        return result

    # -- paste / drop anywhere ----------------------------------------------------------------

    async def on_event(self, event: events.Event) -> None:
        if isinstance(event, events.Paste) and not event.is_forwarded:
            if self.take_paste(event.text):
                event.stop()
                return
        await super().on_event(event)

    def take_paste(self, text: str) -> bool:
        """Every paste or drop gets an answer: the enqueue dialog with what was found,
        and a notification naming what was not, and why. True when the paste was
        taken here; False lets it go on to the focused field (a filter, a path)."""
        typing = isinstance(self.focused, Input)
        if typing and self.focused is not None and self.focused.id == "enqueue-output":
            return False  # a folder for the outputs, not one to enqueue
        paths = [p for p in parse_dropped_paths(text) if os.path.isabs(p)]
        if not paths:
            if not typing and text.strip():
                self.notify(
                    f"The pasted text names no folder or file: {_clip(text)}",
                    title="Paste",
                    severity="warning",
                )
            return not typing
        why = {p: enqueue_target(p, self.api.registry) for p in paths}
        found = [p for p in paths if why[p] is None]
        refused = "; ".join(f"{p}: {why[p]}" for p in paths if why[p] is not None)
        if not found:
            self.notify(f"Nothing to enqueue. {refused}", title="Paste", severity="error")
            return not typing
        if not self.open_enqueue(found):
            self.notify(
                "A question is open: answer it first; the pasted path was not taken",
                title="Paste",
                severity="warning",
            )
            return True
        if refused:
            self.notify(f"Not taken: {refused}", title="Paste", severity="warning", timeout=10)
        return True

    def open_enqueue(self, paths: Sequence[str]) -> bool:
        """Open the enqueue dialog (or fill the open one) with ``paths``."""
        screen = self.screen
        if isinstance(screen, EnqueueScreen):
            screen.set_paths(paths)
            return True
        if isinstance(screen, ConfirmScreen | QuitScreen):
            return False  # a question is open; a paste must not answer or bypass it
        if isinstance(screen, ModalScreen):
            screen.dismiss(None)  # filter or help: the dropped path wins
        here = self.live_engine
        default = str(Path(self.settings.output_dir).absolute()) if here is not None else None
        self.push_screen(EnqueueScreen(paths, self.api.registry, default), self._enqueue_chosen)
        return True

    def _enqueue_chosen(self, request: EnqueueRequest | None) -> None:
        if request is not None:
            self.run_worker(self.enqueue(request), group="enqueue")

    async def enqueue(self, request: EnqueueRequest) -> None:
        self.notify(f"Enqueueing {request.found} file(s)…", timeout=3)
        report = await self.call_api(
            "enqueue",
            self.api.enqueue_paths(
                request.paths,
                job_type=request.job_type,
                parameters=request.parameters(self.api.registry),
                force=request.force,
                recursive=request.recursive,
                batch_name=request.batch_name(),
                output_dir=request.output_dir,
            ),
        )
        if report is None:
            return
        batch_id = report.batch_id if report.queued else None
        text = report.summary_line()
        if report.duplicates:
            text += " (force enqueues them again)"
        self.notify(text, title="Enqueue", timeout=8)
        if batch_id:
            await self.refresh_now()
            with contextlib.suppress(Exception):
                self.main.select_batch(batch_id)

    # -- command palette --------------------------------------------------------------------------

    def get_system_commands(self, screen: Screen[Any]) -> Iterable[SystemCommand]:
        yield from super().get_system_commands(screen)
        if isinstance(screen, MainScreen):
            for binding in screen.BINDINGS:
                if not isinstance(binding, Binding):
                    continue
                action = binding.action
                if not action or action in ("quit", "clear_filter"):
                    continue
                if screen.check_action(action, ()) is not True:
                    continue
                yield SystemCommand(binding.description, binding.tooltip, _runner(screen, action))


def _clip(text: str, limit: int = 60) -> str:
    one = " ".join(text.split())
    return one if len(one) <= limit else one[: limit - 1] + "…"


def _runner(screen: Screen[Any], action: str) -> Callable[[], Awaitable[None]]:
    async def run() -> None:
        await screen.run_action(action)

    return run
