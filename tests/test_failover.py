"""MongoDB going away mid-run: several worker processes and an operator's view over the
nx-27017 wire server, which is stopped for 10 s and started again on the same port and
data. Workers, the operator API and a console reconnect by themselves, and every job ends exactly
once (the handler records every execution)."""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from pathlib import Path

import pytest

from jobtui.engine.api import OperatorAPI
from jobtui.engine.config import Settings
from jobtui.engine.store.factory import open_store
from jobtui.tui.app import JobtuiApp
from jobtui.tui.widgets.status import StatusLine
from tests.nxserver import free_port, nx_executable, start_nx, stop_nx
from tests.test_multiprocess import Backend, Workers
from tests.util import wait_for

pytestmark = pytest.mark.slow


@pytest.fixture
def nx_root(tmp_path: Path) -> Path:
    if nx_executable() is None:
        pytest.skip("nx-27017 is not installed")
    return tmp_path / "nx"


async def test_wire_server_down_for_10s_everything_reconnects_and_ends_once(
    nx_root: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("JOBTUI_CONFIG_DIR", str(tmp_path / "config"))
    port = free_port()
    uri, server = start_nx(nx_root, port)
    backend = Backend(
        "nx",
        Settings(mongodb_uri=uri, database="failover"),
        ["--mongodb-uri", uri, "--database", "failover"],
    )
    workers = Workers(backend, tmp_path / "executions.log")
    store = await open_store(backend.settings)
    api = OperatorAPI(store)
    try:
        n = 150
        res = await api.enqueue("block", [{"seconds": 0.05} for _ in range(n)])
        workers.start(3, concurrency=2)
        # every worker registered, and the operator's view lists them
        live = await wait_for(lambda: _live_workers(api, 3), timeout=30, what="3 live workers")
        assert len({w.info.pid for w in live}) == 3
        await wait_for(lambda: _done_at_least(api, res.batch_id, 20), timeout=60)

        # A console (watch-only, its own client) is open through the outage.
        app = JobtuiApp(api=api, engine=None, settings=Settings(), refresh_interval=0.5)
        async with app.run_test(size=(120, 40)):
            await app.refresh_now()
            assert "connected" in str(app.main.query_one(StatusLine).render())
            stop_nx(server)
            down_at = time.monotonic()
            with pytest.raises(Exception):  # noqa: B017 - any driver error: the server is gone
                await api.batch(res.batch_id)
            await app.refresh_now(timeout=30)
            assert "DISCONNECTED" in str(app.main.query_one(StatusLine).render())
            # The outage lasts 10 s (a deliberate duration, not a wait for work).
            await asyncio.sleep(max(0.0, 10 - (time.monotonic() - down_at)))
            assert all(p.poll() is None for p in workers.procs), "a worker died with the server"
            _, server = start_nx(nx_root, port)

            await wait_for(
                lambda: _done_at_least(api, res.batch_id, n),
                timeout=120,
                interval=0.5,
                what="every job finished after the restart",
            )
            await app.refresh_now(timeout=30)
            status = str(app.main.query_one(StatusLine).render())
            assert "DISCONNECTED" not in status and "connected" in status
        summary = await api.batch(res.batch_id)
        assert summary is not None and summary.counts == {"completed": n}
        executions = workers.executions()
        assert set(executions) == set(res.job_ids)
        assert Counter(executions.values()) == Counter({1: n}), "a job ran twice"
        # A claim whose reply was lost with the connection leaves a job processing under
        # a lease nobody holds; it comes back when the lease expires, so it may show a
        # second attempt, but it still ran once. (A replica set's retryable writes
        # avoid even that; the wire server has no sessions.)
        assert {j.attempts for j in await api.all_jobs()} <= {1, 2}
        await wait_for(lambda: _live_workers(api, 3), timeout=30, what="workers seen again")
    finally:
        workers.stop()
        await store.close()
        stop_nx(server)


async def _live_workers(api: OperatorAPI, n: int) -> list | None:  # type: ignore[type-arg]
    live = [w for w in await api.workers() if w.alive]
    return live if len(live) == n else None


async def _done_at_least(api: OperatorAPI, batch_id: str, n: int) -> bool:
    try:
        s = await api.batch(batch_id)
    except Exception:  # noqa: BLE001 - still reconnecting
        return False
    return s is not None and s.done >= n
