"""Shutdown signals: SIGINT, SIGTERM and SIGHUP stop gracefully once, and at once twice.

``docker stop`` and ``timeout`` send SIGTERM, a closed terminal SIGHUP: each must hand
running jobs back as Ctrl-C does, or they sit ``processing`` until their leases expire
and then run again with an attempt burned. The first signal calls ``on_first`` on the
event loop (the command stops its engine, which hands the jobs back). A second signal
exits the process at once with ``128 + signal``: the handler is a plain Python signal
handler, which the interpreter runs between bytecodes, so it fires even while the event
loop is blocked (a handler that never yields, or a stuck ``stop``). The jobs of a
process that exits this way come back when their leases expire.

Used by ``jobtui run``, ``jobtui worker`` and the console; install from the main thread
inside the running loop.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
from collections.abc import Callable, Sequence
from types import FrameType, TracebackType
from typing import Any

#: The signals that mean "stop": Ctrl-C, ``kill``/``docker stop``/``timeout``, a closed terminal.
SHUTDOWN_SIGNALS: tuple[signal.Signals, ...] = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)


def signal_name(signum: int) -> str:
    with contextlib.suppress(ValueError):
        return signal.Signals(signum).name
    return f"signal {signum}"


class ShutdownSignals:
    """Install with ``with ShutdownSignals(on_first):``; the old handlers come back after.

    ``on_first(signum)`` runs on the event loop for the first signal. ``received`` is
    that signal's number (None before), ``exit_code`` the conventional ``128 + signum``.
    ``first`` is printed (stderr) as the first signal arrives ("" for nothing), ``second``
    before the process exits on the second.
    """

    def __init__(
        self,
        on_first: Callable[[int], None],
        signals: Sequence[int] = SHUTDOWN_SIGNALS,
        *,
        first: str = "stopping (a second signal exits at once)",
        second: str = "exiting now; its running jobs come back when their leases expire",
    ) -> None:
        self.on_first = on_first
        self.signals = tuple(signals)
        self.first = first
        self.second = second
        self.received: int | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._previous: dict[int, Any] = {}

    @property
    def exit_code(self) -> int | None:
        return None if self.received is None else 128 + self.received

    def install(self) -> None:
        self._loop = asyncio.get_running_loop()
        for sig in self.signals:
            self._previous[sig] = signal.signal(sig, self._handle)

    def restore(self) -> None:
        for sig, previous in self._previous.items():
            with contextlib.suppress(ValueError, TypeError):  # not the main thread, or None
                signal.signal(sig, previous if previous is not None else signal.SIG_DFL)
        self._previous.clear()

    def _handle(self, signum: int, frame: FrameType | None) -> None:
        if self.received is not None:
            # Runs in the main thread between bytecodes, blocked loop or not: no locks,
            # no loop, only a write and the exit.
            with contextlib.suppress(OSError):
                os.write(2, f"\njobtui: second {signal_name(signum)}: {self.second}\n".encode())
            os._exit(128 + signum)
        self.received = signum
        if self.first:  # said at once: the loop that acts on it may be blocked
            with contextlib.suppress(OSError):
                os.write(2, f"\njobtui: {signal_name(signum)}: {self.first}\n".encode())
        assert self._loop is not None
        with contextlib.suppress(RuntimeError):  # the loop is already closed
            self._loop.call_soon_threadsafe(self.on_first, signum)

    def __enter__(self) -> ShutdownSignals:
        self.install()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.restore()
