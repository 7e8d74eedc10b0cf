"""jobtui takes over the seed's MongoDB queue without losing a document (issue 11).

``SeedRepository`` writes ``event_jobs`` / ``event_batches`` the way the seed's
``SessionJobRepository`` does (``create_batch``, ``create_job`` with its model's
default ``job_type: ""``, ``update_job_status``, ``add_log_entry`` pushing into the
job's ``logs`` array, ``update_batch_progress``): two-year-old finished jobs, a job
its worker left ``processing`` hours ago, session jobs waiting, seed-style ``pdf``
jobs, and a job of a type nobody serves. Then a jobtui engine runs on that database,
with the example plug-in (``examples/session_plugin``) serving ``session``, and the
test checks every claim ``docs/migrating.md`` makes. It runs on nx-27017 (a wire
server, over a real connection) and on mongomock.
"""

from __future__ import annotations

import json
import re
import sys
import textwrap
import uuid
from collections import Counter
from collections.abc import AsyncIterator
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from jobtui.engine import retention
from jobtui.engine.api import OperatorAPI
from jobtui.engine.config import Settings, load_settings
from jobtui.engine.doctor import store_checks
from jobtui.engine.errors import ConfigError, JobFailed
from jobtui.engine.models import Batch, Job, JobStatus, Outcome, batch_counters, utcnow
from jobtui.engine.processors import pdf, pdf_seed
from jobtui.engine.registry import Registry
from jobtui.engine.store.mongo import MongoStore
from jobtui.engine.watchdog import Watchdog
from jobtui.engine.webhooks import job_payload
from jobtui.engine.worker import Engine
from tests.util import api_of, wait_for

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "examples" / "session_plugin"))

import jobtui_session_example  # noqa: E402  (the example plug-in, not installed)
from jobtui_session_example.processor import SessionProcessor  # noqa: E402

TEXT_PDF = ROOT / "examples" / "pdfs" / "text.pdf"
DAY = timedelta(days=1)
HOUR = timedelta(hours=1)

#: Fields jobtui documents and may write into a job document it did not create.
JOB_FIELDS_JOBTUI_WRITES = {
    "status", "lease", "attempts", "started_at", "processing_started_at", "worker_id",
    "updated_at", "timeout_at", "completed_at", "results", "error", "progress",
    "run_after", "cancel_requested",
}  # fmt: skip
#: ... and into a batch document (the seed's counters, recounted).
BATCH_FIELDS_JOBTUI_WRITES = {
    "total_jobs", "completed_jobs", "failed_jobs", "cancelled_jobs", "pending_jobs",
    "processing_jobs", "status", "completed_at", "updated_at", "counts_as_of",
}  # fmt: skip


class SeedRepository:
    """The seed's ``SessionJobRepository`` (src/core/mongodb/repository.py), async.

    Same collections, same document shapes, same update operators; ``clock`` lets the
    test write history (the seed used the wall clock)."""

    def __init__(self, db: Any) -> None:
        self.jobs = db["event_jobs"]
        self.batches = db["event_batches"]
        self.clock = utcnow

    async def create_batch(self, batch_data: dict[str, Any]) -> str:
        now = self.clock()
        batch_id = f"batch-{uuid.uuid4()}"
        total = int(batch_data.get("total_jobs", 0))
        await self.batches.insert_one(
            {
                "batch_id": batch_id,
                "status": "pending",
                "user_id": batch_data.get("user_id"),
                "batch_name": batch_data.get("batch_name"),
                "total_jobs": total,
                "completed_jobs": 0,
                "failed_jobs": 0,
                "pending_jobs": total,
                "processing_jobs": 0,
                "created_at": now,
                "updated_at": now,
                "completed_at": None,
            }
        )
        return batch_id

    async def create_job(self, job_data: dict[str, Any]) -> str:
        now = self.clock()
        job_id = f"job-{uuid.uuid4()}"
        doc = {
            "job_id": job_id,
            "job_type": job_data.get("job_type", ""),  # the seed's Job model default
            "status": "pending",
            "parameters": job_data.get("parameters", {}),
            "results": None,
            "error": None,
            "progress": None,
            "batch_id": job_data.get("batch_id"),
            "user_id": job_data.get("user_id"),
            "webhook": job_data.get("webhook"),
            "created_at": now,
            "updated_at": now,
            "started_at": None,
            "processing_started_at": None,
            "completed_at": None,
            "logs": [],
        }
        if job_data.get("before_job_type"):  # written by the seed before job_type existed
            del doc["job_type"]
        await self.jobs.insert_one(doc)
        return job_id

    async def update_job_status(
        self,
        job_id: str,
        status: str,
        progress: dict[str, Any] | None = None,
        results: dict[str, Any] | None = None,
        error: dict[str, Any] | None = None,
    ) -> None:
        now = self.clock()
        update: dict[str, Any] = {"status": status, "updated_at": now}
        if status == "processing":
            update["started_at"] = now
            update["processing_started_at"] = now
        if status in ("completed", "failed"):
            update["completed_at"] = now
        if progress is not None:
            update["progress"] = progress
        if results is not None:
            update["results"] = results
        if error is not None:
            update["error"] = error
        await self.jobs.update_one({"job_id": job_id}, {"$set": update})

    async def add_log_entry(self, job_id: str, level: str, message: str) -> None:
        entry = {"timestamp": self.clock(), "level": level, "message": message}
        await self.jobs.update_one({"job_id": job_id}, {"$push": {"logs": entry}})

    async def update_batch_progress(self, batch_id: str) -> None:
        counts = Counter([d["status"] async for d in self.jobs.find({"batch_id": batch_id})])
        total = sum(counts.values())
        done = counts["completed"] + counts["failed"]
        update: dict[str, Any] = {
            "total_jobs": total,
            "completed_jobs": counts["completed"],
            "failed_jobs": counts["failed"],
            "pending_jobs": counts["pending"],
            "processing_jobs": counts["processing"],
            "updated_at": self.clock(),
        }
        if total and done == total:
            update["status"] = "failed" if counts["failed"] else "completed"
            update["completed_at"] = self.clock()
        elif done or counts["processing"]:
            update["status"] = "processing"
        await self.batches.update_one({"batch_id": batch_id}, {"$set": update})


async def fill_like_the_seed(repo: SeedRepository, now: datetime) -> dict[str, Any]:
    """A database as the seed's running system leaves it."""
    ids: dict[str, Any] = {}
    # Two years ago: a finished batch (one completed, one failed) and a lone old job.
    repo.clock = lambda: now - 730 * DAY
    old_batch = await repo.create_batch({"total_jobs": 2, "batch_name": "2024 conference"})
    done = await repo.create_job({"batch_id": old_batch, "parameters": _session("s-old-1")})
    failed = await repo.create_job({"batch_id": old_batch, "parameters": _session("s-old-2")})
    lone = await repo.create_job({"parameters": _session("s-old-3"), "before_job_type": True})
    for job_id in (done, failed, lone):
        await repo.update_job_status(job_id, "processing")
        await repo.add_log_entry(job_id, "info", "Session-Verarbeitung gestartet")
    await repo.update_job_status(done, "completed", results={"markdown_file": "old.md"})
    await repo.update_job_status(lone, "completed", results={"markdown_file": "lone.md"})
    await repo.update_job_status(
        failed, "failed", error={"code": "PROCESSING_ERROR", "message": "video not found"}
    )
    await repo.update_batch_progress(old_batch)
    ids["old_jobs"] = [done, failed, lone]
    ids["old_batch"] = old_batch

    # Three hours ago: today's batch. The old worker took one job and died with it.
    repo.clock = lambda: now - 3 * HOUR
    batch = await repo.create_batch({"total_jobs": 6, "batch_name": "today"})
    sessions = [
        await repo.create_job({"batch_id": batch, "parameters": _session(f"s-{i}")})
        for i in range(3)
    ]
    sessions.append(  # an older seed version wrote no job_type at all
        await repo.create_job(
            {"batch_id": batch, "parameters": _session("s-3"), "before_job_type": True}
        )
    )
    ids["broken"] = await repo.create_job({"batch_id": batch, "parameters": _session("s-broken")})
    stale = await repo.create_job({"batch_id": batch, "parameters": _session("s-stale")})
    await repo.update_job_status(stale, "processing", progress={"percent": 40.0})
    await repo.add_log_entry(stale, "info", "Session-Verarbeitung gestartet")
    await repo.update_batch_progress(batch)
    ids.update(batch=batch, sessions=sessions, stale=stale)

    # The seed's plan for PDFs, and a type no worker here serves.
    repo.clock = lambda: now - HOUR
    pdf_batch = await repo.create_batch({"total_jobs": 2, "batch_name": "pdfs"})
    ids["pdf"] = await repo.create_job(
        {
            "batch_id": pdf_batch,
            "job_type": "pdf",
            "parameters": {
                "extra": {
                    "file_path": str(TEXT_PDF),
                    "extraction_method": "native",
                    "include_images": False,
                }
            },
        }
    )
    ids["pdf_llm"] = await repo.create_job(
        {
            "batch_id": pdf_batch,
            "job_type": "pdf",
            "parameters": {
                "extra": {"file_path": str(TEXT_PDF), "template": "Session", "context": {}}
            },
        }
    )
    ids["pdf_batch"] = pdf_batch
    ids["audio"] = await repo.create_job({"job_type": "audio", "parameters": {"file": "a.mp3"}})
    return ids


def _session(name: str) -> dict[str, Any]:
    return {
        "event": "FOSDEM 2025",
        "session": name,
        "url": f"https://fosdem.org/{name}",
        "filename": f"{name}.md",
        "track": "Main",
        "source_language": "en",
        "target_language": "de",
    }


@pytest.fixture(params=["mongomock", "nx"])
async def seed_store(request: pytest.FixtureRequest) -> AsyncIterator[MongoStore]:
    """A MongoStore on the seed's collections, on each test backend."""
    names = {"jobs": "event_jobs", "batches": "event_batches"}
    database = f"seed_{uuid.uuid4().hex[:10]}"
    if request.param == "mongomock":
        from mongomock_motor import AsyncMongoMockClient

        store = MongoStore(
            "mongomock://memory", database=database, client=AsyncMongoMockClient(), **names
        )
    else:
        store = MongoStore(request.getfixturevalue("nx_uri"), database=database, **names)
    await store.open()
    try:
        yield store
    finally:
        if store.kind != "mongomock":
            await store._client.drop_database(database)
        await store.close()


def registry_with_plugins() -> Registry:
    reg = Registry()
    pdf.register(reg)  # also registers the seed's "pdf" alias
    jobtui_session_example.register(reg)
    return reg


async def raw(collection: Any, key: str) -> dict[str, dict[str, Any]]:
    return {d[key]: d async for d in collection.find({})}


def recount(jobs: dict[str, dict[str, Any]], batch_id: str) -> dict[str, int]:
    return dict(Counter(d["status"] for d in jobs.values() if d.get("batch_id") == batch_id))


async def test_a_worker_takes_over_the_seed_database(
    seed_store: MongoStore, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = seed_store
    monkeypatch.setattr(SessionProcessor, "step_seconds", 0.0)
    real = SessionProcessor.process_session

    def process_session(self: SessionProcessor, **kw: Any) -> dict[str, Any]:
        if kw["session"] == "s-broken":
            raise ValueError("no video for s-broken")
        return real(self, **kw)

    monkeypatch.setattr(SessionProcessor, "process_session", process_session)
    repo = SeedRepository(store._client[store.database_name])
    ids = await fill_like_the_seed(repo, utcnow())
    jobs_before = await raw(repo.jobs, "job_id")
    batches_before = await raw(repo.batches, "batch_id")

    settings = settings_from_the_guide(tmp_path).model_copy(
        update={
            "output_dir": tmp_path / "out",
            "poll_interval": 0.1,
            "watchdog_interval": 0.1,
            "cpu_workers": 1,
            "database": store.database_name,  # the test's own, fresh database
        }
    )
    assert settings.stall_timeout == 3600 and settings.legacy_job_type == "session"
    registry = registry_with_plugins()
    engine = Engine(store, registry, settings)
    api = OperatorAPI(store, registry)
    await engine.start()
    try:
        assert engine.retention is not None
        assert await engine.retention.sweep() == retention.PurgeResult()  # MongoDB: keeps all
        served = [*ids["sessions"], ids["broken"], ids["stale"], ids["pdf"], ids["pdf_llm"]]

        async def all_served_ended() -> bool:
            ended = [await store.get_job(j) for j in served]
            return all(j is not None and j.status.terminal for j in ended)

        await wait_for(all_served_ended, timeout=60, what="the seed's jobs to end")
        # Visibly waiting: the one type no live worker serves, with its count.
        assert await api.unserved_types() == {"audio": 1}
        checks = {c.name: c for c in await store_checks(store, settings, registry)}
        assert "audio (1 pending)" in checks["unserved"].detail
        assert checks["retention"].detail.startswith("deletes no jobs")
        assert f"database {store.database_name}" in checks["store"].detail
        assert "collections event_jobs, event_batches" in checks["store"].detail
    finally:
        await engine.stop()

    jobs_after = await raw(repo.jobs, "job_id")
    batches_after = await raw(repo.batches, "batch_id")
    # Not one document is gone, and none was added to the seed's collections.
    assert set(jobs_after) == set(jobs_before)
    assert set(batches_after) == set(batches_before)
    # The two-year-old history is byte for byte what the seed wrote.
    for job_id in ids["old_jobs"]:
        assert jobs_after[job_id] == jobs_before[job_id]
    assert batches_after[ids["old_batch"]] == batches_before[ids["old_batch"]]
    # Jobs jobtui ran: only fields it documents changed; the seed's own are intact.
    for job_id, before in jobs_before.items():
        after = jobs_after[job_id]
        changed = {k for k in set(before) | set(after) if before.get(k) != after.get(k)}
        assert changed <= JOB_FIELDS_JOBTUI_WRITES, (job_id, changed)
        assert after.get("job_type", "<missing>") == before.get("job_type", "<missing>")
        assert after["logs"][: len(before["logs"])] == before["logs"]

    # Every pending job ran (job_type "" and missing alike), or waits visibly (audio).
    for job_id in ids["sessions"]:
        job = await store.get_job(job_id)
        assert job and job.status == JobStatus.COMPLETED and job.job_type == "session"
        assert job.results and job.results["markdown_file"].endswith(".md")
        assert jobs_after[job_id]["processing_started_at"] is not None
    audio = await store.get_job(ids["audio"])
    assert audio and audio.status == JobStatus.PENDING
    # A failed job keeps its traceback, as the seed did; webhooks never carry it.
    broken = await store.get_job(ids["broken"])
    assert broken and broken.status == JobStatus.FAILED and broken.error
    assert broken.attempts == 2  # the type's max_attempts, though the document names none
    assert (
        broken.error.details
        and "ValueError: no video for s-broken" in (broken.error.details["traceback"])
    )
    payload = job_payload(broken, Outcome(status=JobStatus.FAILED, error=broken.error))
    assert payload["error"] == {"code": "HANDLER_ERROR", "message": broken.error.message}
    assert "traceback" not in json.dumps(payload)
    # jobtui's own collections beside the seed's.
    names = await store._client[store.database_name].list_collection_names()
    assert {"event_jobs", "event_batches", "job_logs", "workers"} <= set(names)

    # The stale job was adopted (the old worker's run counted), retried and completed.
    stale = await store.get_job(ids["stale"])
    assert stale and stale.status == JobStatus.COMPLETED and stale.attempts == 2
    lines = [e.message for e in await api.tail_logs(ids["stale"])]
    assert lines[0] == "Session-Verarbeitung gestartet"  # the seed's embedded log, in order
    assert any(m.startswith("watchdog: stalled: processing for 3h") for m in lines), lines

    # The seed's pdf documents: one transcribed, one refused, naming the parameter.
    pdf_job = await store.get_job(ids["pdf"])
    assert pdf_job and pdf_job.status == JobStatus.COMPLETED, pdf_job and pdf_job.error
    assert pdf_job.results and pdf_job.results.get("pages")
    llm = await store.get_job(ids["pdf_llm"])
    assert llm and llm.status == JobStatus.FAILED and llm.error
    assert llm.error.code == "UNSUPPORTED_PARAMETER" and "template" in llm.error.message

    # event_batches tells the seed's dashboard the truth: counters equal a recount.
    for batch_id in (ids["old_batch"], ids["batch"], ids["pdf_batch"]):
        counts = recount(jobs_after, batch_id)
        stored = batches_after[batch_id]
        expected = batch_counters(counts, None)
        for name in ("total_jobs", "completed_jobs", "failed_jobs", "pending_jobs"):
            assert stored[name] == expected[name], (batch_id, name, stored, counts)
        assert stored["processing_jobs"] == expected["processing_jobs"]
        assert stored["status"] == expected["status"]
        assert stored["completed_at"] is not None
    for batch_id in (ids["batch"], ids["pdf_batch"]):
        changed = {
            k
            for k in set(batches_before[batch_id]) | set(batches_after[batch_id])
            if batches_before[batch_id].get(k) != batches_after[batch_id].get(k)
        }
        assert changed <= BATCH_FIELDS_JOBTUI_WRITES, changed
    assert batches_after[ids["batch"]]["status"] == "failed"  # s-broken failed
    assert batches_after[ids["pdf_batch"]]["status"] == "failed"


async def test_a_stalled_legacy_job_out_of_attempts_fails_with_timeout(
    seed_store: MongoStore,
) -> None:
    """The type's max_attempts applies to a legacy document, which names none."""
    repo = SeedRepository(seed_store._client[seed_store.database_name])
    repo.clock = lambda: utcnow() - 2 * HOUR
    batch = await repo.create_batch({"total_jobs": 1})
    job_id = await repo.create_job({"batch_id": batch, "parameters": _session("s")})
    await repo.update_job_status(job_id, "processing")
    registry = Registry()
    jobtui_session_example.register(registry)
    registry.override("session", max_attempts=1)
    watchdog = Watchdog(seed_store, registry, stall_timeout=3600)
    assert await watchdog.sweep() == 1
    assert await watchdog.sweep() == 0  # adopted once
    job = await seed_store.get_job(job_id)
    assert job and job.status == JobStatus.FAILED and job.error
    assert job.error.code == "TIMEOUT" and "attempt 1 of 1" in job.error.message
    stored = await repo.batches.find_one({"batch_id": batch})
    assert (stored["status"], stored["failed_jobs"], stored["processing_jobs"]) == ("failed", 1, 0)


async def test_retry_and_cancel_of_a_job_the_old_worker_left_processing(
    seed_store: MongoStore,
) -> None:
    repo = SeedRepository(seed_store._client[seed_store.database_name])
    batch = await repo.create_batch({"total_jobs": 2})
    a = await repo.create_job({"batch_id": batch, "parameters": _session("a")})
    b = await repo.create_job({"batch_id": batch, "parameters": _session("b")})
    for job_id in (a, b):
        await repo.update_job_status(job_id, "processing")  # minutes ago: not stalled yet
    await repo.update_batch_progress(batch)
    api = OperatorAPI(seed_store, registry_with_plugins())
    assert await api.retry_job(a) == 1
    assert await api.cancel_job(b) == 1
    ja, jb = await seed_store.get_job(a), await seed_store.get_job(b)
    assert ja and ja.status == JobStatus.PENDING and ja.attempts == 0
    assert jb and jb.status == JobStatus.CANCELLED
    # The dashboard's counters followed at once; a cancelled job counts as failed.
    stored = await repo.batches.find_one({"batch_id": batch})
    assert stored is not None
    counters = {k: stored[k] for k in ("pending_jobs", "processing_jobs", "failed_jobs")}
    assert counters == {"pending_jobs": 1, "processing_jobs": 0, "failed_jobs": 1}
    assert (stored["cancelled_jobs"], stored["status"]) == (1, "processing")


async def test_worker_types_that_nothing_registers_refuse_to_start(
    seed_store: MongoStore,
) -> None:
    with pytest.raises(ConfigError) as exc:
        Engine(seed_store, registry_with_plugins(), Settings(types=["audio", "pdf.*"]))
    assert exc.value.code == "UNKNOWN_JOB_TYPE"
    assert "--types audio;" in exc.value.message and "pdf.transcribe" in exc.value.message


def test_example_plugin_registers_through_its_entry_point() -> None:
    import tomllib

    project = tomllib.loads((ROOT / "examples/session_plugin/pyproject.toml").read_text())
    target = project["project"]["entry-points"]["jobtui.handlers"]["session"]
    module, _, attr = target.partition(":")
    assert getattr(sys.modules[module], attr) is jobtui_session_example.register
    reg = Registry()
    jobtui_session_example.register(reg)
    assert reg.names() == ["session"]


def test_worker_types_refusal_exits_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from jobtui.tui.cli import main

    assert main(["--store", str(tmp_path / "q.db"), "--types", "audio", "worker"]) == 2
    assert capsys.readouterr().err.startswith("jobtui: UNKNOWN_JOB_TYPE: ")


def guide_yaml() -> str:
    text = (ROOT / "docs" / "migrating.md").read_text(encoding="utf-8")
    (block,) = re.findall(r"```yaml\n(.*?)```", text, flags=re.DOTALL)
    return textwrap.dedent(block)


def settings_from_the_guide(tmp_path: Path, environ: dict[str, str] | None = None) -> Settings:
    config = tmp_path / "config.yaml"
    config.write_text(guide_yaml(), encoding="utf-8")
    env = {"MONGODB_URI": "mongodb://db.example:27017"} if environ is None else environ
    return load_settings(config, environ=env)


def test_the_guides_config(tmp_path: Path) -> None:
    s = settings_from_the_guide(tmp_path)
    assert s.claim is True  # jobtui: beats session_worker.active: false
    assert (s.collections.jobs, s.collections.batches) == ("event_jobs", "event_batches")
    assert (s.concurrency, s.poll_interval, s.database) == (3, 5, "events")
    with pytest.raises(ConfigError) as exc:
        settings_from_the_guide(tmp_path, environ={})
    assert exc.value.code == "CONFIG_INVALID" and "MONGODB_URI" in exc.value.message


def test_the_guides_example_plugin_code_is_the_real_one() -> None:
    text = (ROOT / "docs" / "migrating.md").read_text(encoding="utf-8")
    python, toml = (
        re.findall(r"```python\n(.*?)```", text, flags=re.DOTALL),
        re.findall(r"```toml\n(.*?)```", text, flags=re.DOTALL),
    )
    plugin = ROOT / "examples" / "session_plugin"
    assert python and python[0] in (plugin / "jobtui_session_example/__init__.py").read_text()
    assert toml and toml[0] in (plugin / "pyproject.toml").read_text()


@pytest.mark.parametrize(
    ("extra", "params", "images"),
    [
        (
            {"file_path": "/a.pdf", "extraction_method": "native"},
            {"path": "/a.pdf", "ocr": False},
            False,
        ),
        (
            {"file_path": "/a.pdf", "extraction_method": "ocr"},
            {"path": "/a.pdf", "force_ocr": True},
            False,
        ),
        ({"file_path": "/a.pdf", "extraction_method": "both"}, {"path": "/a.pdf"}, False),
        ({"file_path": "/a.pdf", "include_images": True}, {"path": "/a.pdf"}, True),
    ],
)
def test_the_guides_pdf_mapping(
    extra: dict[str, Any], params: dict[str, Any], images: bool
) -> None:
    assert pdf_seed.mapped(pdf_seed.SeedPdfParams(extra=extra).options()) == (params, images)


@pytest.mark.parametrize(
    ("extra", "named"),
    [
        ({"file_path": "/a.pdf", "template": "Session"}, "template"),
        ({"file_path": "/a.pdf", "context": {"lang": "de"}}, "context"),
        ({"file_path": "/a.pdf", "extraction_method": "llm_and_native"}, "extraction_method"),
    ],
)
def test_the_guides_pdf_refusals(extra: dict[str, Any], named: str) -> None:
    with pytest.raises(JobFailed) as exc:
        pdf_seed.mapped(pdf_seed.SeedPdfParams(extra=extra).options())
    assert exc.value.code == "UNSUPPORTED_PARAMETER" and exc.value.details == {"parameter": named}
    assert named in exc.value.message


async def test_batch_finished_fires_when_the_last_job_is_cancelled_while_pending(
    seed_store: MongoStore, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The last job of a batch is cancelled by another process (``jobtui cancel``)
    while it waits: the worker still sends ``batch.finished``, once."""
    from tests.test_webhooks import Receiver

    monkeypatch.setattr(SessionProcessor, "step_seconds", 0.0)
    receiver = Receiver()
    settings = Settings(output_dir=tmp_path, poll_interval=0.05, watchdog_interval=0.1)
    engine = Engine(seed_store, registry_with_plugins(), settings)
    batch = Batch(name="mixed", webhook={"url": receiver.url})
    ran = Job(job_type="session", parameters=_session("s"), batch_id=batch.batch_id)
    waits = Job(job_type="audio", batch_id=batch.batch_id)  # no worker serves it
    await seed_store.insert_jobs([ran, waits])
    await seed_store.create_batch(batch)
    await engine.start()
    try:
        await wait_for(lambda: _has_status(seed_store, ran.job_id, JobStatus.COMPLETED))
        assert receiver.events("batch.finished") == []  # one job still waits
        assert await OperatorAPI(seed_store).cancel_job(waits.job_id) == 1  # another process
        await wait_for(lambda: _async(receiver.events("batch.finished")), what="batch.finished")
        await engine.webhooks.drain()
        [body] = receiver.events("batch.finished")
        assert body["batch_id"] == batch.batch_id
        assert body["counts"] == {"completed": 1, "cancelled": 1}
    finally:
        await engine.stop()
        receiver.close()
    assert len(receiver.events("batch.finished")) == 1


async def test_watch_only_and_paused_engines_do_not_serve(
    seed_store: MongoStore, tmp_path: Path
) -> None:
    """A console that only watches (``claim: false``) registers as a worker, but a
    pending session job still shows as waiting for a worker that serves it."""
    repo = SeedRepository(seed_store._client[seed_store.database_name])
    await repo.create_job({"parameters": _session("s")})
    watcher = Engine(seed_store, registry_with_plugins(), Settings(claim=False))
    await watcher.start()
    try:
        api = OperatorAPI(seed_store)
        assert await api.unserved_types() == {"session": 1}
        watcher.pause()
        assert (await seed_store.list_workers())[0].serves_queue is False
    finally:
        await watcher.stop()


async def _has_status(store: MongoStore, job_id: str, status: JobStatus) -> bool:
    job = await store.get_job(job_id)
    return job is not None and job.status == status


async def _async(value: Any) -> Any:
    return value


async def test_engine_keeps_batch_counters_on_the_embedded_store(tmp_path: Path) -> None:
    """The same counters on SQLite: written by the engine as its jobs end."""
    from jobtui.engine.builtin import register as builtin
    from jobtui.engine.store.sqlite import SQLiteStore

    store = SQLiteStore(tmp_path / "q.db")
    await store.open()
    registry = Registry()
    builtin(registry)
    engine = Engine(store, registry, Settings(poll_interval=0.05, output_dir=tmp_path))
    try:
        result = await api_of(engine).enqueue("noop", [{}] * 20)
        assert result.batch_id is not None
        bad = Job(job_type="sleep", parameters={"seconds": "x"}, batch_id=result.batch_id)
        await store.insert_jobs([bad])
        await engine.start()
        await engine.wait_batch(result.batch_id)
        await engine.stop()
        summary = await store.get_batch(result.batch_id)
        assert summary is not None and summary.counts == {"completed": 20, "failed": 1}
        stored = summary.batch.model_extra or {}
        assert summary.batch.total_jobs == 21
        assert (stored["completed_jobs"], stored["failed_jobs"]) == (20, 1)
        assert (stored["pending_jobs"], stored["processing_jobs"]) == (0, 0)
        assert stored["status"] == "failed" and stored["completed_at"] is not None
    finally:
        await store.close()
