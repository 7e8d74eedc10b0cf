"""A pool of warm worker processes whose tasks can be cancelled one by one.

``concurrent.futures.ProcessPoolExecutor`` cannot stop one running task: cancelling
a job would mean breaking the whole pool and every other job in it. Here each task
runs on one known process; cancelling the awaiting coroutine kills that process
(SIGKILL) and a fresh one takes its place. Processes stay warm across tasks (PyMuPDF's
import and first-document page faults are paid once) and are recycled after
``max_tasks`` tasks so caches cannot grow without bound over a long batch.

Processes start with ``forkserver``: forking a process that runs Textual's threads
and an event loop could copy held locks. Only module-level functions run here
(registered code; nothing named by the database).
"""

from __future__ import annotations

import asyncio
import logging
import multiprocessing as mp
import os
import traceback
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from multiprocessing.connection import Connection
from typing import Any

log = logging.getLogger(__name__)


class RemoteError(Exception):
    """A task raised something that could not be pickled back; carries its traceback."""


def _serve(conn: Connection, initializer: Callable[[], None] | None) -> None:
    if initializer is not None:
        initializer()
    while True:
        try:
            msg = conn.recv()
        except (EOFError, OSError):
            return
        if msg is None:
            return
        fn, args = msg
        try:
            reply: tuple[str, Any] = ("ok", fn(*args))
        except BaseException as exc:  # noqa: BLE001 - everything goes back to the caller
            reply = ("err", exc)
        try:
            conn.send(reply)
        except Exception:  # noqa: BLE001 - unpicklable exception: send its text instead
            conn.send(("err", RemoteError("".join(traceback.format_exception(reply[1])))))


class _Slot:
    def __init__(self, ctx: Any, initializer: Callable[[], None] | None) -> None:
        parent, child = ctx.Pipe()
        self.conn: Connection = parent
        self.proc = ctx.Process(target=_serve, args=(child, initializer), daemon=True)
        self.proc.start()
        child.close()
        self.tasks = 0

    def kill(self) -> None:
        if self.proc.is_alive():
            self.proc.kill()
        self.proc.join(timeout=5)
        self.conn.close()

    def retire(self) -> None:
        try:
            self.conn.send(None)
        except OSError:
            pass
        self.proc.join(timeout=5)
        if self.proc.is_alive():
            self.proc.kill()
        self.conn.close()


class ProcessPool:
    """``await pool.run(fn, *args)`` runs ``fn(*args)`` in a warm process."""

    def __init__(
        self,
        size: int | None = None,
        *,
        max_tasks: int = 500,
        initializer: Callable[[], None] | None = None,
        start_method: str = "forkserver",
    ) -> None:
        self.size = max(1, size or os.cpu_count() or 1)
        self.max_tasks = max_tasks
        self._initializer = initializer
        self._ctx = mp.get_context(start_method)
        self._idle: list[_Slot] = []
        self._started = 0
        self._sem = asyncio.Semaphore(self.size)
        # One waiting thread per busy process: recv() blocks, the event loop must not.
        self._threads = ThreadPoolExecutor(self.size, thread_name_prefix="jobtui-procpool")
        self._closed = False

    @property
    def processes(self) -> list[int]:
        return [s.proc.pid for s in self._idle if s.proc.pid is not None]

    async def run(self, fn: Callable[..., Any], *args: Any) -> Any:
        if self._closed:
            raise RuntimeError("process pool is closed")
        async with self._sem:
            slot = self._idle.pop() if self._idle else await self._spawn()
            try:
                slot.conn.send((fn, args))
                status, value = await asyncio.get_running_loop().run_in_executor(
                    self._threads, slot.conn.recv
                )
            except BaseException:
                # Cancelled (or the process died): the process may still be busy
                # with this task, so it is killed, never reused.
                await asyncio.get_running_loop().run_in_executor(None, slot.kill)
                raise
            slot.tasks += 1
            if slot.tasks >= self.max_tasks:
                await asyncio.get_running_loop().run_in_executor(None, slot.retire)
            else:
                self._idle.append(slot)
        if status == "err":
            raise value
        return value

    async def _spawn(self) -> _Slot:
        self._started += 1
        return await asyncio.get_running_loop().run_in_executor(
            None, _Slot, self._ctx, self._initializer
        )

    async def warm(self, n: int | None = None) -> None:
        """Start processes ahead of the first task (so its timing is not a cold start)."""
        need = min(self.size, n or self.size) - len(self._idle)
        slots = await asyncio.gather(*(self._spawn() for _ in range(max(0, need))))
        self._idle.extend(slots)

    async def close(self) -> None:
        self._closed = True
        idle, self._idle = self._idle, []
        loop = asyncio.get_running_loop()
        await asyncio.gather(*(loop.run_in_executor(None, s.retire) for s in idle))
        self._threads.shutdown(wait=False, cancel_futures=True)
