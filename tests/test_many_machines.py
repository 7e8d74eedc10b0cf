"""Many machines on one MongoDB: three worker processes and one console, all on the
nx-27017 wire server. The console (another client, watch-only) lists every worker and
the jobs each is running."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from jobtui.engine.api import OperatorAPI
from jobtui.engine.config import Settings
from jobtui.engine.models import JobFilter, JobStatus
from jobtui.engine.registry import default_registry
from jobtui.engine.store.base import Store
from jobtui.engine.store.factory import open_store
from jobtui.tui.app import JobtuiApp
from jobtui.tui.screens.workers import WorkersScreen
from jobtui.tui.widgets.tables import KeyedTable
from tests.test_multiprocess import Backend, Workers
from tests.util import wait_for

pytestmark = pytest.mark.slow


@pytest.fixture
def backend(nx_uri: str) -> Backend:
    return Backend(
        "nx",
        Settings(mongodb_uri=nx_uri, database="fleet"),
        ["--mongodb-uri", nx_uri, "--database", "fleet"],
    )


@pytest.fixture
async def store(backend: Backend) -> AsyncIterator[Store]:
    s = await open_store(backend.settings)
    yield s
    await s._client.drop_database("fleet")  # type: ignore[attr-defined]
    await s.close()


@pytest.fixture
def workers(backend: Backend, tmp_path: Path) -> Iterator[Workers]:
    w = Workers(backend, tmp_path / "executions.log")
    yield w
    w.stop()


async def test_console_lists_every_worker_and_their_jobs(
    store: Store, workers: Workers, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("JOBTUI_CONFIG_DIR", str(tmp_path / "config"))
    api = OperatorAPI(store, default_registry())
    res = await api.enqueue("block", [{"seconds": 120} for _ in range(6)], batch_name="fleet")
    procs = workers.start(3, concurrency=2)
    await wait_for(lambda: _processing(api, 6), timeout=60, what="6 jobs running on 3 workers")
    await wait_for(lambda: _running_reported(api, 3), timeout=30, what="workers' running counts")

    app = JobtuiApp(api=api, engine=None, settings=Settings(), refresh_interval=0.5)
    async with app.run_test(size=(120, 40)) as pilot:
        await app.refresh_now()
        await pilot.press("w")
        assert isinstance(app.screen, WorkersScreen)
        table = app.screen.query_one(KeyedTable)
        await wait_for(lambda: _async(table.row_count == 3), what="three workers listed")
        rows = [[str(c) for c in table.get_row_at(i)] for i in range(table.row_count)]
        assert sorted(int(r[1]) for r in rows) == sorted(p.pid for p in procs)
        assert all(r[4] == "2" and r[-1] == "alive" and "block" in r[3] for r in rows), rows
        await pilot.press("escape")
        # The jobs table shows the six running jobs, each on one of those workers.
        jobs = (await api.list_jobs(JobFilter(batch_id=res.batch_id))).jobs
        owners = {j.worker_id.split(":")[1] for j in jobs if j.worker_id}
        assert owners == {str(p.pid) for p in procs}
        main = app.screen_stack[0]
        jobs_table = main.query_one("#jobs", KeyedTable)
        await wait_for(lambda: _async(jobs_table.row_count == 6), what="six job rows")
        statuses = [str(jobs_table.get_row_at(i)[0]) for i in range(6)]
        assert all("processing" in s for s in statuses), statuses


async def _async(value: object) -> object:
    return value


async def _processing(api: OperatorAPI, n: int) -> bool:
    return (await api.count_jobs()).get(JobStatus.PROCESSING.value, 0) == n


async def _running_reported(api: OperatorAPI, n: int) -> bool:
    live = [w for w in await api.workers() if w.alive and w.info.running == 2]
    return len(live) == n
