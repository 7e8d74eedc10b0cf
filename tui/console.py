"""``jobtui`` with no subcommand: open the store, start an engine here, run the console.

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
import time
from collections.abc import Callable
from typing import Any

from jobtui.engine.config import Settings
from jobtui.engine.logsetup import divert
from jobtui.engine.registry import default_registry
from jobtui.engine.store.factory import open_store
from jobtui.engine.worker import Engine


def start_process_helpers() -> None:
    """Start multiprocessing's forkserver and resource tracker now, while the process
    still has its real stderr: under Textual ``sys.stderr`` is a capture object whose
    ``fileno()`` is -1, and starting them then fails ("bad value(s) in fds_to_keep"),
    failing every job that needs the engine's process pool."""
    if "forkserver" in multiprocessing.get_all_start_methods():
        multiprocessing.forkserver.ensure_running()
    else:
        multiprocessing.resource_tracker.ensure_running()  # type: ignore[attr-defined]


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


async def run_console(settings: Settings) -> int:
    """Run the console until the operator quits; returns the process exit code."""
    from jobtui.tui.app import JobtuiApp  # textual loads only when the console runs

    # A store that cannot be opened raises StoreError: the CLI prints
    # "jobtui: CODE: message" and exits 2, like every other command.
    store = await open_store(settings)
    start_process_helpers()
    engine = Engine(store, default_registry(), settings)
    app = JobtuiApp(api=engine.api, engine=engine, settings=settings)
    try:
        with divert(notifier(app)):
            await engine.start()
            await app.run_async()
    finally:
        try:
            if not app.engine_stopped:
                app.engine_stopped = True
                await engine.stop(grace=0)
        finally:
            await store.close()
    return app.return_code or 0
