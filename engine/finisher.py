"""Fenced finishes, gathered: the engine's writes of how attempts end.

While one write is in flight the next ones gather, so a busy engine finishes many
jobs per round trip (one transaction on SQLite) and an idle one at once. A group may
also wait a little (``linger``) for finishes about to come: a folder's documents end
a few milliseconds apart. The engine
(a ``Claimer``) may add the claim for the slots a group frees to the same store call. A store that
is briefly away (failover, a restart, a locked file) is retried for ``STORE_RETRY_S``.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Sequence
from datetime import datetime
from functools import partial
from typing import Any, Protocol, TypeVar

from jobtui.engine.models import Job, Outcome, utcnow
from jobtui.engine.store.base import ClaimRequest, Store

log = logging.getLogger(__name__)
T = TypeVar("T")

# Transient store failures are retried for about this long before a write gives up.
STORE_RETRY_S = 30.0


def short(exc: BaseException) -> str:
    """One line for the log: driver errors carry a whole topology description."""
    text = str(exc).splitlines()[0] if str(exc) else ""
    return f"{type(exc).__name__}: {text[:160]}"


async def until_done(fut: asyncio.Future[Any]) -> bool:
    """Wait until ``fut`` is done even if this task is cancelled meanwhile (work that
    must not be cut short, as a hand back); True when a cancel arrived (pass it on)."""
    cancelled = False
    while not fut.done():
        try:
            await asyncio.wait([fut])
        except asyncio.CancelledError:
            cancelled = True
    return cancelled


class Claimer(Protocol):
    """Who claims for the slots a group of finishes frees (the engine)."""

    def claim_for(self, leaving: Sequence[str]) -> ClaimRequest | None:
        """The claim to make once the jobs ``leaving`` are finished, or None."""

    async def claimed(self, jobs: list[Job] | Exception | None, *, cancelled: bool) -> None:
        """What that claim took (None: it did not happen). Called exactly once per
        ``claim_for`` that returned a request."""


async def retrying(op: Callable[[], Awaitable[T]], within: float = STORE_RETRY_S) -> T:
    """Await ``op()``, retrying with backoff on any error for ``within`` seconds."""
    deadline = time.monotonic() + within
    delay = 0.2
    while True:
        try:
            return await op()
        except Exception as exc:
            if time.monotonic() > deadline:
                raise
            log.warning("store write failed (%s); retrying in %.1fs", short(exc), delay)
            await asyncio.sleep(delay)
            delay = min(delay * 2, 5.0)


class Finisher:
    """Gathers the engine's fenced finishes into ``Store.finish_many`` calls.

    ``worker_id``: the engine's, handed to the store (which may use it to tell its
    own writes from others'). A group that still fails after ``STORE_RETRY_S`` is split:
    each of its finishes is tried once alone, so one that the store refuses (a result
    too large to store) fails only its own job. Every try of a group passes the same
    ``now``, so a store can recognise a finish an earlier try already applied.
    """

    def __init__(
        self,
        store: Store,
        worker_id: str | None = None,
        *,
        retry_for: float = STORE_RETRY_S,
        claimer: Claimer | None = None,
        linger: float = 0.0,
        gather: Callable[[], int] | None = None,
    ) -> None:
        self._store = store
        self._worker_id = worker_id
        self._retry_for = retry_for
        self._claimer = claimer
        self._queue: list[tuple[str, str, Outcome, asyncio.Future[bool]]] = []
        self._wake = asyncio.Event()
        # A group may wait up to ``linger`` seconds for more finishes to join it,
        # while it holds fewer than ``gather()`` (see ``run``).
        self._linger = linger
        self._gather = gather
        self._enough = asyncio.Event()
        self._enough_at = 1

    async def finish(self, job_id: str, token: str, outcome: Outcome) -> bool:
        """Queue a fenced finish and wait for it; False when the lease was lost."""
        fut: asyncio.Future[bool] = asyncio.get_running_loop().create_future()
        self._queue.append((job_id, token, outcome, fut))
        self._wake.set()
        if len(self._queue) >= min(self._enough_at, self._want()):
            self._enough.set()
        return await fut

    def hurry(self) -> None:
        """Write the group now, without waiting for more (the engine stops)."""
        self._enough.set()

    def _want(self) -> int:
        return self._gather() if self._gather is not None else 1

    async def _gathered(self) -> None:
        """Wait (up to ``linger``) until ``gather()`` finishes are queued. Documents of
        a folder end a few milliseconds apart on a busy engine: written as they come,
        each costs a transaction, a claim and two thread hops of its own; a few
        together cost about one. The engine asks for half the jobs it runs, so the
        other half keep its worker processes fed meanwhile; for one job (or a stop)
        it asks for one: no wait."""
        want = self._want()
        if self._linger <= 0 or len(self._queue) >= want:
            return
        self._enough_at = want
        self._enough.clear()
        try:
            async with asyncio.timeout(self._linger):
                await self._enough.wait()
        except TimeoutError:
            pass
        finally:
            self._enough_at = 1

    async def _finish_batch(
        self, batch: list[tuple[str, str, Outcome]], now: datetime
    ) -> list[bool]:
        """The finishes; with a ``claimer``, also the claim for the slots they free, in
        the same store call (one transaction on SQLite instead of two)."""
        claimer = self._claimer
        request = claimer.claim_for([j for j, _, _ in batch]) if claimer else None
        if claimer is None or request is None:
            return await self._store.finish_many(batch, now=now, worker_id=self._worker_id)
        # Shielded: a claim the store may have committed is handed over even if this
        # task is cancelled meanwhile (the engine hands such jobs back).
        call = asyncio.ensure_future(
            self._store.finish_then_claim(batch, request, now=now, worker_id=self._worker_id)
        )
        try:
            done, jobs = await asyncio.shield(call)
        except asyncio.CancelledError:
            await until_done(call)
            took = not call.cancelled() and call.exception() is None
            await claimer.claimed(call.result()[1] if took else None, cancelled=True)
            raise
        except Exception:
            await claimer.claimed(None, cancelled=False)  # the finishes failed: no claim
            raise
        try:
            await claimer.claimed(jobs, cancelled=False)
        except Exception:  # the finishes are written: not a store failure to retry
            log.exception("could not start the jobs claimed with %d finishes", len(batch))
        return done

    async def run(self) -> None:
        while True:
            await self._wake.wait()
            await self._gathered()
            self._wake.clear()
            items, self._queue = self._queue, []
            if items:
                await self._finish_group(items)
                # One turn of the loop before the next group: the jobs just finished
                # resume and leave the engine, so their slots count as free for the
                # claim that the next group may carry.
                await asyncio.sleep(0)

    async def _finish_group(
        self, items: list[tuple[str, str, Outcome, asyncio.Future[bool]]]
    ) -> None:
        batch = [(j, t, o) for j, t, o, _ in items]
        now = utcnow()
        try:
            results = await retrying(partial(self._finish_batch, batch, now), self._retry_for)
        except Exception as exc:  # noqa: BLE001 - reported to each waiting job
            if len(items) > 1:
                log.warning("%d finishes failed together (%s); one by one", len(items), short(exc))
                for item in items:
                    await self._finish_alone(item, now)
                return
            _resolve(items[0][3], exc)
            return
        for (*_, fut), ok in zip(items, results, strict=True):
            _resolve(fut, ok)

    async def _finish_alone(
        self, item: tuple[str, str, Outcome, asyncio.Future[bool]], now: datetime
    ) -> None:
        job_id, token, outcome, fut = item
        try:
            (ok,) = await self._finish_batch([(job_id, token, outcome)], now)
        except Exception as exc:  # noqa: BLE001 - reported to its job
            _resolve(fut, exc)
        else:
            _resolve(fut, ok)


def _resolve(fut: asyncio.Future[bool], result: bool | BaseException) -> None:
    if fut.done():
        return
    if isinstance(result, BaseException):
        fut.set_exception(result)
    else:
        fut.set_result(result)
