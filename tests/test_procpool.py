"""The process pool: tasks queued two deep per process, taken back when another
process goes idle or when cancelled, never run twice, and a dead process fails only
the task it was running."""

from __future__ import annotations

import asyncio
import os
import signal
import time
from pathlib import Path
from typing import Any

import pytest

from jobtui.engine.procpool import ProcessPool, RemoteError, WorkerCrashed
from tests.util import wait_for


def mark(folder: str, name: str, seconds: float = 0.0) -> int:
    """Record that the task ran (one file per run), optionally after ``seconds``."""
    if seconds:
        time.sleep(seconds)
    with open(os.path.join(folder, f"{name}.{time.monotonic_ns()}"), "w") as f:
        f.write(str(os.getpid()))
    return os.getpid()


def wait_for_file(path: str, timeout: float = 30.0) -> int:
    """Block until ``path`` exists (the test creates it); returns this process's pid."""
    deadline = time.monotonic() + timeout
    while not os.path.exists(path) and time.monotonic() < deadline:
        time.sleep(0.005)
    return os.getpid()


def die() -> None:
    os.kill(os.getpid(), signal.SIGKILL)


def runs(folder: Path, name: str) -> int:
    return sum(1 for p in folder.iterdir() if p.name.startswith(f"{name}."))


async def _both_busy(pool: ProcessPool) -> None:
    async def busy() -> bool:
        return not pool.processes  # no idle process: each holds a task

    await wait_for(busy, what="both processes busy")


@pytest.fixture
async def pool():
    p = ProcessPool(2, start_method="forkserver")
    await p.warm()
    yield p
    await p.close()


async def test_many_tasks_each_run_once_with_the_right_result(pool: ProcessPool, tmp_path: Path):
    results = await asyncio.gather(*(pool.run(mark, str(tmp_path), f"t{i}") for i in range(40)))
    assert len(set(results)) == 2  # both processes worked
    assert all(runs(tmp_path, f"t{i}") == 1 for i in range(40))


async def test_a_task_queued_behind_a_long_one_moves_to_the_idle_process(
    pool: ProcessPool, tmp_path: Path
) -> None:
    gate = str(tmp_path / "gate")
    long_a = asyncio.create_task(pool.run(wait_for_file, gate))
    short_b = asyncio.create_task(pool.run(mark, str(tmp_path), "b", 0.2))

    await _both_busy(pool)
    # Now both are busy: this one is queued behind one of them.
    queued = asyncio.create_task(pool.run(mark, str(tmp_path), "q"))
    # b ends after 0.2 s; q must not wait for the long task (which waits for the gate).
    pid_q = await asyncio.wait_for(queued, 10)
    pid_b = await short_b
    assert runs(tmp_path, "q") == 1
    Path(gate).touch()
    pid_a = await long_a
    assert pid_q != pid_a and pid_q == pid_b


async def test_cancelling_a_queued_task_never_runs_it_and_keeps_the_process(
    pool: ProcessPool, tmp_path: Path
) -> None:
    gate = str(tmp_path / "gate")
    blockers = [asyncio.create_task(pool.run(wait_for_file, gate)) for _ in range(2)]

    await _both_busy(pool)
    queued = [asyncio.create_task(pool.run(mark, str(tmp_path), f"q{i}")) for i in range(2)]
    await asyncio.sleep(0)  # let them be sent to the busy processes
    for task in queued:
        task.cancel()
    for task in queued:
        with pytest.raises(asyncio.CancelledError):
            await task
    Path(gate).touch()
    pids = await asyncio.gather(*blockers)
    # The processes lived on (nobody killed them) and the cancelled tasks never ran.
    after = await asyncio.gather(*(pool.run(mark, str(tmp_path), f"n{i}") for i in range(4)))
    assert set(after) <= set(pids)  # no process was replaced
    assert runs(tmp_path, "q0") == 0 and runs(tmp_path, "q1") == 0


async def test_cancelling_a_running_task_kills_its_process_and_the_queue_behind_moves(
    pool: ProcessPool, tmp_path: Path
) -> None:
    gate = str(tmp_path / "gate")
    running = [asyncio.create_task(pool.run(wait_for_file, gate)) for _ in range(2)]

    await _both_busy(pool)
    queued = [asyncio.create_task(pool.run(mark, str(tmp_path), f"q{i}")) for i in range(2)]
    await asyncio.sleep(0)
    running[0].cancel()
    with pytest.raises(asyncio.CancelledError):
        await running[0]
    # Its process is gone; the tasks queued behind it run elsewhere, exactly once.
    Path(gate).touch()
    await asyncio.wait_for(asyncio.gather(*queued), 20)
    await running[1]
    assert runs(tmp_path, "q0") == 1 and runs(tmp_path, "q1") == 1


async def test_a_process_that_dies_fails_its_task_only(pool: ProcessPool, tmp_path: Path):
    others = [asyncio.create_task(pool.run(mark, str(tmp_path), f"o{i}", 0.05)) for i in range(6)]
    with pytest.raises(RemoteError, match="died"):
        await pool.run(die)
    await asyncio.gather(*others)
    assert all(runs(tmp_path, f"o{i}") == 1 for i in range(6))
    assert await pool.run(mark, str(tmp_path), "after")  # a new process took its place


def broken_start() -> None:
    raise SystemExit(3)


async def test_a_process_that_cannot_start_fails_tasks_instead_of_looping(tmp_path: Path):
    pool = ProcessPool(1, initializer=broken_start)
    try:
        with pytest.raises(RemoteError, match="died"):
            await asyncio.wait_for(pool.run(mark, str(tmp_path), "x"), 30)
    finally:
        await pool.close()
    assert runs(tmp_path, "x") == 0


async def test_processes_are_recycled_after_max_tasks(tmp_path: Path) -> None:
    pool = ProcessPool(1, max_tasks=3)
    try:
        pids = [await pool.run(mark, str(tmp_path), f"r{i}") for i in range(7)]
    finally:
        await pool.close()
    assert len(set(pids)) == 3  # 3 + 3 + 1 tasks, a fresh process each time
    assert all(runs(tmp_path, f"r{i}") == 1 for i in range(7))


async def test_random_cancels_never_run_a_task_twice_and_lose_none(
    pool: ProcessPool, tmp_path: Path
) -> None:
    import random

    rnd = random.Random(7)
    tasks = {
        f"t{i}": asyncio.create_task(pool.run(mark, str(tmp_path), f"t{i}", rnd.choice([0, 0.01])))
        for i in range(60)
    }
    cancelled = set()
    for name, task in tasks.items():
        if rnd.random() < 0.3:
            await asyncio.sleep(rnd.choice([0, 0.005]))
            task.cancel()
            cancelled.add(name)
    await asyncio.gather(*tasks.values(), return_exceptions=True)
    for name, task in tasks.items():
        n = runs(tmp_path, name)
        if task.cancelled():
            assert n <= 1, name  # taken back (0) or killed while running (0 or 1)
        else:
            assert n == 1 and task.result() > 0, name  # ran exactly once
    assert sum(1 for t in tasks.values() if not t.cancelled()) >= 60 - len(cancelled)


def my_niceness() -> int:
    return os.nice(0)


async def test_workers_run_at_the_niceness_asked_for() -> None:
    pool = ProcessPool(1, niceness=7)
    try:
        assert await pool.run(my_niceness) == os.nice(0) + 7
    finally:
        await pool.close()


def omp_thread_limit() -> str | None:
    return os.environ.get("OMP_THREAD_LIMIT")


async def test_workers_run_openmp_with_one_thread_without_changing_this_process(
    pool: ProcessPool, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Both processes of the pool: one core each already, a second OpenMP thread would
    # only compete (Tesseract, numpy, onnxruntime).
    monkeypatch.delenv("OMP_THREAD_LIMIT", raising=False)
    limits = await asyncio.gather(*(pool.run(omp_thread_limit) for _ in range(8)))
    assert set(limits) == {"1"}
    assert "OMP_THREAD_LIMIT" not in os.environ


# -- replies, read on the event loop ---------------------------------------------------


def big_reply(size: int) -> bytes:
    return bytes(range(256)) * (size // 256)


async def test_replies_larger_than_the_pipe_arrive_whole(pool: ProcessPool) -> None:
    sizes = [256, 1 << 16, 3 << 20, 1 << 10]  # one read, several, many reads, one
    results = await asyncio.gather(*(pool.run(big_reply, n) for n in sizes))
    assert [len(r) for r in results] == sizes
    assert all(r == big_reply(len(r)) for r in results)


def _unread(fd: int) -> int:
    import fcntl
    import struct
    import termios

    return struct.unpack("i", fcntl.ioctl(fd, termios.FIONREAD, b"\0\0\0\0"))[0]


async def _halfway_through_a_reply(pool: ProcessPool) -> tuple[int, Any]:
    """The pid and slot of the one process running a task, once the first 64 KB of
    its (larger) reply wait in the pipe. The event loop reads nothing meanwhile: this
    waits synchronously, so the process is caught half-way through sending."""
    running = await wait_for(lambda: _async(pool.running), what="the big task running")
    (pid,) = running
    slot = next(s for s in pool._slots if s.proc.pid == pid)
    deadline = time.monotonic() + 30
    while _unread(slot.conn.fileno()) < 1 << 16:
        assert time.monotonic() < deadline, "the reply never started"
        time.sleep(0.001)
    return pid, slot


async def test_a_process_stopped_halfway_through_a_reply_holds_up_nothing_else(
    pool: ProcessPool, tmp_path: Path
) -> None:
    size = 16 << 20  # far more than a pipe holds: its process waits to send the rest
    big = asyncio.create_task(pool.run(big_reply, size))
    pid, slot = await _halfway_through_a_reply(pool)
    os.kill(pid, signal.SIGSTOP)
    try:
        # The loop reads what was sent and goes on: the other process serves tasks.
        other = await asyncio.wait_for(pool.run(mark, str(tmp_path), "other"), 20)
        assert other != pid and runs(tmp_path, "other") == 1
        await wait_for(lambda: _async(_unread(slot.conn.fileno()) == 0), what="pipe read")
        assert not big.done()
    finally:
        os.kill(pid, signal.SIGCONT)
    assert await asyncio.wait_for(big, 30) == big_reply(size)


async def _async(value: object) -> object:
    return value


async def test_a_process_killed_halfway_through_a_reply_fails_that_task_only(
    tmp_path: Path,
) -> None:
    """The half reply is dropped with its pipe: the task that sent it fails as crashed
    (it ran; its result is lost), the task queued behind it runs once elsewhere, and
    the pool goes on with a new process."""
    pool = ProcessPool(1)
    try:
        await pool.warm()
        big = asyncio.create_task(pool.run(big_reply, 16 << 20))
        pid, slot = await _halfway_through_a_reply(pool)
        os.kill(pid, signal.SIGSTOP)  # so it cannot finish the reply meanwhile
        behind = asyncio.create_task(pool.run(mark, str(tmp_path), "behind"))
        await wait_for(lambda: _async(len(slot.inflight) == 2), what="a task queued behind")
        os.kill(pid, signal.SIGKILL)
        with pytest.raises(WorkerCrashed, match="died"):
            await asyncio.wait_for(big, 30)
        assert await asyncio.wait_for(behind, 30) != pid
        assert await asyncio.wait_for(pool.run(mark, str(tmp_path), "after"), 30) != pid
        assert runs(tmp_path, "behind") == 1 and runs(tmp_path, "after") == 1
    finally:
        await pool.close()


def echo(data: bytes) -> bytes:
    return data


async def test_large_arguments_and_large_replies_at_once_never_stall(pool: ProcessPool) -> None:
    # Each way far more than a pipe holds: a process sends a large reply while the
    # loop sends it the next large task. A loop that waited to send would never read
    # the reply the process waits to send: both would wait for good.
    payloads = [bytes([i]) * (4 << 20) for i in range(6)]
    results = await asyncio.wait_for(asyncio.gather(*(pool.run(echo, p) for p in payloads)), 120)
    assert results == payloads


def mark_with(folder: str, name: str, blob: bytes) -> int:
    return mark(folder, name)


async def test_cancelling_a_task_whose_arguments_are_still_being_sent(tmp_path: Path) -> None:
    """One process, busy: a task with large arguments waits for it partly outside
    the pipe. Cancelled there, it never runs, and the running task is not killed
    for it (the process stays)."""
    pool = ProcessPool(1)
    try:
        await pool.warm()
        gate = tmp_path / "gate"
        running = asyncio.create_task(pool.run(wait_for_file, str(gate)))
        await wait_for(lambda: _async(pool.running), what="the first task running")
        big = asyncio.create_task(pool.run(mark_with, str(tmp_path), "big", b"x" * (8 << 20)))
        (slot,) = pool._slots
        await wait_for(lambda: _async(slot.pipe is not None and slot.pipe.backlog), what="backlog")
        big.cancel()
        with pytest.raises(asyncio.CancelledError):
            await big
        gate.touch()
        first = await asyncio.wait_for(running, 30)
        after = await asyncio.wait_for(pool.run(mark, str(tmp_path), "after"), 30)
        assert after == first  # the same process: nothing was killed
        assert runs(tmp_path, "big") == 0 and runs(tmp_path, "after") == 1
    finally:
        await pool.close()
