"""The fault suite: each fault injected for real into real processes, counting how many
jobs were lost and how many ran twice (issue 12; the table in docs/operations.md).

Workers are the real ``jobtui`` command (``python -m jobtui.tui.cli``) serving the
``fault.*`` types of ``tests/fault_plugin.py``, loaded through the ``jobtui.handlers``
entry point of a dist-info written here. Each execution is appended to a record file:
"lost" is a job that never completed, "run twice" a job that completed more than once.
"""

from __future__ import annotations

import asyncio
import os
import shlex
import shutil
import signal
import subprocess
import sys
import time
from collections import Counter
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from jobtui.engine.api import OperatorAPI
from jobtui.engine.config import Settings
from jobtui.engine.models import JobStatus
from jobtui.engine.store.base import Store
from jobtui.engine.store.factory import open_store
from tests.nxserver import free_port, nx_executable, start_nx, stop_nx
from tests.util import api_of, wait_for

ROOT = Path(__file__).resolve().parents[1]


@dataclass
class Rig:
    """A store file, a record file and the environment that loads the fault plug-in."""

    tmp: Path
    store_path: Path
    record: Path
    env: dict[str, str]
    hold_file: Path
    procs: list[subprocess.Popen[bytes]] = field(default_factory=list)

    def jobtui(self, *args: str, store: bool = True) -> subprocess.Popen[bytes]:
        cmd = [sys.executable, "-m", "jobtui.tui.cli", *args]
        if store:
            cmd += ["--store", str(self.store_path)]
        # The child writes its own copy of the file; ours is closed once it started.
        with open(self.tmp / f"stderr.{len(self.procs)}", "wb") as err:
            p = subprocess.Popen(
                cmd, cwd=self.tmp, env=self.env, stdout=subprocess.PIPE, stderr=err
            )
        self.procs.append(p)
        return p

    def hold(self) -> None:
        """``fault.work`` jobs wait until ``release``."""
        self.hold_file.touch()

    def release(self) -> None:
        self.hold_file.unlink(missing_ok=True)

    def stderr(self, p: subprocess.Popen[bytes]) -> str:
        return (self.tmp / f"stderr.{self.procs.index(p)}").read_text(errors="replace")

    def lines(self) -> list[list[str]]:
        if not self.record.exists():
            return []
        return [line.split() for line in self.record.read_text().splitlines()]

    def starts(self) -> Counter[str]:
        return Counter(parts[1] for parts in self.lines() if parts[0] == "start")

    def completions(self) -> Counter[str]:
        return Counter(parts[1] for parts in self.lines() if parts[0] == "done")

    def tally(self, job_ids: list[str]) -> tuple[int, int]:
        """(jobs lost, jobs run twice) among ``job_ids``."""
        done = self.completions()
        return sum(1 for j in job_ids if done[j] == 0), sum(1 for j in job_ids if done[j] > 1)


def write_plugin(where: Path) -> None:
    """A dist-info whose entry point registers tests/fault_plugin.py's types."""
    info = where / "jobtui_faulttest-0.dist-info"
    info.mkdir(parents=True)
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: jobtui-faulttest\nVersion: 0\n")
    (info / "entry_points.txt").write_text(
        "[jobtui.handlers]\nfaulttest = tests.fault_plugin:register\n"
    )


@pytest.fixture
def rig(tmp_path: Path) -> AsyncIterator[Rig]:
    write_plugin(tmp_path / "plugin")
    config = tmp_path / "jobtui.yaml"
    config.write_text(
        "jobtui:\n  shutdown_grace: 0.5\n  heartbeat_interval: 0.5\n  watchdog_interval: 0.5\n"
    )
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(ROOT), str(tmp_path / "plugin")]),
        "FAULT_RECORD": str(tmp_path / "record"),
        "JOBTUI_CONFIG": str(config),
        "FAULT_HOLD": str(tmp_path / "hold"),
    }
    r = Rig(tmp_path, tmp_path / "store" / "jobtui.db", tmp_path / "record", env, tmp_path / "hold")
    r.hold()
    yield r  # type: ignore[misc]
    for p in r.procs:
        if p.poll() is None:
            p.kill()
            p.wait()
        for pipe in (p.stdin, p.stdout):
            if pipe is not None:
                pipe.close()


@pytest.fixture
async def api(rig: Rig) -> AsyncIterator[OperatorAPI]:
    store: Store = await open_store(Settings(store=rig.store_path))
    yield OperatorAPI(store)
    await store.close()


async def exited(p: subprocess.Popen[bytes]) -> int | None:
    return p.poll() is not None or None  # type: ignore[return-value]


async def statuses(api: OperatorAPI, batch_id: str) -> Counter[str]:
    return Counter(j.status.value for j in await api.all_jobs() if j.batch_id == batch_id)


async def drain(rig: Rig, api: OperatorAPI, batch_id: str, n: int) -> None:
    """A fresh worker finishes whatever is left of the batch."""
    worker = rig.jobtui("worker", "--concurrency", "4", "--poll-interval", "0.2")

    async def all_done() -> bool:
        return (await statuses(api, batch_id))["completed"] == n

    await wait_for(all_done, timeout=60, interval=0.1, what="the batch completed")
    worker.send_signal(signal.SIGTERM)
    await wait_for(lambda: exited(worker), timeout=30, what="the worker exited")


# -- 3: SIGTERM / SIGHUP hand jobs back like SIGINT --------------------------------


@pytest.mark.slow
@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGHUP, signal.SIGINT])
async def test_worker_signal_hands_running_jobs_back(
    rig: Rig, api: OperatorAPI, sig: signal.Signals
) -> None:
    n = 6
    res = await api.enqueue("fault.work", [{} for _ in range(n)])
    worker = rig.jobtui("worker", "--concurrency", "3", "--poll-interval", "0.2")

    async def three_started() -> bool:
        return len(rig.starts()) == 3

    await wait_for(three_started, timeout=30, what="three jobs running")
    worker.send_signal(sig)
    await wait_for(lambda: exited(worker), timeout=30, what="the worker exited")
    assert worker.returncode == 0, rig.stderr(worker)
    assert sig.name in rig.stderr(worker)
    jobs = [j for j in await api.all_jobs() if j.batch_id == res.batch_id]
    # Handed back at once: pending, the attempt refunded, no lease left to expire.
    assert {(j.status, j.attempts) for j in jobs} == {(JobStatus.PENDING, 0)}
    rig.release()
    await drain(rig, api, res.batch_id, n)
    assert rig.tally(res.job_ids) == (0, 0)


@pytest.mark.slow
@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGHUP])
async def test_run_signal_hands_running_jobs_back(
    rig: Rig, api: OperatorAPI, sig: signal.Signals
) -> None:
    folder = rig.tmp / "in"
    folder.mkdir()
    for i in range(5):
        (folder / f"f{i}.txt").write_text(f"file {i}")
    run = rig.jobtui("run", str(folder), "--type", "fault.work", "--concurrency", "2")

    async def two_started() -> bool:
        return len(rig.starts()) == 2

    await wait_for(two_started, timeout=30, what="two jobs running")
    run.send_signal(sig)
    await wait_for(lambda: exited(run), timeout=30, what="jobtui run exited")
    assert run.returncode == 128 + sig, rig.stderr(run)
    assert "Traceback" not in rig.stderr(run)
    jobs = await api.all_jobs()
    assert len(jobs) == 5
    assert {(j.status, j.attempts) for j in jobs} == {(JobStatus.PENDING, 0)}
    rig.release()
    assert jobs[0].batch_id is not None
    await drain(rig, api, jobs[0].batch_id, 5)
    assert rig.tally([j.job_id for j in jobs]) == (0, 0)


@pytest.mark.slow
async def test_second_signal_exits_at_once_while_the_loop_is_blocked(
    rig: Rig, api: OperatorAPI
) -> None:
    res = await api.enqueue("fault.block", [{"seconds": 120}])
    worker = rig.jobtui("worker", "--poll-interval", "0.2")

    async def started() -> bool:
        return len(rig.starts()) == 1

    await wait_for(started, timeout=30, what="the blocking job running")
    worker.send_signal(signal.SIGTERM)  # the loop is blocked: it cannot act on this one

    async def first_seen() -> bool:
        return "SIGTERM: stopping" in rig.stderr(worker)

    await wait_for(first_seen, timeout=10, what="the first SIGTERM acknowledged")
    worker.send_signal(signal.SIGTERM)
    await wait_for(lambda: exited(worker), timeout=10, what="the worker exited")
    assert worker.returncode == 128 + signal.SIGTERM
    assert "second SIGTERM" in rig.stderr(worker)
    # Its job is not lost: still processing under a lease that will expire.
    (job,) = [j for j in await api.all_jobs() if j.batch_id == res.batch_id]
    assert job.status is JobStatus.PROCESSING


# -- 2: a MongoDB outage shorter than the lease --------------------------------------


@pytest.mark.slow
async def test_mongodb_outage_shorter_than_the_lease_reruns_nothing(
    rig: Rig, tmp_path: Path
) -> None:
    """nx-27017 stopped for 10 s (lease 30 s) while 12 jobs run and write progress; they
    are let finish during the outage, so their completions wait for the server too."""
    if nx_executable() is None:
        pytest.skip("nx-27017 is not installed")
    port = free_port()
    uri, server = start_nx(tmp_path / "nx", port)
    store = await open_store(Settings(mongodb_uri=uri, database="outage"))
    api = OperatorAPI(store)
    try:
        n = 12
        res = await api.enqueue("fault.work", [{"seconds": 0.5} for _ in range(n)])
        args = ("worker", "--mongodb-uri", uri, "--database", "outage", "--concurrency", "6")
        args += ("--lease-seconds", "30")  # the outage (10 s) is shorter than the lease
        workers = [rig.jobtui(*args, "--poll-interval", "0.2", store=False) for _ in range(2)]

        async def all_started() -> bool:
            return len(rig.starts()) == n

        await wait_for(all_started, timeout=60, what="every job running")
        stop_nx(server)
        down_at = time.monotonic()
        await asyncio.sleep(5)  # the outage itself: a deliberate duration
        rig.release()  # the handlers end while the server is away

        async def all_handlers_done() -> bool:
            return len(rig.completions()) == n

        await wait_for(all_handlers_done, timeout=30, what="every handler returned")
        await asyncio.sleep(max(0.0, 10 - (time.monotonic() - down_at)))
        assert all(w.poll() is None for w in workers), "a worker died with the server"
        _, server = start_nx(tmp_path / "nx", port)

        async def completed() -> bool:
            try:
                return (await statuses(api, res.batch_id))["completed"] == n
            except Exception:  # noqa: BLE001 - the client is still reconnecting
                return False

        await wait_for(completed, timeout=60, interval=0.2, what="every job completed")
        jobs = [j for j in await api.all_jobs() if j.batch_id == res.batch_id]
        assert rig.tally(res.job_ids) == (0, 0)
        assert rig.starts() == Counter({j: 1 for j in res.job_ids}), "a job was re-run"
        assert {j.attempts for j in jobs} == {1}
    finally:
        await store.close()
        stop_nx(server)


# -- 1: the store file deleted or replaced under a running worker -------------------


@pytest.mark.slow
@pytest.mark.parametrize("how", ["deleted", "replaced"])
async def test_store_file_deleted_or_replaced_stops_the_worker(
    rig: Rig, api: OperatorAPI, how: str
) -> None:
    res = await api.enqueue("fault.work", [{} for _ in range(8)])
    backup = rig.tmp / "backup.db"
    _copy(rig, backup)  # taken before any job ran
    worker = rig.jobtui("worker", "--concurrency", "2", "--poll-interval", "0.2")

    async def two_started() -> bool:
        return len(rig.starts()) == 2

    await wait_for(two_started, timeout=30, what="two jobs running")
    if how == "deleted":
        rig.store_path.unlink()
    else:  # a restore: another file renamed over the store
        os.replace(backup, rig.store_path)
    await wait_for(lambda: exited(worker), timeout=15, what="the worker stopped")
    err = rig.stderr(worker)
    assert worker.returncode == 2, err
    assert "STORE_REPLACED" in err and how in err and "Traceback" not in err
    # It stopped claiming at once, and dropped the two it held: nothing more ran there.
    assert len(rig.starts()) == 2 and not rig.completions()
    rig.release()
    if how == "replaced":
        # The restored file is served by a fresh worker; every job runs to the end.
        store = await open_store(Settings(store=rig.store_path))
        try:
            await drain(rig, OperatorAPI(store), res.batch_id, 8)
        finally:
            await store.close()
        assert rig.tally(res.job_ids) == (0, 0)


def _copy(rig: Rig, to: Path) -> None:
    import sqlite3

    src = sqlite3.connect(rig.store_path)
    dst = sqlite3.connect(to)
    src.backup(dst)
    src.close()
    dst.close()


@pytest.mark.slow
async def test_doctor_names_a_process_holding_a_deleted_store(rig: Rig, api: OperatorAPI) -> None:
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import sqlite3, sys; c = sqlite3.connect(sys.argv[1]); "
            "c.execute('select count(*) from jobs').fetchall(); print('ready', flush=True); "
            "sys.stdin.read()",
            str(rig.store_path),
        ],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
    )
    rig.procs.append(holder)  # type: ignore[arg-type]
    assert holder.stdout is not None and holder.stdout.readline().startswith(b"ready")
    await api.store.close()
    rig.store_path.unlink()
    doctor = rig.jobtui("doctor", "--json")
    await wait_for(lambda: exited(doctor), timeout=60, what="doctor finished")
    assert doctor.stdout is not None
    import json

    checks = {c["name"]: c for c in json.loads(doctor.stdout.read())["checks"]}
    # The new file cannot even be made: the old one's WAL is still there.
    assert checks["store"]["verdict"] == "fail"
    assert checks["store"]["detail"].startswith("STORE_REPLACED")
    assert checks["store file"]["verdict"] == "fail"
    assert f"pid {holder.pid}" in checks["store file"]["detail"]
    assert f"kill {holder.pid}" in checks["store file"]["fix"]


# -- 10 and 12: who may read the store; a read-only store ---------------------------


async def test_a_new_store_is_its_owners_alone(tmp_path: Path) -> None:
    from jobtui.engine.store.sqlite import SQLiteStore

    old = os.umask(0o022)
    try:
        store = SQLiteStore(tmp_path / "data" / "jobtui" / "jobtui.db")
        await store.open()
        await OperatorAPI(store).enqueue("noop", [{"password": "s3cret"}])
        modes = {
            p.name: p.stat().st_mode & 0o777
            for p in [store.path.parent, *store.path.parent.iterdir()]
        }
        await store.close()
    finally:
        os.umask(old)
    assert modes == {
        "jobtui": 0o700,
        "jobtui.db": 0o600,
        "jobtui.db-wal": 0o600,
        "jobtui.db-shm": 0o600,
    }


def unshare_works() -> bool:
    if not shutil.which("unshare"):
        return False
    probe = subprocess.run(
        ["unshare", "-m", "sh", "-c", "mount -t tmpfs -o size=64k tmpfs /mnt"],
        capture_output=True,
    )
    return probe.returncode == 0


needs_mounts = pytest.mark.skipif(
    not unshare_works(), reason="needs unshare -m and mount (root in a mount namespace)"
)


def in_namespace(setup: str, *jobtui_args: str) -> list[str]:
    """A command line running ``setup`` (mounts) then ``jobtui ARGS`` in a private
    mount namespace: the mounts vanish with the process."""
    cmd = " ".join(shlex.quote(a) for a in [sys.executable, "-m", "jobtui.tui.cli", *jobtui_args])
    return ["unshare", "-m", "sh", "-c", f"{setup} && exec {cmd}"]


@needs_mounts
async def test_a_healthy_store_on_a_read_only_mount_is_store_readonly(
    rig: Rig, api: OperatorAPI
) -> None:
    await api.enqueue("noop", [{}])
    await api.store.close()
    d = shlex.quote(str(rig.store_path.parent))
    out = subprocess.run(
        in_namespace(
            f"mount --bind {d} {d} && mount -o remount,bind,ro {d}",
            "jobs",
            "--store",
            str(rig.store_path),
        ),
        env=rig.env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert out.returncode == 2, out.stderr
    assert "STORE_READONLY" in out.stderr and "read-only filesystem" in out.stderr
    assert "CORRUPT" not in out.stderr and "Traceback" not in out.stderr


# -- 15: a SIGKILLed worker's jobs come back within 15 s, with the default settings ----


@pytest.mark.slow
async def test_sigkilled_workers_jobs_recovered_within_15s_by_default(
    rig: Rig, api: OperatorAPI
) -> None:
    (rig.tmp / "defaults.yaml").write_text("jobtui:\n  shutdown_grace: 0.5\n")
    rig.env["JOBTUI_CONFIG"] = str(rig.tmp / "defaults.yaml")  # default lease and watchdog
    res = await api.enqueue("fault.work", [{}, {}])
    doomed = rig.jobtui("worker", "--concurrency", "2", "--poll-interval", "0.2")

    async def both_started() -> bool:
        return len(rig.starts()) == 2

    await wait_for(both_started, timeout=30, what="both jobs running")
    survivor = rig.jobtui("worker", "--concurrency", "2", "--poll-interval", "0.2")

    async def survivor_registered() -> bool:
        return len([w for w in await api.workers() if w.alive]) == 2

    await wait_for(survivor_registered, timeout=30, what="the second worker registered")
    doomed.kill()
    killed_at = time.monotonic()

    async def recovered() -> bool:
        jobs = [j for j in await api.all_jobs() if j.batch_id == res.batch_id]
        return all(j.error is not None and j.error.code == "LEASE_EXPIRED" for j in jobs)

    # Lease 12 s (renewed every second) + a watchdog round (2 s): under 15 s.
    await wait_for(recovered, timeout=15, interval=0.1, what="the jobs recovered")
    recovery_s = time.monotonic() - killed_at
    rig.release()

    async def done() -> bool:
        return (await statuses(api, res.batch_id))["completed"] == 2

    await wait_for(done, timeout=30, what="the survivor finished them")
    assert rig.tally(res.job_ids) == (0, 0)
    assert recovery_s < 15
    survivor.send_signal(signal.SIGTERM)
    await wait_for(lambda: exited(survivor), timeout=30, what="the survivor exited")


# -- 5: poison pills ------------------------------------------------------------------


@pytest.mark.slow
async def test_poison_pills_fail_their_own_jobs_only(rig: Rig, api: OperatorAPI) -> None:
    """sys.exit, KeyboardInterrupt, os._exit in a CPU worker process and a huge
    allocation, next to ordinary jobs, in one jobtui worker: the pills fail with a
    code, the worker lives on, the ordinary jobs complete once each."""
    rig.env["JOBTUI_CPU_MEMORY_LIMIT_MB"] = "1024"
    rig.env["JOBTUI_CPU_WORKERS"] = "1"
    good = await api.enqueue("fault.work", [{} for _ in range(4)])
    pills = {
        kind: (await api.enqueue(kind, [{"seconds": 4.0}])).job_ids[0]
        for kind in ("fault.exit", "fault.interrupt", "fault.osexit", "fault.hog")
    }
    worker = rig.jobtui("worker", "--concurrency", "8", "--poll-interval", "0.2")

    async def pills_ended() -> bool:
        jobs = {j.job_id: j for j in await api.all_jobs()}
        return all(jobs[j].status is JobStatus.FAILED for j in pills.values())

    await wait_for(pills_ended, timeout=90, interval=0.2, what="every pill failed")
    assert worker.poll() is None, rig.stderr(worker)
    jobs = {j.job_id: j for j in await api.all_jobs()}
    codes = {kind: jobs[j].error.code for kind, j in pills.items()}  # type: ignore[union-attr]
    assert codes == {
        "fault.exit": "HANDLER_ERROR",
        "fault.interrupt": "HANDLER_ERROR",
        "fault.osexit": "WORKER_CRASHED",
        "fault.hog": "HANDLER_ERROR",
    }
    assert "SystemExit" in jobs[pills["fault.exit"]].error.message  # type: ignore[union-attr]
    assert "MemoryError" in jobs[pills["fault.hog"]].error.message  # type: ignore[union-attr]
    starts = rig.starts()
    assert starts[pills["fault.osexit"]] == 2  # killed its process twice, then no more
    assert starts[pills["fault.exit"]] == 3  # an ordinary failure: max_attempts (3)
    rig.release()
    await drain_here(api, good.batch_id, 4)
    assert rig.tally(good.job_ids) == (0, 0)
    worker.send_signal(signal.SIGTERM)
    await wait_for(lambda: exited(worker), timeout=30, what="the worker exited")
    assert worker.returncode == 0


async def drain_here(api: OperatorAPI, batch_id: str, n: int) -> None:
    async def all_done() -> bool:
        return (await statuses(api, batch_id))["completed"] == n

    await wait_for(all_done, timeout=60, interval=0.1, what="the batch completed")


@pytest.mark.slow
async def test_a_blocked_loop_is_logged_with_the_job_and_sync_handlers_do_not_block(
    rig: Rig, api: OperatorAPI
) -> None:
    blocker = (await api.enqueue("fault.block", [{"seconds": 2.5}])).job_ids[0]
    plain = (await api.enqueue("fault.sync", [{"seconds": 2.5}])).job_ids[0]
    worker = rig.jobtui("worker", "--concurrency", "1", "--poll-interval", "0.2")

    async def both_done() -> bool:
        return rig.completions()[blocker] == 1 and rig.completions()[plain] == 1

    await wait_for(both_done, timeout=60, what="both handlers returned")

    async def logged() -> list[str]:
        return [e.message for e in await api.tail_logs(blocker) if "blocked" in e.message]

    (line,) = await wait_for(logged, timeout=20, what="the blocked-loop line in the job's log")
    assert "fault.block" in line
    # The plain def ran in a thread: the loop turned all along.
    assert not [e for e in await api.tail_logs(plain) if "blocked" in e.message]
    worker.send_signal(signal.SIGTERM)
    await wait_for(lambda: exited(worker), timeout=30, what="the worker exited")
    assert "fault.block" in rig.stderr(worker)


def test_every_type_has_a_default_timeout() -> None:
    from jobtui.engine.registry import DEFAULT_TIMEOUT, default_registry

    reg = default_registry()
    assert DEFAULT_TIMEOUT == 3600
    assert reg.get("noop").timeout == DEFAULT_TIMEOUT  # type: ignore[union-attr]
    assert reg.get("pdf.transcribe").timeout == DEFAULT_TIMEOUT  # type: ignore[union-attr]


# -- 4: input roots: checked on the opened file ---------------------------------------


def _pdf(path: Path, text: str) -> None:
    import pymupdf

    doc = pymupdf.open()
    doc.new_page().insert_text((72, 72), text)
    path.write_bytes(doc.tobytes())  # PyMuPDF takes only UTF-8 file names
    doc.close()


def test_an_input_is_pinned_once_checked(tmp_path: Path) -> None:
    from jobtui.engine.inputs import open_input

    root, outside = tmp_path / "root", tmp_path / "outside"
    (root / "docs").mkdir(parents=True)
    (outside / "docs").mkdir(parents=True)
    (root / "docs" / "a.txt").write_text("inside")
    (outside / "docs" / "a.txt").write_text("OUTSIDE")
    f = open_input(str(root / "docs" / "a.txt"), [root])
    # The folder is swapped for a symlink out of the root after the check...
    (root / "docs").rename(root / "docs.old")
    (root / "docs").symlink_to(outside / "docs")
    # ...and what is read is still the file that was checked.
    assert Path(f.read_path).read_text() == "inside"
    f.close()
    from jobtui.engine.errors import JobFailed

    with pytest.raises(JobFailed) as err:  # opened now, the name leads outside: refused
        open_input(str(root / "docs" / "a.txt"), [root])
    assert err.value.code == "PATH_NOT_ALLOWED"


def test_hard_links_are_refused_when_asked(tmp_path: Path) -> None:
    from jobtui.engine.errors import JobFailed
    from jobtui.engine.inputs import open_input

    root = tmp_path / "root"
    root.mkdir()
    secret = tmp_path / "secret.txt"
    secret.write_text("OUTSIDE")
    os.link(secret, root / "link.txt")
    open_input(str(root / "link.txt"), [root]).close()  # allowed by default (documented)
    with pytest.raises(JobFailed) as err:
        open_input(str(root / "link.txt"), [root], refuse_hard_links=True)
    assert err.value.code == "PATH_NOT_ALLOWED" and "hard links" in err.value.message


@pytest.mark.slow
async def test_swapping_a_folder_for_a_symlink_during_a_batch_reads_nothing_outside(
    rig: Rig, api: OperatorAPI
) -> None:
    """A process swaps root/docs and a symlink to outside/docs as fast as it can while
    a jobtui worker (--input-root root) transcribes 40 PDFs named under root/docs."""
    root, outside = rig.tmp / "root", rig.tmp / "outside"
    (root / "docs").mkdir(parents=True)
    (outside / "docs").mkdir(parents=True)
    n = 40
    for i in range(n):
        _pdf(root / "docs" / f"f{i}.pdf", f"INSIDE {i}")
        _pdf(outside / "docs" / f"f{i}.pdf", f"OUTSIDE {i}")
    res = await api.enqueue(
        "pdf.transcribe", [{"path": str(root / "docs" / f"f{i}.pdf")} for i in range(n)]
    )
    stop = rig.tmp / "stop-swapping"
    swapper = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import os, sys, time\n"
            "docs, real, target, stop = sys.argv[1:]\n"
            "while not os.path.exists(stop):\n"
            "    os.rename(docs, real); os.symlink(target, docs)\n"
            "    time.sleep(0.002)  # the symlink stays as long as the real folder\n"
            "    os.remove(docs); os.rename(real, docs)\n"
            "    time.sleep(0.002)\n",
            str(root / "docs"),
            str(root / "docs.real"),
            str(outside / "docs"),
            str(stop),
        ]
    )
    rig.procs.append(swapper)  # type: ignore[arg-type]
    worker = rig.jobtui(
        "worker",
        "--input-root",
        str(root),
        "--output",
        str(rig.tmp / "out"),
        "--concurrency",
        "4",
        "--types",
        "pdf.*",
    )

    async def all_ended() -> bool:
        counts = await statuses(api, res.batch_id)
        return counts["completed"] + counts["failed"] == n

    try:
        await wait_for(all_ended, timeout=120, interval=0.2, what="every job ended")
    finally:
        stop.touch()
        swapper.wait(timeout=10)
    jobs = [j for j in await api.all_jobs() if j.batch_id == res.batch_id]
    texts = [
        Path(j.results["markdown_path"]).read_text()
        for j in jobs
        if j.status is JobStatus.COMPLETED and j.results
    ]
    assert texts, [j.error for j in jobs][
        :3
    ]  # most find the real folder  # most find the real folder
    assert not [t for t in texts if "OUTSIDE" in t], "a job read a file outside the root"
    codes = Counter(j.error.code for j in jobs if j.error and j.status is JobStatus.FAILED)
    assert set(codes) <= {"PATH_NOT_ALLOWED", "FILE_NOT_FOUND"}, codes
    worker.send_signal(signal.SIGTERM)
    await wait_for(lambda: exited(worker), timeout=30, what="the worker exited")


# -- 11: doctor's suggested commands are shell-quoted ---------------------------------


async def test_doctor_quotes_job_type_names_from_the_database(tmp_path: Path) -> None:
    from jobtui.engine.doctor import run_checks
    from jobtui.engine.registry import default_registry

    settings = Settings(store=tmp_path / "q.db", output_dir=tmp_path / "out")
    store = await open_store(settings)
    evil = "x; touch pwned #"
    await OperatorAPI(store).enqueue(evil, [{}])
    await store.close()
    checks = {c.name: c for c in await run_checks(settings, default_registry())}
    fix = checks["unserved"].fix
    command = fix.split(": ", 1)[1].split("; no plug-in")[0]
    assert shlex.split(command) == ["jobtui", "worker", "--types", evil]


# -- 6 and 13: a giant page; a symlink planted in the output folder -------------------


async def test_a_giant_page_is_ocred_at_a_lower_dpi_that_fits(tmp_path: Path) -> None:
    """The issue's 691-byte PDF: one 100-inch page, OCR at 300 dpi (9 x 10^8 pixels)."""
    import pymupdf

    from jobtui.engine.processors import pdf_extract as px

    pdf = tmp_path / "giant.pdf"
    doc = pymupdf.open()
    doc.new_page(width=7200, height=7200)  # 100 x 100 inches, no text layer
    doc.save(pdf)
    doc.close()
    opts = {"ocr": True, "force_ocr": True, "languages": "eng", "dpi": 300}
    (rec,) = px.extract_range(str(pdf), 0, 1, opts)
    assert rec.get("error") is None and rec["ocr"]
    asked, used = rec["dpi_lowered"]
    assert asked == 300 and (100 * used) ** 2 <= px.MAX_OCR_PIXELS


def test_render_does_not_follow_a_symlink_planted_in_the_output_folder(tmp_path: Path) -> None:
    from jobtui.engine.processors import pdf_extract as px

    pdf = tmp_path / "a.pdf"
    _pdf(pdf, "hello")
    out = tmp_path / "out"
    out.mkdir()
    victim = tmp_path / "victim.txt"
    victim.write_text("precious")
    # Planted where the page goes, and where the old code put its temporary file.
    (out / "page-0001.png").symlink_to(victim)
    for pid in range(os.getpid() - 50, os.getpid() + 50):
        (out / f"page-0001.png.{pid}.tmp").symlink_to(victim)
    (rec,) = px.render_range(str(pdf), 0, 1, {"dpi": 50, "out_dir": str(out)})
    assert rec["file"] == "page-0001.png"
    assert victim.read_text() == "precious"
    assert not (out / "page-0001.png").is_symlink()
    assert (out / "page-0001.png").read_bytes().startswith(b"\x89PNG")
    # A symlinked output folder is refused, not written through.
    (tmp_path / "elsewhere").mkdir()
    (tmp_path / "linked").symlink_to(tmp_path / "elsewhere")
    from jobtui.engine.errors import JobFailed

    with pytest.raises(JobFailed) as err:
        px.render_range(str(pdf), 0, 1, {"dpi": 50, "out_dir": str(tmp_path / "linked")})
    assert err.value.code == "OUTPUT_ERROR"
    assert not list((tmp_path / "elsewhere").iterdir())


def test_transcripts_follow_the_umask_but_never_wider_than_0644(tmp_path: Path) -> None:
    from jobtui.engine.processors.pdf_output import atomic_write

    for umask, mode in ((0o000, 0o644), (0o022, 0o644), (0o077, 0o600), (0o027, 0o640)):
        old = os.umask(umask)
        try:
            atomic_write(str(tmp_path / f"t{umask:o}.md"), "text")
        finally:
            os.umask(old)
        assert (tmp_path / f"t{umask:o}.md").stat().st_mode & 0o777 == mode, oct(umask)


# -- 8: a full disk under the store ---------------------------------------------------


@needs_mounts
async def test_enqueue_onto_a_full_disk_says_store_full_and_the_rerun_completes_it(
    rig: Rig,
) -> None:
    """The store lives on a 240 KiB tmpfs (a private mount namespace): the enqueue of
    300 files fills it part-way; after the tmpfs grows, the same command again queues
    the rest and records the batch of the first part. No job lost, none twice. (An
    empty store of schema 4 takes ~156 KiB of it with its WAL and shared memory; any
    size up to 400 KiB at least still fills part-way.)"""
    folder = rig.tmp / "in"
    folder.mkdir()
    for i in range(300):
        (folder / f"f{i}.txt").write_text(f"file {i}")
    small = rig.tmp / "small"
    small.mkdir()
    db = small / "q.db"
    saved = rig.tmp / "saved"
    saved.mkdir()
    jobtui = shlex.join([sys.executable, "-m", "jobtui.tui.cli"])
    enqueue = f"{jobtui} enqueue {shlex.quote(str(folder))} --type fault.work --store {db}"
    script = (
        f"mount -t tmpfs -o size=240k tmpfs {small} && "
        f"{{ {enqueue} 2> {saved}/err1; echo $? > {saved}/rc1; }} && "
        f"mount -o remount,size=20m {small} && "
        f"{{ {enqueue} 2> {saved}/err2; echo $? > {saved}/rc2; }} && "
        f"cp {small}/q.db* {saved}/"
    )
    out = subprocess.run(
        ["unshare", "-m", "sh", "-c", script], env=rig.env, capture_output=True, timeout=120
    )
    assert out.returncode == 0, out.stderr
    err1 = (saved / "err1").read_text()
    assert (saved / "rc1").read_text().strip() == "2", err1
    assert "STORE_FULL" in err1 and "Traceback" not in err1 and "Run the same command" in err1
    assert (saved / "rc2").read_text().strip() == "0", (saved / "err2").read_text()
    store = await open_store(Settings(store=saved / "q.db"))
    try:
        api = OperatorAPI(store)
        jobs = await api.all_jobs()
        paths = Counter(j.parameters["path"] for j in jobs)
        assert len(paths) == 300 and set(paths.values()) == {1}  # none lost, none twice
        batches = {b.batch.batch_id: b for b in await api.batches()}
        assert {j.batch_id for j in jobs} == set(batches)  # every job has its batch
        assert len(batches) == 2
        assert sum(b.batch.total_jobs for b in batches.values()) == 300
    finally:
        await store.close()


# -- 14: purge gives the space back ---------------------------------------------------


async def _fill_and_purge(path: Path, n: int = 4000) -> tuple[int, int, str]:
    from datetime import timedelta

    from jobtui.engine.models import utcnow

    store = await open_store(Settings(store=path))
    try:
        api = OperatorAPI(store)
        res = await api.enqueue("noop", [{"blob": "x" * 2000, "i": i} for i in range(n)])
        await api.cancel_batch(res.batch_id)
        await store.reclaim_space()  # type: ignore[attr-defined]  # a compact start
        full = sum(p.stat().st_size for p in path.parent.glob(path.name + "*"))
        result = await store.purge_jobs(
            older_than=utcnow() + timedelta(seconds=5), statuses=[JobStatus.CANCELLED]
        )
        assert result.jobs == n
        after = sum(p.stat().st_size for p in path.parent.glob(path.name + "*"))
        return full, after, result.note
    finally:
        await store.close()


async def test_purge_returns_the_space_to_the_file_system(tmp_path: Path) -> None:
    full, after, note = await _fill_and_purge(tmp_path / "new" / "q.db")
    assert full > 8_000_000 and after < full / 4, (full, after)
    assert "MB returned" in note


async def test_purge_of_an_old_file_says_how_to_shrink_it(tmp_path: Path) -> None:
    import sqlite3

    old = tmp_path / "old" / "q.db"
    store = await open_store(Settings(store=old))
    await store.close()
    conn = sqlite3.connect(old)  # as files were made before incremental vacuum
    conn.execute("PRAGMA journal_mode=DELETE")
    conn.execute("PRAGMA auto_vacuum=NONE")
    conn.execute("VACUUM")
    conn.close()
    full, after, note = await _fill_and_purge(old)
    assert "VACUUM" in note and shlex.quote(str(old)) in note


# -- 7: file names that are not UTF-8, on every store ---------------------------------


async def test_non_utf8_file_names_are_stored_losslessly(store: Store, tmp_path: Path) -> None:
    from jobtui.engine.registry import Registry
    from jobtui.engine.worker import Engine

    folder = tmp_path / "in"
    folder.mkdir()
    names = [b"caf\xe9.txt", b"\xff\xfe.txt", "grüße.txt".encode(), b"plain.txt"]
    for i, raw in enumerate(names):
        with open(os.fsencode(folder) + b"/" + raw, "wb") as f:
            f.write(f"content {i}".encode())
    reg = Registry()

    @reg.handler("read")
    async def read(ctx, params):  # type: ignore[no-untyped-def]
        f = ctx.open_input(params.path)
        ctx.log(f"reading {f.path}")
        return {"path": str(f.path), "text": Path(f.read_path).read_text()}

    engine = Engine(store, reg, Settings(poll_interval=0.05, heartbeat_interval=0.2))
    await engine.start()
    try:
        report = await api_of(engine).enqueue_paths([str(folder)], job_type="read")
        assert report.batch_id is not None and len(report.job_ids) == len(names)
        await asyncio.wait_for(engine.wait_batch(report.batch_id), 30)
    finally:
        await engine.stop()
    jobs = await OperatorAPI(store).all_jobs()
    assert {j.status for j in jobs} == {JobStatus.COMPLETED}, [j.error for j in jobs if j.error]
    stored = {os.fsencode(j.parameters["path"]).rsplit(b"/", 1)[1] for j in jobs}
    assert stored == set(names)  # the very bytes of each name
    assert {os.fsencode(j.results["path"]).rsplit(b"/", 1)[1] for j in jobs} == set(names)
    for j in jobs:
        (line,) = [e.message for e in await OperatorAPI(store).tail_logs(j.job_id)]
        assert line == f"reading {j.parameters['path']}"
    batch = await OperatorAPI(store).batch(report.batch_id)
    assert batch is not None and batch.counts == {"completed": len(names)}


async def test_a_pdf_with_a_non_utf8_name_is_transcribed(tmp_path: Path) -> None:
    from jobtui.engine.registry import default_registry
    from jobtui.engine.worker import Engine

    folder = tmp_path / "in"
    folder.mkdir()
    name = os.fsdecode(b"caf\xe9.pdf")
    _pdf(folder / name, "bonjour")
    store = await open_store(Settings(store=tmp_path / "q.db"))
    engine = Engine(store, default_registry(), Settings(output_dir=tmp_path / "out"))
    await engine.start()
    try:
        report = await api_of(engine).enqueue_paths([str(folder)], job_type="pdf.transcribe")
        await asyncio.wait_for(engine.wait_batch(report.batch_id), 60)
        (job,) = await api_of(engine).all_jobs()
    finally:
        await engine.stop()
        await store.close()
    assert job.status is JobStatus.COMPLETED, job.error
    assert b"bonjour" in Path(job.results["markdown_path"]).read_bytes()
    assert os.fsencode(job.results["markdown_path"]).split(b"/")[-1].startswith(b"caf\xe9")
