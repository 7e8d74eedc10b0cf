"""The one thread that owns an SQLite connection, with group commit.

The event loop must never block on SQLite, and an ``sqlite3.Connection`` belongs to
one thread. So each store has one single-thread executor that opens, uses and
closes its connection; coroutines await it through ``run_in_executor``.

Writes are grouped: every write queued while the thread is busy joins the next
``BEGIN IMMEDIATE`` transaction, each inside its own SAVEPOINT (one failing write
rolls back alone and raises to its own caller). A commit is the expensive part of
a small write (the WAL appends every touched page once per transaction), so
twenty concurrent finishes or heartbeats cost about one. Each caller's await still
returns only after its transaction committed, so the semantics are those of one
transaction per write; the executor's FIFO order keeps read-your-writes.
"""

from __future__ import annotations

import asyncio
import os
import sqlite3
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, TypeVar

from jobtui.engine.store.base import StoreError

T = TypeVar("T")

_MAX_GROUP = 256  # writes per transaction: bounds how long other processes wait
_LOCK_RETRIES = 5

_Pending = tuple[Callable[..., Any], tuple[Any, ...], "asyncio.Future[Any]"]


def is_busy(exc: BaseException) -> bool:
    msg = str(exc).lower()
    return isinstance(exc, sqlite3.OperationalError) and ("locked" in msg or "busy" in msg)


def _no_space(path: Path) -> bool:
    try:
        st = os.statvfs(path.parent)
    except OSError:
        return False
    return st.f_bavail * st.f_frsize < 1 << 20


def _settle(fut: asyncio.Future[Any], ok: bool, value: Any) -> None:
    if fut.done():  # the caller was cancelled; the write itself still happened
        return
    if ok:
        fut.set_result(value)
    else:
        fut.set_exception(value)


class SQLiteThread:
    """Runs functions against one connection on one thread (see module docstring)."""

    def __init__(self, path: Path, connect: Callable[[], sqlite3.Connection]) -> None:
        self.path = path
        self._connect = connect
        self._pool: ThreadPoolExecutor | None = None
        self._conn: sqlite3.Connection | None = None
        self._lock = threading.Lock()  # guards _queue and _flushing (two threads)
        self._queue: list[_Pending] = []
        self._flushing = False

    @property
    def is_open(self) -> bool:
        return self._pool is not None

    @property
    def db(self) -> sqlite3.Connection:
        """The connection; only for functions running on the store thread."""
        if self._conn is None:
            raise StoreError("STORE_CLOSED", f"sqlite:{self.path} is not open")
        return self._conn

    async def start(self) -> None:
        if self._pool is not None:
            return
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="jobtui-sqlite")
        try:
            await self.read(self._open)
        except BaseException:
            self._pool.shutdown(wait=False)
            self._pool = None
            raise

    def _open(self) -> None:
        self._conn = self._connect()

    async def stop(self) -> None:
        if self._pool is None:
            return
        try:
            await self.read(self._close)
        finally:
            self._pool.shutdown(wait=True)
            self._pool = None

    def _close(self) -> None:
        # No ANALYZE / PRAGMA optimize: statistics taken while the queue was small
        # would steer a later, large queue to full scans. The plans without
        # statistics are the ones the tests EXPLAIN.
        if self._conn is not None:
            self._conn.close()
            self._conn = None

    # -- reads: one call each ------------------------------------------------------

    async def read(self, fn: Callable[..., T], *args: Any) -> T:
        if self._pool is None:
            raise StoreError("STORE_CLOSED", f"sqlite:{self.path} is not open")
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._pool, self._guarded, fn, args)

    def _guarded(self, fn: Callable[..., T], args: tuple[Any, ...]) -> T:
        try:
            return fn(*args)
        except sqlite3.DatabaseError as exc:
            raise self.translate(exc) from exc

    def translate(self, exc: BaseException) -> BaseException:
        """Corruption, a full disk or a read-only file found mid-run become coded
        StoreErrors (the same as at open)."""
        text = str(exc)
        if not isinstance(exc, sqlite3.DatabaseError):
            return exc
        if "malformed" in text or "not a database" in text:
            return StoreError("STORE_CORRUPT", f"{self.path} is corrupt: {text}")
        if "disk is full" in text or ("disk I/O error" in text and _no_space(self.path)):
            return StoreError(
                "STORE_FULL",
                f"no space left for {self.path} ({text}); nothing of this write was kept. "
                "Free space (jobtui purge, or the disk), then try again",
            )
        if "readonly" in text:
            return StoreError("STORE_READONLY", f"{self.path} became read-only: {text}")
        return exc

    # -- writes: grouped into transactions ----------------------------------------

    async def write(self, fn: Callable[..., T], *args: Any) -> T:
        """Run ``fn(*args)`` inside a write transaction; returns once committed."""
        if self._pool is None:
            raise StoreError("STORE_CLOSED", f"sqlite:{self.path} is not open")
        fut: asyncio.Future[T] = asyncio.get_running_loop().create_future()
        with self._lock:
            self._queue.append((fn, args, fut))
            start = not self._flushing
            self._flushing = True
        if start:
            self._pool.submit(self._flush)
        return await fut

    def _flush(self) -> None:
        """Commit one group; if more writes queued meanwhile, queue another flush
        *behind* the reads already waiting, so a stream of writes (a busy engine)
        cannot starve the console's reads."""
        with self._lock:
            group = self._queue[:_MAX_GROUP]
            del self._queue[:_MAX_GROUP]
            if not group:
                self._flushing = False
                return
        self._commit_group(group)
        with self._lock:
            again = bool(self._queue)
            self._flushing = again
        if not again:
            return
        pool = self._pool
        try:
            if pool is None:
                raise RuntimeError("closed")
            pool.submit(self._flush)
        except RuntimeError:  # the store is closing: nobody will commit these
            with self._lock:
                left, self._queue, self._flushing = self._queue, [], False
            closed = StoreError("STORE_CLOSED", f"sqlite:{self.path} is not open")
            self._settle_all([(fut, False, closed) for _fn, _args, fut in left])

    def _commit_group(self, group: list[_Pending]) -> None:
        if len(group) == 1:
            self._commit_one(group[0])
            return
        outcomes: list[tuple[bool, Any]] = []
        try:
            db = self.db  # raises StoreError when closed meanwhile: settle every caller
            self._begin(db)
            for fn, args, _fut in group:
                db.execute("SAVEPOINT w")
                try:
                    value = fn(*args)
                except Exception as exc:  # noqa: BLE001 - handed to its caller
                    db.execute("ROLLBACK TO w")
                    db.execute("RELEASE w")
                    outcomes.append((False, self.translate(exc)))
                else:
                    db.execute("RELEASE w")
                    outcomes.append((True, value))
            db.execute("COMMIT")
        except Exception as exc:  # noqa: BLE001 - the whole group failed to commit
            if self._conn is not None and self._conn.in_transaction:
                self._conn.execute("ROLLBACK")
            failure = self.translate(exc)
            outcomes = [(False, failure)] * len(group)
        self._settle_all(
            [(fut, ok, value) for (ok, value), (_f, _a, fut) in zip(outcomes, group, strict=True)]
        )

    def _commit_one(self, pending: _Pending) -> None:
        """A group of one write (the usual case when jobs are slow): no SAVEPOINT,
        since there is no other write to isolate it from; it fails alone anyway."""
        fn, args, fut = pending
        try:
            db = self.db
            self._begin(db)
            try:
                value = fn(*args)
            except BaseException:
                db.execute("ROLLBACK")
                raise
            db.execute("COMMIT")
        except Exception as exc:  # noqa: BLE001 - handed to its caller
            if self._conn is not None and self._conn.in_transaction:
                self._conn.execute("ROLLBACK")
            ok, value = False, self.translate(exc)
        else:
            ok = True
        self._settle_all([(fut, ok, value)])

    @staticmethod
    def _settle_all(results: list[tuple[asyncio.Future[Any], bool, Any]]) -> None:
        for fut, ok, value in results:
            try:
                fut.get_loop().call_soon_threadsafe(_settle, fut, ok, value)
            except RuntimeError:  # that caller's event loop is gone; nobody waits
                pass

    @staticmethod
    def _begin(db: sqlite3.Connection) -> None:
        """BEGIN IMMEDIATE: take the write lock now, so another process's writer
        makes us wait (busy_timeout) instead of failing our transaction midway.
        The retries cover the rare SQLITE_BUSY returned without waiting."""
        for attempt in range(_LOCK_RETRIES):
            try:
                db.execute("BEGIN IMMEDIATE")
                return
            except sqlite3.OperationalError as exc:
                if not is_busy(exc) or attempt == _LOCK_RETRIES - 1:
                    raise
                time.sleep(0.05 * 2**attempt)
