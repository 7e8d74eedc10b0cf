"""Webhooks: tell another system when a job, or a whole batch, has finished.

A job (``Job.webhook``) or a batch (``Batch.webhook``) may carry
``{"url": "https://...", "secret": "..."}`` (``secret`` optional). When a job this
engine ran (or its watchdog recovered) reaches a terminal state, the engine POSTs
``event: "job.finished"`` to the job's webhook. ``batch.finished`` goes to a batch's
webhook once every job of the batch is terminal, however the last one ended: run,
recovered, or cancelled while pending, here or in another process. The store marks
the batch due when a recount finds it finished (``Store.recount_batches``) and hands
each due batch to exactly one engine (``Store.claim_finished_batches``); engines ask
after each of their recounts, after a local cancel, and every ``announce_interval``
seconds (other processes' cancels).

Delivery never touches the job: the engine's terminal hook only puts the event on a
bounded queue (``on_terminal`` is synchronous and O(1)); a dispatcher task reads the
batch state, sender tasks POST with a timeout per attempt and retry with exponential
backoff. A slow, failing or unreachable receiver costs at most the senders' time;
when the queues are full, events are dropped with a warning rather than blocking.

A webhook may also carry ``"headers": {"Authorization": "Bearer ..."}``: they are sent
with every attempt (the seed's webhooks had them) and never logged.

Signing follows Standard Webhooks (standardwebhooks.com), so receivers can use its
libraries and reject replays: every request carries ``webhook-id`` (one per delivery,
the same on each retry) and ``webhook-timestamp`` (Unix seconds of this attempt); with a
secret (the webhook's own, else ``Settings.webhook_secret`` / ``JOBTUI_WEBHOOK_SECRET``)
also ``webhook-signature: v1,<base64 HMAC-SHA256 of "id.timestamp.body">``. A
``whsec_<base64>`` secret is base64-decoded to the key, as the standard says; any other
string is used as its UTF-8 bytes.

Delivery is at least once for each attempt made: a retry after a lost response
repeats a delivery (same ``webhook-id``); receivers dedupe by ``webhook-id``. A
``batch.finished`` is claimed by one engine; if that engine dies before sending it,
it is not sent again.

HTTP is httpx's (async, cancellable: a hanging receiver never holds a thread or
delays process exit), with one connection pool shared by the sender tasks and a total
deadline per attempt on top of httpx's own timeouts.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
import uuid
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from jobtui.engine.models import BatchSummary, Job, Outcome, utcnow
from jobtui.engine.store.base import Store
from jobtui.engine.uri import redact_uri
from jobtui.engine.webhook_http import (
    RETRY_STATUSES,
    WebhookError,
    load_httpx,
    post,
    secret_key,
    sign,
)

if TYPE_CHECKING:
    import httpx

__all__ = ["Delivery", "WebhookError", "Webhooks", "job_payload", "post", "secret_key", "sign"]

log = logging.getLogger(__name__)

EVENT_HEADER = "X-Jobtui-Event"
# Set by the engine on every request: a webhook's own ``headers`` cannot replace them.
_RESERVED = frozenset(
    {"webhook-id", "webhook-timestamp", "webhook-signature", "content-type", "content-length"}
    | {EVENT_HEADER.lower()}
)


def _iso(value: Any) -> str | None:
    return value.isoformat() if value is not None else None


def job_payload(job: Job, outcome: Outcome) -> dict[str, Any]:
    """The ``job.finished`` body. Parameters are left out (they may hold a password)."""
    err = outcome.error
    return {
        "event": "job.finished",
        "job_id": job.job_id,
        "job_type": job.job_type,
        "status": outcome.status.value,
        "error": {"code": err.code, "message": err.message} if err else None,
        "results": outcome.results,
        "batch_id": job.batch_id,
        "path": job.path,
        "attempts": job.attempts,
        "timestamp": utcnow().isoformat(),
    }


def batch_payload(summary: BatchSummary) -> dict[str, Any]:
    """The ``batch.finished`` body."""
    return {
        "event": "batch.finished",
        "batch_id": summary.batch.batch_id,
        "name": summary.batch.name,
        "status": summary.status,
        "total": summary.total,
        "counts": summary.counts,
        "first_started_at": _iso(summary.first_started_at),
        "last_completed_at": _iso(summary.last_completed_at),
        "timestamp": utcnow().isoformat(),
    }


@dataclass
class Delivery:
    url: str
    body: bytes
    event: str
    # Not in repr: a Delivery in a log line or a test failure must not show them.
    secret: str | None = field(default=None, repr=False)
    headers: dict[str, str] = field(default_factory=dict, repr=False)  # the webhook's own
    delivery_id: str = field(default_factory=lambda: "msg_" + uuid.uuid4().hex)
    attempts: int = 0
    last_error: str = ""


class Webhooks:
    """Subscribe ``on_terminal`` to ``Engine.terminal_hooks``; ``start``/``stop`` with
    the engine. ``attempts`` tries per delivery, ``timeout`` seconds each, waiting
    ``backoff * 2**(n-1)`` (at most ``max_backoff``) seconds between tries."""

    def __init__(
        self,
        store: Store,
        *,
        secret: str | None = None,
        attempts: int = 5,
        timeout: float = 10.0,
        backoff: float = 1.0,
        max_backoff: float = 60.0,
        senders: int = 4,
        queue_size: int = 10_000,
        announce_interval: float = 5.0,
    ) -> None:
        self.store = store
        self.secret = secret
        self.attempts = attempts
        self.timeout = timeout
        self.backoff = backoff
        self.max_backoff = max_backoff
        self.senders = senders
        self.queue_size = queue_size
        self.announce_interval = announce_interval
        self._announce = asyncio.Event()
        self._events: asyncio.Queue[tuple[Job, Outcome]] | None = None
        self._out: asyncio.Queue[Delivery] | None = None
        self._tasks: list[asyncio.Task[None]] = []
        self.delivered: list[Delivery] = []  # the last few, for tests and doctor-style checks
        self.failed: list[Delivery] = []
        self.dropped = 0
        self._busy = 0  # events and deliveries queued or in flight
        self._client: httpx.AsyncClient | None = None  # one pool for all senders, made on use

    def client(self) -> httpx.AsyncClient:
        load_httpx()
        import httpx

        if self._client is None or self._client.is_closed:
            # No redirects: a signed POST is for the URL the job names, not another one.
            self._client = httpx.AsyncClient(
                timeout=httpx.Timeout(self.timeout),
                follow_redirects=False,
                headers={"User-Agent": "jobtui-webhooks"},
            )
        return self._client

    @classmethod
    def from_settings(cls, store: Store, settings: Any) -> Webhooks:
        return cls(
            store,
            secret=settings.webhook_secret,
            attempts=settings.webhook_attempts,
            timeout=settings.webhook_timeout,
            announce_interval=settings.watchdog_interval,
        )

    # -- lifecycle ---------------------------------------------------------------------

    def start(self) -> None:
        if self._tasks:
            return
        self._events = asyncio.Queue(self.queue_size)
        self._out = asyncio.Queue(self.queue_size)
        self._tasks = [
            asyncio.create_task(self._dispatch(), name="jobtui-webhooks-dispatch"),
            asyncio.create_task(self._announce_loop(), name="jobtui-webhooks-batches"),
        ]
        self._tasks += [
            asyncio.create_task(self._send_loop(), name=f"jobtui-webhooks-{i}")
            for i in range(self.senders)
        ]

    @property
    def pending(self) -> int:
        """Events and deliveries not yet done (queued or in flight)."""
        return self._busy

    async def drain(self) -> None:
        """Wait until every queued event has been delivered or given up on."""
        if self._events is not None and self._out is not None:
            await self._events.join()
            await self._out.join()

    async def stop(self, timeout: float = 5.0) -> None:
        """Give queued deliveries up to ``timeout`` seconds, then drop the rest (logged)."""
        try:
            await self._stop_tasks(timeout)
        finally:
            if self._client is not None:
                await self._client.aclose()
                self._client = None

    async def _stop_tasks(self, timeout: float) -> None:
        if not self._tasks:
            return
        if self.pending:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.drain(), timeout)
        left = self.pending
        if left:
            log.warning("webhooks: %d event(s)/delivery(ies) not sent at shutdown", left)
        for t in self._tasks:
            t.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self._tasks = []

    # -- the terminal hook (synchronous, must not block) --------------------------------

    def on_terminal(self, job: Job, outcome: Outcome) -> None:
        if self._events is None or not job.webhook:
            return
        try:
            self._events.put_nowait((job, outcome))
            self._busy += 1
        except asyncio.QueueFull:
            self.dropped += 1
            log.warning("webhooks: queue full; no webhook for job %s", job.job_id)

    # -- dispatch: decide what to send -----------------------------------------------------

    async def _dispatch(self) -> None:
        assert self._events is not None
        while True:
            job, outcome = await self._events.get()
            try:
                if job.webhook:
                    await self._queue(job.webhook, job_payload(job, outcome))
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("webhooks: cannot handle job %s", job.job_id)
            finally:
                self._events.task_done()
                self._busy -= 1

    async def _queue(self, hook: dict[str, Any], payload: dict[str, Any]) -> None:
        assert self._out is not None
        url = hook.get("url")
        if not isinstance(url, str) or not url:
            # Not the hook itself: it may hold a secret and an Authorization header.
            log.warning("webhooks: %s has no url", payload["event"])
            return
        secret = hook.get("secret") or self.secret
        extra = hook.get("headers") or {}
        if not isinstance(extra, dict):
            log.warning(
                "webhooks: %s to %s: headers must be a mapping; sent without them",
                payload["event"],
                redact_uri(url),
            )
            extra = {}
        headers = {str(k): str(v) for k, v in extra.items() if str(k).lower() not in _RESERVED}
        body = json.dumps(payload, default=str, separators=(",", ":")).encode("utf-8")
        self._busy += 1  # before the put: the event is not done until this delivery is
        try:
            await self._out.put(
                Delivery(url, body, payload["event"], str(secret) if secret else None, headers)
            )
        except BaseException:
            self._busy -= 1
            raise

    # -- batch.finished --------------------------------------------------------------

    def announce_soon(self) -> None:
        """Ask the store for finished batches now (after a recount, a local cancel)."""
        self._announce.set()

    async def _announce_loop(self) -> None:
        while True:
            # asyncio.timeout, not wait_for: on Python 3.11 wait_for swallows a cancel
            # that arrives as the event is set (announce_soon at engine stop), and the
            # loop would never end.
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(self.announce_interval):
                    await self._announce.wait()
            self._announce.clear()
            try:
                await self.announce_finished()
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # noqa: BLE001 - store away: next round
                log.warning("webhooks: cannot read finished batches: %s", type(exc).__name__)

    async def announce_finished(self) -> int:
        """Queue ``batch.finished`` for every batch the store hands us; how many."""
        n = 0
        while summaries := await self.store.claim_finished_batches():
            for summary in summaries:
                if summary.batch.webhook:
                    await self._queue(summary.batch.webhook, batch_payload(summary))
                    n += 1
        return n

    # -- sending -------------------------------------------------------------------------

    async def _send_loop(self) -> None:
        assert self._out is not None
        while True:
            d = await self._out.get()
            try:
                await self.deliver(d)
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("webhooks: delivery to %s crashed", redact_uri(d.url))
            finally:
                self._out.task_done()
                self._busy -= 1

    def headers(self, d: Delivery) -> dict[str, str]:
        """One attempt's headers: the webhook's own, then the event, ``webhook-id``,
        ``webhook-timestamp`` (now: a receiver judges each attempt's age) and, with a
        secret, ``webhook-signature``."""
        ts = int(time.time())
        out = {**d.headers, "Content-Type": "application/json", EVENT_HEADER: d.event}
        out |= {"webhook-id": d.delivery_id, "webhook-timestamp": str(ts)}
        if d.secret:
            out["webhook-signature"] = sign(d.secret, d.delivery_id, ts, d.body)
        return out

    async def deliver(self, d: Delivery) -> bool:
        """Try ``attempts`` times with backoff; True once the receiver answered 2xx."""
        shown = redact_uri(d.url)  # the URL may carry user:password; headers are never shown
        while d.attempts < self.attempts:
            d.attempts += 1
            try:
                status = await post(self.client(), d.url, d.body, self.headers(d), self.timeout)
                if 200 <= status < 300:
                    self._remember(self.delivered, d)
                    return True
                d.last_error = f"HTTP {status}"
                retry = status >= 500 or status in RETRY_STATUSES
            except WebhookError as exc:
                d.last_error, retry = str(exc), exc.retry
            if not retry or d.attempts >= self.attempts:
                break
            delay = min(self.max_backoff, self.backoff * 2 ** (d.attempts - 1))
            log.info(
                "webhooks: %s to %s failed (%s); retry %d in %.1fs",
                d.event,
                shown,
                d.last_error,
                d.attempts + 1,
                delay,
            )
            await asyncio.sleep(delay)
        log.warning(
            "webhooks: giving up on %s to %s after %d attempt(s): %s",
            d.event,
            shown,
            d.attempts,
            d.last_error,
        )
        self._remember(self.failed, d)
        return False

    @staticmethod
    def _remember(where: list[Delivery], d: Delivery) -> None:
        where.append(d)
        del where[:-100]
