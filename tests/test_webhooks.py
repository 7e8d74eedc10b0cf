"""Webhooks against a local HTTP server: delivery, signature, batch events, retries,
and proof that a slow or unreachable receiver never holds up or changes a job."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import logging
import socket
import threading
import time
from collections.abc import AsyncIterator, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from jobtui.engine.config import Settings
from jobtui.engine.models import Batch, Job, JobStatus
from jobtui.engine.registry import default_registry
from jobtui.engine.store.sqlite import SQLiteStore
from jobtui.engine.webhooks import Delivery, Webhooks, sign
from jobtui.engine.worker import Engine
from tests.util import wait_for

FAST = {"poll_interval": 0.05, "heartbeat_interval": 0.1, "watchdog_interval": 0.1}


class Receiver:
    """A webhook receiver on 127.0.0.1 in a thread. ``statuses`` are answered in turn
    (then 200); while ``hold`` is set, requests wait for ``release``."""

    def __init__(self) -> None:
        self.requests: list[dict[str, Any]] = []
        self.statuses: list[int] = []
        self.hold = False
        self.release = threading.Event()
        self.arrived = threading.Event()
        self.lock = threading.Lock()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"]))
                with receiver.lock:
                    receiver.requests.append(
                        {
                            "headers": dict(self.headers),
                            "body": body,
                            "json": json.loads(body),
                            "path": self.path,
                        }
                    )
                    status = receiver.statuses.pop(0) if receiver.statuses else 200
                receiver.arrived.set()
                if receiver.hold:
                    receiver.release.wait(30)
                self.send_response(status)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook"
        self.thread = threading.Thread(target=self.server.serve_forever, args=(0.05,), daemon=True)
        self.thread.start()

    def events(self, name: str) -> list[dict[str, Any]]:
        with self.lock:
            return [r["json"] for r in self.requests if r["json"]["event"] == name]

    def close(self) -> None:
        self.release.set()
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    r = Receiver()
    try:
        yield r
    finally:
        r.close()


@pytest.fixture(params=["sqlite", "mongomock"])
async def engine(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Engine]:
    from jobtui.engine.store.base import Store
    from jobtui.engine.store.mongo import MongoStore

    store: Store = (
        SQLiteStore(tmp_path / "q.db") if request.param == "sqlite" else MongoStore.in_memory()
    )
    await store.open()
    eng = Engine(
        store,
        default_registry(),
        Settings(output_dir=tmp_path / "out", webhook_secret="global-secret", **FAST),
    )
    eng.webhooks.backoff = 0.01  # retries in milliseconds, not seconds
    await eng.start()
    try:
        yield eng
    finally:
        await eng.stop(grace=5)
        await store.close()


async def _job(eng: Engine, job_type: str = "noop", **fields: Any) -> Job:
    job = Job(job_type=job_type, **fields)
    await eng.store.insert_jobs([job])
    eng.wake()
    return job


async def _status(eng: Engine, job_id: str) -> JobStatus | None:
    job = await eng.store.get_job(job_id)
    return job.status if job else None


def _ok_signature(secret: str, req: dict[str, Any]) -> bool:
    """Checked with the Standard Webhooks reference library, as a receiver would."""
    from standardwebhooks.webhooks import Webhook, WebhookVerificationError

    key: str | bytes = secret if secret.startswith("whsec_") else secret.encode()
    try:
        Webhook(key).verify(req["body"], req["headers"])
    except WebhookVerificationError:
        return False
    return True


async def test_job_webhook_is_delivered_and_signed(engine: Engine, receiver: Receiver) -> None:
    job = await _job(engine, webhook={"url": receiver.url, "secret": "s3cret"})
    await wait_for(lambda: _async(receiver.events("job.finished")), what="job.finished")
    req = receiver.requests[0]
    body = req["json"]
    assert body["job_id"] == job.job_id and body["job_type"] == "noop"
    assert body["status"] == "completed" and body["error"] is None and body["results"] == {}
    assert body["timestamp"] and "parameters" not in body
    assert req["headers"]["Content-Type"] == "application/json"
    assert req["headers"]["X-Jobtui-Event"] == "job.finished"
    assert req["headers"]["webhook-id"].startswith("msg_")
    assert abs(int(req["headers"]["webhook-timestamp"]) - time.time()) < 60
    assert req["headers"]["webhook-signature"].startswith("v1,")
    assert _ok_signature("s3cret", req)
    assert not _ok_signature("global-secret", req)  # the webhook's own secret wins


async def test_global_secret_signs_hooks_without_their_own(
    engine: Engine, receiver: Receiver
) -> None:
    job = await _job(
        engine,
        job_type="sleep",
        parameters={"seconds": "x"},  # invalid -> failed
        webhook={"url": receiver.url},
    )
    await wait_for(lambda: _async(receiver.events("job.finished")), what="job.finished")
    body = receiver.requests[0]["json"]
    assert body["job_id"] == job.job_id and body["status"] == "failed"
    assert body["error"]["code"] == "INVALID_PARAMETERS"
    assert _ok_signature("global-secret", receiver.requests[0])


async def test_batch_webhook_after_the_last_job(engine: Engine, receiver: Receiver) -> None:
    batch = Batch(name="three", total_jobs=3, webhook={"url": receiver.url})
    await engine.store.create_batch(batch)
    jobs = [Job(job_type="noop", batch_id=batch.batch_id) for _ in range(2)]
    jobs.append(Job(job_type="sleep", parameters={"seconds": 0.3}, batch_id=batch.batch_id))
    await engine.store.insert_jobs(jobs)
    engine.wake()
    await wait_for(lambda: _async(receiver.events("batch.finished")), what="batch.finished")
    await engine.webhooks.drain()
    [body] = receiver.events("batch.finished")  # exactly once from this engine
    assert body["batch_id"] == batch.batch_id and body["name"] == "three"
    assert body["counts"] == {"completed": 3} and body["total"] == 3
    assert body["status"] == "completed" and body["last_completed_at"]
    assert receiver.events("job.finished") == []  # the jobs carry no webhook of their own
    for j in jobs:  # sent only once every job was terminal
        assert await _status(engine, j.job_id) is JobStatus.COMPLETED


async def test_500_twice_then_200_takes_three_attempts(engine: Engine, receiver: Receiver) -> None:
    receiver.statuses = [500, 500]
    await _job(engine, webhook={"url": receiver.url})
    await wait_for(lambda: _async(engine.webhooks.delivered), what="delivery")
    assert len(receiver.requests) == 3
    assert engine.webhooks.delivered[-1].attempts == 3
    ids = {r["headers"]["webhook-id"] for r in receiver.requests}
    assert len(ids) == 1  # one delivery, retried: receivers can dedupe on this id


async def test_4xx_is_not_retried(receiver: Receiver, tmp_path: Path) -> None:
    receiver.statuses = [404]
    hooks = Webhooks(SQLiteStore(tmp_path / "unused.db"), backoff=0.01)
    d = Delivery(receiver.url, b"{}", "job.finished")
    assert await hooks.deliver(d) is False
    assert d.attempts == 1 and d.last_error == "HTTP 404"


async def test_hanging_receiver_does_not_delay_the_job(engine: Engine, receiver: Receiver) -> None:
    receiver.hold = True
    job = await _job(engine, webhook={"url": receiver.url})
    second = await _job(engine)
    await wait_for(lambda: _async(receiver.arrived.is_set()), what="the hook to arrive")
    # The receiver has not answered, yet both jobs are completed and the engine goes on.
    assert await _status(engine, job.job_id) is JobStatus.COMPLETED
    await wait_for(lambda: _status_is(engine, second.job_id, JobStatus.COMPLETED), what="second")
    assert engine.webhooks.pending > 0 and not engine.webhooks.delivered
    receiver.release.set()
    await wait_for(lambda: _async(engine.webhooks.delivered), what="delivery after release")


async def test_unreachable_url_leaves_the_job_completed(engine: Engine) -> None:
    with socket.socket() as s:  # a port nothing listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    engine.webhooks.attempts = 2
    job = await _job(engine, webhook={"url": f"http://127.0.0.1:{port}/x"})
    await wait_for(lambda: _async(engine.webhooks.failed), what="the delivery to give up")
    assert engine.webhooks.failed[-1].attempts == 2
    assert await _status(engine, job.job_id) is JobStatus.COMPLETED
    stored = await engine.store.get_job(job.job_id)
    assert stored is not None and stored.error is None


async def test_bad_urls_are_refused_without_retry(tmp_path: Path) -> None:
    hooks = Webhooks(SQLiteStore(tmp_path / "unused.db"), backoff=0.01)
    for url in (
        "ftp://x/y",
        "http://a b/",
        "http://x/\r\nX-Evil: 1",
        "not a url",
    ):
        d = Delivery(url, b"{}", "job.finished")
        assert await hooks.deliver(d) is False
        assert d.attempts == 1, url


def test_sign_is_standard_webhooks() -> None:
    """The signature of the Standard Webhooks spec's own test vector."""
    from jobtui.engine.webhooks import secret_key

    secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
    body = b'{"test": 2432232314}'
    assert sign(secret, "msg_p5jXN8AQM9LWM0D4loKWxJek", 1614265330, body) == (
        "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="
    )
    assert secret_key("plain") == b"plain"  # not whsec_: the UTF-8 bytes
    recomputed = hmac.new(b"plain", b"m.1.x", hashlib.sha256).digest()
    assert sign("plain", "m", 1, b"x") == "v1," + base64.b64encode(recomputed).decode()


async def _async(value: Any) -> Any:
    return value


async def _status_is(eng: Engine, job_id: str, status: JobStatus) -> bool:
    return await _status(eng, job_id) is status


async def test_watchdog_recovery_sends_the_job_webhook(engine: Engine, receiver: Receiver) -> None:
    """A job whose worker vanished on its last attempt ends LEASE_EXPIRED through the
    watchdog; the engine that recovered it sends the webhook."""
    from jobtui.engine.models import utcnow

    job = Job(job_type="ghost.type", max_attempts=1, webhook={"url": receiver.url})
    await engine.store.insert_jobs([job])
    claimed = await engine.store.claim(
        worker_id="ghost",
        slots={"ghost.type": 1},
        limit=1,
        lease_seconds=0.05,
        timeouts={},
        now=utcnow(),
    )
    assert [j.job_id for j in claimed] == [job.job_id]
    await wait_for(lambda: _async(receiver.events("job.finished")), what="job.finished")
    body = receiver.events("job.finished")[0]
    assert body["job_id"] == job.job_id and body["status"] == "failed"
    assert body["error"]["code"] == "LEASE_EXPIRED"


def test_webhook_settings_from_env_and_yaml(tmp_path: Path) -> None:
    from jobtui.engine.config import load_settings

    assert load_settings(environ={"JOBTUI_WEBHOOK_SECRET": "x"}).webhook_secret == "x"
    cfg = tmp_path / "c.yaml"
    cfg.write_text("jobtui:\n  webhook_attempts: 2\n  webhook_timeout: 1.5\n", encoding="utf-8")
    s = load_settings(cfg, environ={})
    hooks = Webhooks.from_settings(SQLiteStore(tmp_path / "unused.db"), s)
    assert (hooks.attempts, hooks.timeout, hooks.secret) == (2, 1.5, None)


async def test_webhook_headers_are_sent_never_logged_and_cannot_forge_signing(
    engine: Engine, receiver: Receiver, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    receiver.statuses = [503]  # one retry, so the retry path logs too
    host = receiver.url.removeprefix("http://")
    await _job(
        engine,
        webhook={
            "url": f"http://hookuser:hookpass@{host}",
            "secret": "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",
            "headers": {
                "Authorization": "Bearer tok-123",
                "X-Tenant": "acme",
                "webhook-id": "forged",
                "Content-Type": "text/plain",
            },
        },
    )
    await wait_for(lambda: _async(engine.webhooks.delivered), what="delivery")
    assert len(receiver.requests) == 2
    for req in receiver.requests:
        h = {k.lower(): v for k, v in req["headers"].items()}
        assert h["authorization"] == "Bearer tok-123" and h["x-tenant"] == "acme"
        assert h["webhook-id"].startswith("msg_") and h["content-type"] == "application/json"
        assert _ok_signature("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw", req)
    assert "failed (HTTP 503); retry 2" in caplog.text  # the retry was logged...
    shown = repr(engine.webhooks.delivered[-1])
    for secret in ("tok-123", "MfKQ9r8G"):
        assert secret not in shown  # nor in a Delivery's repr (a log line, a test failure)
    for secret in ("tok-123", "hookpass", "MfKQ9r8G"):  # ...without any secret
        assert secret not in caplog.text


async def test_userinfo_in_the_url_is_sent_as_basic_auth_and_hidden_in_logs(
    receiver: Receiver, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    receiver.statuses = [500, 500]
    hooks = Webhooks(SQLiteStore(tmp_path / "unused.db"), backoff=0.01, attempts=2)
    url = receiver.url.replace("http://", "http://u:p%40ss@")
    d = Delivery(url, b"{}", "job.finished")
    try:
        assert await hooks.deliver(d) is False
    finally:
        await hooks.stop()
    auth = receiver.requests[0]["headers"]["Authorization"]
    assert base64.b64decode(auth.removeprefix("Basic ")) == b"u:p@ss"
    assert "giving up on job.finished to http://u:***@" in caplog.text
    assert "p%40ss" not in caplog.text


async def test_a_malformed_whsec_secret_fails_the_delivery_once_clearly(
    receiver: Receiver, tmp_path: Path
) -> None:
    hooks = Webhooks(SQLiteStore(tmp_path / "unused.db"), backoff=0.01)
    d = Delivery(receiver.url, b"{}", "job.finished", secret="whsec_not base64!")
    try:
        assert await hooks.deliver(d) is False
    finally:
        await hooks.stop()
    assert d.attempts == 1 and "not valid base64" in d.last_error and not receiver.requests
