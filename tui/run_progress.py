"""What ``jobtui run`` shows on stderr while its files are processed.

On a terminal: one live line drawn by rich (already installed with Textual): files
done of the total, a bar, pages per second, the time left and the failures so far,
plus what it waits for elsewhere. Not a terminal (a log file, CI): one plain line
every ``PLAIN_EVERY`` seconds, and one at the end. With ``--json``: nothing, stdout
stays one JSON object and stderr stays quiet.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TextIO

from jobtui.tui.durations import human_duration

PLAIN_EVERY = 10.0  # seconds between plain progress lines


@dataclass
class RunState:
    """A snapshot of a run, as ``jobtui run`` counts it."""

    total: int = 0  # jobs of the run (one per distinct content)
    done: int = 0  # terminal ones
    failed: int = 0  # failed or cancelled
    running: int = 0  # processing (here or elsewhere)
    elsewhere: int = 0  # processing in another process
    pages: int = 0  # pages finished by this process (handlers that report ``pages``)

    def line(self, elapsed: float) -> str:
        parts = [f"{self.done}/{self.total} files"]
        if elapsed > 0 and self.pages:
            parts.append(f"{self.pages / elapsed:.1f} pages/s")
        eta = self.eta(elapsed)
        if eta is not None:
            parts.append(f"about {human_duration(eta)} left")
        if self.failed:
            parts.append(f"{self.failed} failed")
        if self.elsewhere:
            parts.append(f"waiting for {self.elsewhere} running in another process")
        return ", ".join(parts)

    def eta(self, elapsed: float) -> float | None:
        if self.done <= 0 or self.done >= self.total or elapsed <= 0:
            return None
        return (self.total - self.done) * elapsed / self.done


class RunProgress:
    """``update(state)`` as often as you like; ``close()`` once at the end."""

    def __init__(
        self,
        mode: str,
        stream: TextIO | None = None,
        emit: Callable[[str], None] | None = None,
    ) -> None:
        self.mode = mode  # "live", "plain" or "off"
        self.stream = stream or sys.stderr
        # plain lines: ``emit`` (the CLI's status line, JSON with --log-format json)
        self.emit = emit or (lambda text: print(f"jobtui: {text}", file=self.stream, flush=True))
        self.start = time.monotonic()
        self._last_plain = self.start
        self._live: Any = None
        self._progress: Any = None
        self._task: Any = None
        self._state = RunState()
        self._idle: bool | None = None

    @classmethod
    def for_stderr(cls, quiet: bool, emit: Callable[[str], None] | None = None) -> RunProgress:
        if quiet:
            return cls("off")
        return cls("live" if sys.stderr.isatty() else "plain", emit=emit)

    def expect(self, work: bool) -> None:
        """Say whether the run has work to wait for. Without work (every file done
        earlier) nothing is shown; with it, the last line comes however fast the work
        ends. Not called: the first ``update`` decides (nothing left: no work)."""
        self._idle = not work

    def update(self, state: RunState) -> None:
        if self._idle is None:  # nothing to wait for at the first look: say nothing
            self._idle = state.done >= state.total
        self._state = state
        elapsed = time.monotonic() - self.start
        if self.mode == "plain":
            if time.monotonic() - self._last_plain >= PLAIN_EVERY:
                self._last_plain = time.monotonic()
                self.emit(state.line(elapsed))
        elif self.mode == "live":
            self._draw(state, elapsed)

    def _draw(self, state: RunState, elapsed: float) -> None:
        if self._progress is None:
            from rich.console import Console
            from rich.progress import BarColumn, Progress, TextColumn

            self._progress = Progress(
                TextColumn("[bold]{task.completed}/{task.total} files"),
                BarColumn(),
                TextColumn("{task.fields[detail]}"),
                console=Console(file=self.stream, force_terminal=True),  # chosen for a tty
                transient=True,  # the summary replaces it
                auto_refresh=False,
            )
            self._progress.start()
            self._task = self._progress.add_task("run", total=max(state.total, 1), detail="")
        detail = state.line(elapsed).partition(", ")[2]
        self._progress.update(
            self._task, total=max(state.total, 1), completed=state.done, detail=detail
        )
        self._progress.refresh()

    def close(self) -> None:
        if self._progress is not None:
            self._progress.stop()
            self._progress = None
        if self.mode == "plain" and self._state.total and not self._idle:
            elapsed = time.monotonic() - self.start
            self.emit(self._state.line(elapsed))
