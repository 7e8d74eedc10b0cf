"""``jobtui`` with no subcommand: open the store, start an engine here, run the console
(``jobtui --watch``: no engine, a console that claims nothing).

The engine and the console share one asyncio loop; the engine's CPU work runs in its
process pool, so the console never stalls. Whatever way the console ends, the engine
stops and hands back any lease it still holds (nothing is lost, invariant 10).
"""

from __future__ import annotations

import asyncio
import logging
import multiprocessing
import multiprocessing.forkserver
import multiprocessing.resource_tracker
import signal
import time
from collections.abc import Callable
from typing import Any

from jobtui.engine.api import LocalEngine, connect, local_engine
from jobtui.engine.config import Settings
from jobtui.engine.logsetup import divert
from jobtui.engine.registry import Registry
from jobtui.engine.signals import ShutdownSignals


def start_process_helpers() -> None:
    """Start multiprocessing's forkserver and resource tracker now, while the process
    still has its real stderr: under Textual ``sys.stderr`` is a capture object whose
    ``fileno()`` is -1, and starting them then fails ("bad value(s) in fds_to_keep"),
    failing every job that needs the engine's process pool."""
    if "forkserver" in multiprocessing.get_all_start_methods():
        multiprocessing.forkserver.ensure_running()
    else:
        multiprocessing.resource_tracker.ensure_running()


def notifier(app: Any, repeat_after: float = 30.0) -> Callable[[logging.LogRecord, str], None]:
    """A log sink that shows WARNING and up as console notifications (the terminal
    belongs to the console while it runs: a line on stderr would scribble over it).
    Safe from any thread; the same text is shown again only after ``repeat_after``
    seconds, so a store outage logging every second does not bury the screen."""
    loop = asyncio.get_running_loop()
    shown: dict[str, float] = {}

    def sink(record: logging.LogRecord, text: str) -> None:
        now = time.monotonic()
        if now - shown.get(text, -repeat_after) < repeat_after:
            return
        shown[text] = now
        severity = "error" if record.levelno >= logging.ERROR else "warning"
        if not loop.is_closed():
            loop.call_soon_threadsafe(
                lambda: app.notify(text, title=record.levelname.title(), severity=severity)
            )

    return sink


async def run_console(
    settings: Settings, *, watch: bool = False, registry: Registry | None = None
) -> int:
    """Run the console until the operator quits; returns the process exit code.

    ``watch``: start watch-only (no engine here, nothing claimed); the console can
    start one later (key ``W``, with a confirmation). A closed terminal (SIGHUP) or
    SIGTERM hands the jobs running here back at once, then the console exits.
    """
    from jobtui.tui.app import JobtuiApp  # textual loads only when the console runs

    # A store that cannot be opened raises StoreError: the CLI prints
    # "jobtui: CODE: message" and exits 2, like every other command.
    api = await connect(settings, registry)
    start_process_helpers()

    def new_engine() -> LocalEngine:
        # Made when the console is to claim (at start, or key W: the operator's choice),
        # so it claims even where the config says claim: false (the start was watch-only).
        # One API either way: the engine hears its enqueues through the store.
        return local_engine(api, settings.model_copy(update={"claim": True}))

    engine = None if watch else new_engine()
    app = JobtuiApp(api=api, engine=engine, settings=settings, engine_factory=new_engine)
    try:
        # A closed terminal (SIGHUP) or SIGTERM: hand the jobs back at once and exit.
        # Textual reads ctrl+c as a key, so SIGINT is not among them; nothing is printed
        # on the first (the screen belongs to Textual); a second exits at once.
        on_signal = ShutdownSignals(
            lambda _sig: app.hand_back_and_exit(), (signal.SIGHUP, signal.SIGTERM), first=""
        )
        with divert(notifier(app)), on_signal:
            if engine is not None:
                await engine.start()
            await app.run_async()
    finally:
        try:
            if app.engine is not None:
                # Whatever way the app ended (even while "finishing"): hand back now.
                await app.engine.stop(grace=0)
        finally:
            await api.close()
    return app.return_code or 0
