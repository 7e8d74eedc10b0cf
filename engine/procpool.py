"""A pool of warm worker processes whose tasks can be cancelled one by one.

``concurrent.futures.ProcessPoolExecutor`` cannot stop one running task: cancelling
a job would mean breaking the whole pool and every other job in it. Here each task
runs on one known process; cancelling the awaiting coroutine kills that process
(SIGKILL) and a fresh one takes its place. Processes stay warm across tasks (heavy imports
and a library's first-document page faults are paid once) and are recycled after
``max_tasks`` tasks so caches cannot grow without bound over a long batch.

Each process holds up to ``depth`` tasks (default 2): the next one is already in its
pipe when the current one ends, so it never waits for this process (busy with the
event loop, the store, other threads) to hand it work. A queued task is taken back
from its process when another one goes idle, or when it is cancelled. Whether a
queued task has started is known without asking the process: each process writes the
id of the task it starts to shared memory (ids only grow), and checks for "skip"
messages after that write and before running the task. So the pool sends "skip",
then reads the id: a smaller id means the task has not started and never will there.
An equal id is ambiguous (marked, but the "skip" may still be seen): the pool then
waits, and the process answers either with the result or with "skipped". So does a
"skip" that waits behind a large message not yet in the pipe (``_Pipe.backlog``).

The pipes are driven by the event loop itself (``_Pipe``): replies are read and
messages written without waiting, so the loop never blocks on a process, and no
thread per process hands each reply over.

Processes start with ``forkserver``: forking a process that runs Textual's threads
and an event loop could copy held locks. Only module-level functions run here
(registered code; nothing named by the database).
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import multiprocessing as mp
import os
import pickle
import socket
import struct
import traceback
from collections import deque
from collections.abc import Callable, Sequence
from multiprocessing.connection import Connection
from typing import Any

# The fork server's start lives apart so the ``jobtui`` command can call it before any
# heavy import; re-exported here for the engine.
from jobtui.engine.forkstart import DEFAULT_PRELOAD as DEFAULT_PRELOAD
from jobtui.engine.forkstart import WORKER_ENV
from jobtui.engine.forkstart import start_forkserver as start_forkserver

log = logging.getLogger(__name__)


def call_all(fns: Sequence[Callable[[], None]]) -> None:
    """Process initializer: run each job type's warm-up (``JobType.worker_warm``). One
    that fails is logged and skipped: the process still serves every other type."""
    for fn in fns:
        try:
            fn()
        except Exception:  # noqa: BLE001 - a plug-in's warm-up must not kill the process
            log.exception("worker warm-up %s failed", getattr(fn, "__qualname__", fn))


class RemoteError(Exception):
    """A task raised something that could not be pickled back (its traceback is the
    message), or its process died under it."""


class WorkerCrashed(RemoteError):
    """The worker process died running this task (a segfault, ``os._exit``, the OOM
    killer, the memory limit). The engine counts these per job (``WORKER_CRASHED``)."""


def _serve(
    conn: Connection,
    started: Any,
    initializer: Callable[[], None] | None,
    niceness: int = 0,
    memory_limit: int = 0,
) -> None:
    """A worker process: run tasks in the order they arrive, skipping taken-back ones."""
    for key, value in WORKER_ENV.items():  # for libraries this process loads itself
        os.environ.setdefault(key, value)
    if memory_limit > 0:
        # Address space, not RSS: the kernel refuses the allocation (MemoryError, or
        # the process dies) instead of the whole machine swapping or OOM-killing the
        # engine. One huge page rendered at 300 dpi once took 10.5 GB.
        with contextlib.suppress(ValueError, OSError, ImportError):
            import resource

            resource.setrlimit(resource.RLIMIT_AS, (memory_limit, memory_limit))
    if niceness > 0:
        with contextlib.suppress(OSError, AttributeError):  # AttributeError: not on Unix
            os.nice(niceness)
    if initializer is not None:
        initializer()
    queue: deque[tuple[int, Callable[..., Any], tuple[Any, ...]]] = deque()
    skipped: set[int] = set()

    def take(msg: Any) -> bool:
        if msg is None:
            return False
        if msg[0] == "skip":
            skipped.add(msg[1])
        else:
            queue.append(msg[1:])
        return True

    while True:
        try:
            if not queue:
                if not take(conn.recv()):
                    return
                continue
            task_id, fn, args = queue.popleft()
            started.value = task_id  # first: the pool reads it after sending "skip"
            while conn.poll():
                if not take(conn.recv()):
                    return
        except (EOFError, OSError):
            return
        if task_id in skipped:
            skipped.discard(task_id)
            # Said, because the pool may have read our mark for this task before we
            # saw its "skip": then it still counts the task as running here.
            try:
                conn.send((task_id, "skipped", None))
            except OSError:
                return
            continue
        skipped = {i for i in skipped if i > task_id}  # skips of tasks already run
        try:
            reply: tuple[int, str, Any] = (task_id, "ok", fn(*args))
        except BaseException as exc:  # noqa: BLE001 - everything goes back to the caller
            reply = (task_id, "err", exc)
        try:
            conn.send(reply)
        except OSError:
            return
        except Exception:  # noqa: BLE001 - unpicklable result or exception: send its text
            text = "".join(traceback.format_exception(reply[2])) if reply[1] == "err" else ""
            conn.send((task_id, "err", RemoteError(text or "the task's result cannot be pickled")))


class _Task:
    __slots__ = ("args", "fn", "future", "id", "slot")

    def __init__(self, task_id: int, fn: Callable[..., Any], args: tuple[Any, ...], fut: Any):
        self.id = task_id
        self.fn = fn
        self.args = args
        self.future: asyncio.Future[Any] = fut
        self.slot: _Slot | None = None


class _Slot:
    """One worker process, its pipe, and the tasks sent to it (oldest first)."""

    def __init__(
        self,
        ctx: Any,
        initializer: Callable[[], None] | None,
        niceness: int = 0,
        memory_limit: int = 0,
    ) -> None:
        parent, child = ctx.Pipe()
        self.conn: Connection = parent
        self.started = ctx.Value("q", 0, lock=False)  # id of the task it last started
        self.proc = ctx.Process(
            target=_serve,
            args=(child, self.started, initializer, niceness, memory_limit),
            daemon=True,
        )
        self.proc.start()
        child.close()
        self.tasks = 0
        self.pipe: _Pipe | None = None  # set once the pool has taken it on
        self.inflight: dict[int, _Task] = {}
        self.retiring = False
        self.gone = False  # killed or retired: its replies and its death are ignored

    def kill(self) -> None:
        if self.proc.is_alive():
            self.proc.kill()
        self.proc.join(timeout=5)
        self.conn.close()

    def retire(self) -> None:
        """Wait for the process to exit (killed after 5 s); in a thread. The pool has
        asked it to (``_BYE`` through its pipe) unless the pipe was never taken on."""
        if self.pipe is None:
            with contextlib.suppress(OSError):
                self.conn.send(None)
        self.proc.join(timeout=5)
        if self.proc.is_alive():
            self.proc.kill()
        self.conn.close()


# A message's frame, as ``Connection.send`` writes it: a signed 4-byte length (-1: an
# 8-byte length follows), then the pickle.
_LEN = struct.Struct("!i")
_LONG = struct.Struct("!Q")
_READ_SIZE = 1 << 18
_BYE = pickle.dumps(None)  # asks a process to exit once it has run what it holds


def _frame(payload: bytes) -> bytes:
    if len(payload) > 0x7FFFFFFF:
        return _LEN.pack(-1) + _LONG.pack(len(payload)) + payload
    return _LEN.pack(len(payload)) + payload


class _Pipe:
    """The pool's end of one process's pipe, driven by the event loop: no thread per
    process, no hand-over from one to the loop for every reply, and the loop never
    waits on the pipe either way.

    Replies: the pipe is watched with ``loop.add_reader``; each wake-up reads what is
    there without waiting (``MSG_DONTWAIT``) and hands every complete reply to
    ``on_reply``. Part of a reply waits in the buffer for the rest, so a process
    stopped in the middle of sending one (SIGSTOP) holds up nothing but that reply.
    The end of the pipe (the process exited or was killed) calls ``on_end`` once.

    Messages to the process: written without waiting; what the pipe cannot take now
    (a task whose arguments are larger than it holds, while the process still runs
    the task before) waits in ``backlog`` and goes out as the process reads
    (``loop.add_writer``). Waiting there instead would stop the loop for as long as
    that task runs, and for good if the process is itself waiting to send a large
    reply that the loop, waiting, never reads.

    Both on a duplicate of the descriptor, in the event loop's thread only.
    """

    def __init__(
        self,
        slot: _Slot,
        loop: asyncio.AbstractEventLoop,
        on_reply: Callable[[_Slot, Any], None],
        on_end: Callable[[_Slot], None],
    ) -> None:
        self._slot = slot
        self._loop = loop
        self._on_reply = on_reply
        self._on_end = on_end
        self._sock = socket.socket(fileno=os.dup(slot.conn.fileno()))
        self._fd = self._sock.fileno()
        self._buf = bytearray()
        self.backlog = bytearray()  # framed messages not yet taken by the pipe
        self.closed = False
        loop.add_reader(self._fd, self._readable)

    def send(self, payload: bytes) -> None:
        """Send one message (a pickle); raises ``OSError`` if the process is gone."""
        if self.closed:
            raise BrokenPipeError("the pipe is closed")
        data = _frame(payload)
        if self.backlog:
            self.backlog += data  # behind the rest: messages never interleave
            return
        try:
            sent = self._sock.send(data, socket.MSG_DONTWAIT)
        except (BlockingIOError, InterruptedError):
            sent = 0
        if sent < len(data):
            self.backlog += memoryview(data)[sent:]
            self._loop.add_writer(self._fd, self._writable)

    def _writable(self) -> None:
        try:
            sent = self._sock.send(self.backlog, socket.MSG_DONTWAIT)
        except (BlockingIOError, InterruptedError):
            return
        except OSError:  # the process is gone: its end comes through the reader
            sent = len(self.backlog)
        del self.backlog[:sent]
        if not self.backlog:
            self._loop.remove_writer(self._fd)

    def _readable(self) -> None:
        try:
            data = self._sock.recv(_READ_SIZE, socket.MSG_DONTWAIT)
        except (BlockingIOError, InterruptedError):
            return
        except OSError:
            data = b""
        if not data:
            self.close()
            self._on_end(self._slot)
            return
        buf = self._buf
        buf += data
        while len(buf) >= _LEN.size:
            (size,) = _LEN.unpack_from(buf)
            start = _LEN.size
            if size == -1:
                if len(buf) < _LEN.size + _LONG.size:
                    return
                (size,) = _LONG.unpack_from(buf, _LEN.size)
                start += _LONG.size
            end = start + size
            if len(buf) < end:
                return
            payload = buf[start:end]
            del buf[:end]
            try:
                msg = pickle.loads(payload)
            except Exception as exc:  # noqa: BLE001 - a reply that cannot be unpickled
                msg = (self._slot.started.value, "err", exc)
            try:
                self._on_reply(self._slot, msg)
            except Exception:  # noqa: BLE001 - the replies after it still count
                log.exception("handling a worker process's reply failed")

    def close(self) -> None:
        """Stop watching the pipe (idempotent); what was not sent is dropped."""
        if self.closed:
            return
        self.closed = True
        with contextlib.suppress(RuntimeError):  # the loop is closed already
            self._loop.remove_reader(self._fd)
            if self.backlog:
                self._loop.remove_writer(self._fd)
        self.backlog.clear()
        self._sock.close()


class ProcessPool:
    """``await pool.run(fn, *args)`` runs ``fn(*args)`` in a warm process."""

    def __init__(
        self,
        size: int | None = None,
        *,
        max_tasks: int = 500,
        depth: int = 2,
        initializer: Callable[[], None] | None = None,
        start_method: str = "forkserver",
        preload: Sequence[str] = DEFAULT_PRELOAD,
        niceness: int = 0,
        memory_limit: int = 0,
    ) -> None:
        self.size = max(1, size or os.cpu_count() or 1)
        self.max_tasks = max_tasks
        self.depth = max(1, depth)
        self._initializer = initializer
        self._start_method = start_method
        self._preload = tuple(preload)
        self.niceness = niceness  # added to the workers' nice value (lower priority)
        self.memory_limit = memory_limit  # bytes of address space per process; 0: none
        self._ctx = mp.get_context(start_method)
        self._slots: list[_Slot] = []
        self._spawning = 0
        self._pending: deque[_Task] = deque()  # not sent to any process yet
        self._ids = itertools.count(1)
        self._loop: asyncio.AbstractEventLoop | None = None
        self._closed = False

    @property
    def processes(self) -> list[int]:
        """Pids of the processes that are idle now (no task sent to them)."""
        return [
            s.proc.pid
            for s in self._slots
            if not s.inflight and not s.gone and s.proc.pid is not None
        ]

    @property
    def running(self) -> list[int]:
        """Pids of the processes running one of our tasks now (not merely holding one)."""
        return [
            s.proc.pid
            for s in self._slots
            if not s.gone and s.proc.pid is not None and s.started.value in s.inflight
        ]

    async def run(self, fn: Callable[..., Any], *args: Any) -> Any:
        if self._closed:
            raise RuntimeError("process pool is closed")
        self._loop = asyncio.get_running_loop()
        task = _Task(next(self._ids), fn, args, self._loop.create_future())
        self._pending.append(task)
        self._pump()
        try:
            return await task.future
        except asyncio.CancelledError:
            slot = self._withdraw(task)
            if slot is not None:
                # It runs now: its process is killed (and gone before we return).
                await self._loop.run_in_executor(None, slot.kill)
            raise

    async def warm(self, n: int | None = None) -> None:
        """Start processes ahead of the first task (so its timing is not a cold start)."""
        self._loop = asyncio.get_running_loop()
        need = min(self.size, n or self.size) - len(self._slots) - self._spawning
        await asyncio.gather(*(self._spawn() for _ in range(max(0, need))))

    async def close(self) -> None:
        self._closed = True
        for task in self._pending:
            task.future.cancel()
        self._pending.clear()
        slots, self._slots = self._slots, []
        for slot in slots:
            slot.gone = True
            for task in slot.inflight.values():
                task.future.cancel()
            slot.inflight.clear()
        await asyncio.gather(*(self._retire(s) for s in slots))
        for slot in slots:
            if slot.pipe is not None:
                slot.pipe.close()

    # -- dispatch --------------------------------------------------------------------

    def _pump(self) -> None:
        """Send pending tasks to the least busy processes; start processes as needed."""
        while self._pending:
            task = self._pending[0]
            if task.future.done():  # cancelled while it waited
                self._pending.popleft()
                continue
            open_slots = [s for s in self._slots if not s.retiring and len(s.inflight) < self.depth]
            if not any(not s.inflight for s in open_slots):
                if len(self._slots) + self._spawning < self.size and self._spawning < len(
                    self._pending
                ):
                    # A new process beats queueing behind a busy one.
                    self._spawning += 1
                    assert self._loop is not None
                    self._loop.create_task(self._spawn(counted=True))
                    continue
                if self._spawning:
                    return  # the process starting takes the next task
            if not open_slots:
                return
            slot = min(open_slots, key=lambda s: len(s.inflight))
            self._pending.popleft()
            try:
                # Plain pickle: Connection.send's ForkingPickler copies its reducer
                # table on every call, a cost paid on the event loop for each task.
                assert slot.pipe is not None
                slot.pipe.send(pickle.dumps(("task", task.id, task.fn, task.args), -1))
            except (OSError, ValueError):
                self._pending.appendleft(task)  # the process is gone; its end is handled
                slot.retiring = True
                continue
            except Exception as exc:  # noqa: BLE001 - unpicklable arguments
                task.future.set_exception(exc)
                continue
            task.slot = slot
            slot.inflight[task.id] = task

    async def _spawn(self, counted: bool = False) -> None:
        if not counted:
            self._spawning += 1
        loop = asyncio.get_running_loop()
        try:
            if self._start_method == "forkserver":
                await loop.run_in_executor(None, start_forkserver, self._preload)
            ctx, init, nice, mem = self._ctx, self._initializer, self.niceness, self.memory_limit
            slot = await loop.run_in_executor(None, lambda: _Slot(ctx, init, nice, mem))
        except Exception as exc:
            log.exception("cannot start a worker process")
            if not self._slots:  # nothing could ever run the waiting tasks
                for task in self._pending:
                    if not task.future.done():
                        task.future.set_exception(exc)
                self._pending.clear()
            return
        finally:
            self._spawning -= 1
        if self._closed:
            await loop.run_in_executor(None, slot.retire)
            return
        self._slots.append(slot)
        slot.pipe = _Pipe(slot, loop, self._reply, self._ended)
        self._pump()
        if not slot.inflight:
            self._steal(slot)
            self._pump()

    def _reply(self, slot: _Slot, msg: tuple[int, str, Any]) -> None:
        task_id, status, value = msg
        task = slot.inflight.pop(task_id, None)
        if status != "skipped":
            slot.tasks += 1
        if task is not None and not task.future.done():
            if status == "skipped":
                # Taken back, but the pool read the process's mark for it as "started"
                # and kept waiting: it never ran, so it goes to another process now.
                task.slot = None
                self._pending.appendleft(task)
            elif status == "ok":
                task.future.set_result(value)
            else:
                task.future.set_exception(value)
        if slot.tasks >= self.max_tasks and not slot.gone:
            slot.retiring = True  # recycled: caches cannot grow without bound
        if slot.gone:
            return
        if slot.retiring and not slot.inflight:
            self._drop(slot)
            self._retire(slot)
        elif not slot.inflight and not slot.retiring:
            self._steal(slot)
        self._pump()

    def _retire(self, slot: _Slot) -> asyncio.Future[None]:
        """Ask the process to exit, behind what its pipe still has to send it."""
        if slot.pipe is not None:
            with contextlib.suppress(OSError):
                slot.pipe.send(_BYE)
        return asyncio.get_running_loop().run_in_executor(None, slot.retire)

    def _ended(self, slot: _Slot) -> None:
        """The process's pipe closed. Unless we ended it, it died: the task it was
        running fails, the ones queued behind go elsewhere."""
        if slot.gone:
            return
        self._drop(slot)
        code = slot.proc.exitcode
        running = slot.started.value
        if running not in slot.inflight and slot.tasks == 0 and slot.inflight:
            # It died before running anything (its start-up failed): the oldest task
            # fails, so a process that can never start cannot loop forever.
            running = min(slot.inflight)
        for task in sorted(slot.inflight.values(), key=lambda t: t.id, reverse=True):
            task.slot = None
            if task.id == running and not task.future.done():
                how = f" (exit code {code})" if code is not None else ""
                task.future.set_exception(
                    WorkerCrashed(f"the worker process died{how} running this task")
                )
            else:
                self._pending.appendleft(task)
        slot.inflight.clear()
        self._pump()

    def _steal(self, idle: _Slot) -> None:
        """An idle process takes a task queued behind a busy one, if it has not started."""
        if self._pending:
            return  # it gets a pending task instead
        for slot in self._slots:
            queued = sorted(slot.inflight)[1:] if slot is not idle else []
            for task_id in reversed(queued):
                task = slot.inflight[task_id]
                if self._take_back(slot, task):
                    self._pending.appendleft(task)
                    return

    def _take_back(self, slot: _Slot, task: _Task) -> bool:
        """Withdraw a task from its process if it has not started there (and never will)."""
        pipe = slot.pipe
        if pipe is None:
            return False
        try:
            pipe.send(pickle.dumps(("skip", task.id)))
        except OSError:
            return False
        if pipe.backlog:
            # The "skip" waits behind a message still going into the pipe, so the mark
            # read below proves nothing. If the process sees it before the task, it
            # answers "skipped" and the task goes elsewhere then; if not, it runs there.
            return False
        if slot.started.value >= task.id:
            return False  # started (or finished): its reply will come
        del slot.inflight[task.id]
        task.slot = None
        return True

    def _withdraw(self, task: _Task) -> _Slot | None:
        """A cancelled task: drop it if queued; return its slot if it is running there."""
        with contextlib.suppress(ValueError):
            self._pending.remove(task)
        slot = task.slot
        if slot is None or task.id not in slot.inflight or slot.gone:
            return None
        if self._take_back(slot, task):
            self._pump()
            return None
        if slot.started.value > task.id:
            slot.inflight.pop(task.id, None)  # finished; its reply is on the way
            return None
        if slot.started.value < task.id:
            # Not started, its "skip" still behind the pipe's backlog (_take_back): the
            # process skips it, or runs it and its result is dropped. Nothing else
            # there is killed for it.
            return None
        # Running: the process goes, the tasks behind it (not started) go elsewhere.
        self._drop(slot)
        for other in sorted(slot.inflight.values(), key=lambda t: t.id, reverse=True):
            if other is not task and not other.future.done():
                other.slot = None
                self._pending.appendleft(other)
        slot.inflight.clear()
        self._pump()
        return slot

    def _drop(self, slot: _Slot) -> None:
        slot.gone = True
        with contextlib.suppress(ValueError):
            self._slots.remove(slot)
