"""Wake-ups go through the store (``Store.notify`` / ``listen`` / ``watch_wakeups``).

The operator API holds no engine: it tells the store, and engines listen to the store.
Each test gives the engine a poll interval and a heartbeat far longer than the test's
own limit, so only a wake-up can explain that the job was claimed or cancelled in time:
an API in the same process on the same store object, an API on another connection to
the same SQLite file, and another OS process. Also: writes that are not notifies
(heartbeats, worker rows) wake nobody, and how MongoDB change events are read.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Mapping
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest

from jobtui.engine.api import OperatorAPI
from jobtui.engine.config import Settings
from jobtui.engine.context import JobContext
from jobtui.engine.models import Job, JobStatus, WorkerInfo, utcnow
from jobtui.engine.registry import Registry
from jobtui.engine.store import _mongo_docs
from jobtui.engine.store import _sqlite_wakeups as wakeups
from jobtui.engine.store.base import Wake
from jobtui.engine.store.sqlite import SQLiteStore
from jobtui.engine.worker import Engine
from tests.util import run_python, wait_for

LIMIT = 10.0  # every wait here; the engine would poll after 60 s and beat after 30 s
SLOW = Settings(poll_interval=60, heartbeat_interval=30, lease_seconds=120, concurrency=2)


class CountingStore(SQLiteStore):
    """Counts claims, after each one returns: when the test sees the count move, the
    engine has gone back to waiting (it reaches its wait without yielding)."""

    claims = 0

    async def claim(self, **kwargs: Any) -> list[Job]:
        rows = await super().claim(**kwargs)
        self.claims += 1
        return rows


def registry() -> Registry:
    reg = Registry()

    @reg.handler("noop")
    async def noop(ctx: JobContext, params: Any) -> dict[str, Any]:
        return {"ok": True}

    @reg.handler("hold", max_attempts=1)
    async def hold(ctx: JobContext, params: Any) -> None:
        await asyncio.Event().wait()  # until cancelled

    return reg


@pytest.fixture
async def engine(tmp_path: Path) -> AsyncIterator[Engine]:
    store = CountingStore(tmp_path / "jobs.db")
    await store.open()
    eng = Engine(store, registry(), SLOW, run_watchdog=False)
    await eng.start()
    # The first claim (an empty queue) has returned: from here the engine waits.
    await wait_for(lambda: _true(store.claims >= 1), LIMIT, what="the first claim")
    try:
        yield eng
    finally:
        await eng.stop(grace=0)
        await store.close()


@pytest.fixture
async def other(tmp_path: Path, engine: Engine) -> AsyncIterator[SQLiteStore]:
    """A second connection to the engine's file (what another process has)."""
    store = SQLiteStore(tmp_path / "jobs.db")
    await store.open()
    try:
        yield store
    finally:
        await store.close()


async def _true(value: bool) -> bool:
    return value


async def _status(api: OperatorAPI, job_id: str, status: JobStatus) -> bool:
    job = await api.store.get_job(job_id)
    return job is not None and job.status is status


async def test_an_enqueue_in_this_process_wakes_the_engine(engine: Engine) -> None:
    api = OperatorAPI(engine.store, engine.registry)
    res = await api.enqueue("noop", [{}])
    await wait_for(lambda: _status(api, res.job_ids[0], JobStatus.COMPLETED), LIMIT)


async def test_a_cancel_in_this_process_reaches_the_running_job(engine: Engine) -> None:
    api = OperatorAPI(engine.store, engine.registry)
    res = await api.enqueue("hold", [{}])
    job_id = res.job_ids[0]
    await wait_for(lambda: _status(api, job_id, JobStatus.PROCESSING), LIMIT)
    assert await api.cancel_job(job_id) == 1
    await wait_for(lambda: _status(api, job_id, JobStatus.CANCELLED), LIMIT)


async def test_an_enqueue_on_another_connection_wakes_the_engine(
    engine: Engine, other: SQLiteStore
) -> None:
    api = OperatorAPI(other, engine.registry)
    res = await api.enqueue("noop", [{}, {}])
    for job_id in res.job_ids:
        await wait_for(lambda j=job_id: _status(api, j, JobStatus.COMPLETED), LIMIT)


async def test_a_retry_and_a_cancel_on_another_connection_reach_the_engine(
    engine: Engine, other: SQLiteStore
) -> None:
    api = OperatorAPI(other, engine.registry)
    res = await api.enqueue("hold", [{}])
    job_id = res.job_ids[0]
    await wait_for(lambda: _status(api, job_id, JobStatus.PROCESSING), LIMIT)
    assert await api.cancel_job(job_id) == 1  # the owner hears it now, not in 30 s
    await wait_for(lambda: _status(api, job_id, JobStatus.CANCELLED), LIMIT)
    assert await api.retry_job(job_id) == 1  # and claims it again now, not in 60 s
    await wait_for(lambda: _status(api, job_id, JobStatus.PROCESSING), LIMIT)


async def test_an_enqueue_in_another_process_wakes_the_engine(
    engine: Engine, tmp_path: Path
) -> None:
    script = (
        "import asyncio, sys\n"
        "from jobtui.engine.api import OperatorAPI\n"
        "from jobtui.engine.store.sqlite import SQLiteStore\n"
        "async def main():\n"
        "    store = SQLiteStore(sys.argv[1])\n"
        "    await store.open()\n"
        "    res = await OperatorAPI(store).enqueue('noop', [{}])\n"
        "    await store.close()\n"
        "    print(res.job_ids[0])\n"
        "asyncio.run(main())\n"
    )
    out = run_python(script, str(tmp_path / "jobs.db"), timeout=60)
    assert out.returncode == 0, out.stderr
    api = OperatorAPI(engine.store, engine.registry)
    await wait_for(lambda: _status(api, out.stdout.strip(), JobStatus.COMPLETED), LIMIT)


async def test_writes_that_are_not_notifies_wake_nobody(tmp_path: Path) -> None:
    """Heartbeats, worker rows and raw inserts from another connection move
    ``data_version`` but no wake-up counter; a notify moves its own channel only."""
    mine, theirs = SQLiteStore(tmp_path / "w.db"), SQLiteStore(tmp_path / "w.db")
    await mine.open()
    await theirs.open()

    async def reading(last: Any) -> Any:
        return await mine._t.read(mine._wake_state, last)

    try:
        before = await reading(None)
        assert await reading(before) is before  # nobody committed: not even a query
        for n in range(5):
            await theirs.upsert_worker(_worker(n, utcnow()))
        await theirs.insert_jobs([Job(job_type="noop")])  # not through the API
        after_writes = await reading(before)
        assert after_writes[0] != before[0]  # others committed ...
        assert wakeups.moved(before, after_writes) == []  # ... but woke nobody
        await theirs.notify(Wake.CANCEL)
        after_cancel = await reading(after_writes)
        assert wakeups.moved(after_writes, after_cancel) == ["cancel"]
        await mine.notify(Wake.CLAIM)  # our own commit: data_version hides it from us
        assert await reading(after_cancel) is after_cancel
    finally:
        await mine.close()
        await theirs.close()


def _worker(n: int, now: datetime) -> WorkerInfo:
    return WorkerInfo(
        worker_id=f"w{n}",
        host="h",
        pid=n,
        job_types=["noop"],
        concurrency=1,
        running=0,
        started_at=now,
        heartbeat_at=now,
    )


async def test_a_listener_that_raises_does_not_fail_the_operator(tmp_path: Path) -> None:
    store = SQLiteStore(tmp_path / "l.db")
    await store.open()
    heard: list[Wake] = []

    def broken(wake: Wake) -> None:
        raise RuntimeError("listener bug")

    stop_broken = store.listen(broken)
    stop_heard = store.listen(heard.append)
    try:
        res = await OperatorAPI(store).enqueue("noop", [{}])
        assert res.job_ids and heard == [Wake.CLAIM]
        stop_heard()
        await OperatorAPI(store).cancel_job(res.job_ids[0])
        assert heard == [Wake.CLAIM]  # stopped listening
    finally:
        stop_broken()
        await store.close()


@pytest.mark.parametrize(
    ("change", "wake"),
    [
        ({"operationType": "insert"}, Wake.CLAIM),
        (
            {
                "operationType": "update",
                "updateDescription": {"updatedFields": {"status": "pending"}},
            },
            Wake.CLAIM,
        ),
        (
            {
                "operationType": "update",
                "updateDescription": {"updatedFields": {"cancel_requested": True}},
            },
            Wake.CANCEL,
        ),
        # a heartbeat or a progress write: nobody wakes
        (
            {
                "operationType": "update",
                "updateDescription": {"updatedFields": {"lease.expires_at": 1}},
            },
            None,
        ),
        # nx-27017 sends the whole document: pending wakes claimers; a cancel request
        # does not (every later heartbeat of that job would carry it again)
        ({"operationType": "update", "fullDocument": {"status": "pending"}}, Wake.CLAIM),
        (
            {
                "operationType": "update",
                "fullDocument": {"status": "processing", "cancel_requested": True},
            },
            None,
        ),
    ],
)
def test_mongodb_change_events_as_wakeups(change: Mapping[str, Any], wake: Wake | None) -> None:
    assert _mongo_docs.wake_for(change) is wake
