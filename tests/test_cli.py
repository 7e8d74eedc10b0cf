"""The ``jobtui`` command: run/enqueue/jobs/retry/cancel, exit codes, JSON shapes,
clear errors, and an embedded store that survives SIGKILL of its process."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from jobtui.engine.api import OperatorAPI
from jobtui.engine.config import Settings
from jobtui.engine.models import JobStatus
from jobtui.engine.store.factory import open_store
from jobtui.tui.cli import main
from tests.util import wait_for

ROOT = Path(__file__).resolve().parents[1]
RUN_FIELDS = {"job_id", "job_type", "status", "error_code", "attempts"}


def jobtui(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out = capsys.readouterr()
    return code, out.out, out.err


@pytest.fixture
def files(tmp_path: Path) -> Path:
    d = tmp_path / "in"
    (d / "sub").mkdir(parents=True)
    for i in range(5):
        (d / f"f{i}.txt").write_text(f"file {i}")
    (d / "sub" / "g.txt").write_text("nested")
    return d


def test_run_json_summary_and_exit_0(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, files: Path
) -> None:
    db = str(tmp_path / "q.db")
    code, out, err = jobtui(capsys, "run", str(files), "--type", "noop", "--store", db, "--json")
    assert code == 0, err
    summary = json.loads(out)
    assert summary["total"] == 6 and summary["counts"] == {"completed": 6}
    assert isinstance(summary["elapsed_s"], float) and summary["batch_id"]
    paths = sorted(j["path"] for j in summary["jobs"])
    assert paths == sorted(str(p.resolve()) for p in files.rglob("*.txt"))
    for j in summary["jobs"]:
        assert RUN_FIELDS <= set(j) and j["status"] == "completed" and j["attempts"] == 1
    assert "embedded store" in err and db in err
    # `jobs --json` prints the same job objects
    code, out, _ = jobtui(capsys, "jobs", "--store", db, "--json")
    listed = {j["job_id"]: j for j in json.loads(out)}
    assert code == 0 and set(listed) == {j["job_id"] for j in summary["jobs"]}
    for j in summary["jobs"]:
        assert {k: listed[j["job_id"]][k] for k in RUN_FIELDS | {"path"}} == {
            k: j[k] for k in RUN_FIELDS | {"path"}
        }


def test_run_exit_1_when_a_job_fails(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    d = tmp_path / "pdfs"
    d.mkdir()
    (d / "empty.pdf").write_bytes(b"")
    (d / "fake.pdf").write_bytes(b"\x89PNG\r\n\x1a\n" + b"0" * 100)
    code, out, err = jobtui(
        capsys,
        "run",
        str(d),
        "--store",
        str(tmp_path / "q.db"),
        "--output",
        str(tmp_path / "out"),
        "--json",
    )
    assert code == 1, err
    summary = json.loads(out)
    codes = {Path(j["path"]).name: j["error_code"] for j in summary["jobs"]}
    assert codes == {"empty.pdf": "PDF_EMPTY", "fake.pdf": "NOT_A_PDF"}
    assert summary["counts"] == {"failed": 2}
    assert all(j["attempts"] == 1 for j in summary["jobs"])  # bad input is not retried


def test_rerun_of_finished_folder_reports_done_earlier(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, files: Path
) -> None:
    db = str(tmp_path / "q.db")
    assert jobtui(capsys, "run", str(files), "--type", "noop", "--store", db)[0] == 0
    code, out, err = jobtui(capsys, "run", str(files), "--type", "noop", "--store", db)
    assert code == 0
    assert "6 already completed" in err and "6 files (6 done earlier)" in out
    assert "files," not in err  # nothing waited for: no progress line
    code, out, _ = jobtui(
        capsys, "run", str(files), "--type", "noop", "--store", db, "--force", "--json"
    )
    assert code == 0 and json.loads(out)["total"] == 6
    assert {f["status"] for f in json.loads(out)["files"]} == {"completed"}


@pytest.mark.parametrize(
    "argv,code_text",
    [
        (["run", "/no/such/folder", "--type", "noop"], "PATH_NOT_FOUND"),
        (["run", ".", "--type", "no.such.type"], "UNKNOWN_JOB_TYPE"),
        (["run", ".", "--type", "noop", "--param", "novalue"], "USAGE"),
        (["retry"], "USAGE"),
    ],
)
def test_usage_errors_exit_2_without_traceback(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, argv: list[str], code_text: str
) -> None:
    code, _out, err = jobtui(capsys, *argv, "--store", str(tmp_path / "q.db"))
    assert code == 2
    assert f"jobtui: {code_text}:" in err and "Traceback" not in err


def test_unreachable_mongodb_exit_2_and_password_hidden(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = jobtui(
        capsys,
        "jobs",
        "--mongodb-uri",
        "mongodb://alice:hunter2@127.0.0.1:9/x?serverSelectionTimeoutMS=300",
    )
    assert code == 2 and "STORE_UNREACHABLE" in err
    assert "hunter2" not in err + out and "alice:***@" in err


def test_bad_config_file_exit_2(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    cfg = tmp_path / "c.yaml"
    cfg.write_text("jobtui:\n  concurrency: -3\n")
    code, _, err = jobtui(capsys, "--config", str(cfg), "jobs")
    assert code == 2 and "CONFIG_INVALID" in err and "concurrency" in err


def test_enqueue_then_cancel_and_retry(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, files: Path
) -> None:
    db = str(tmp_path / "q.db")
    code, out, _ = jobtui(capsys, "enqueue", str(files), "--type", "noop", "--store", db)
    batch_id = out.strip()  # the short form, accepted wherever an id is
    assert code == 0 and len(batch_id) == 12
    code, out, _ = jobtui(capsys, "jobs", "--store", db, "--status", "pending", "--json")
    pending = json.loads(out)
    assert len(pending) == 6 and {j["batch_id"][:12] for j in pending} == {batch_id}
    code, out, _ = jobtui(capsys, "cancel", pending[0]["job_id"], "--store", db)
    assert code == 0 and out.startswith("1 job(s)")
    code, out, _ = jobtui(capsys, "cancel", "--batch", batch_id, "--store", db)
    assert out.startswith("5 job(s)")
    code, out, _ = jobtui(capsys, "jobs", "--store", db, "--status", "cancelled", "--json")
    assert len(json.loads(out)) == 6
    code, out, _ = jobtui(capsys, "retry", "--batch", batch_id, "--store", db)
    # retry --batch retries the batch's failed jobs; --status names others
    assert code == 1 and out.startswith("0 job(s)")
    code, out, _ = jobtui(capsys, "retry", *[j["job_id"] for j in pending[:2]], "--store", db)
    assert code == 0 and out.startswith("2 job(s)")
    code, out, _ = jobtui(capsys, "jobs", "--store", db, "--status", "pending", "--json")
    assert len(json.loads(out)) == 2
    code, out, _ = jobtui(
        capsys, "retry", "--batch", batch_id, "--status", "cancelled,failed", "--store", db
    )
    assert code == 0 and out.startswith("4 job(s)")
    code, out, _ = jobtui(capsys, "jobs", "--store", db, "--status", "pending", "--json")
    assert len(json.loads(out)) == 6


@pytest.mark.slow
async def test_sigkilled_worker_on_embedded_store_loses_nothing(tmp_path: Path) -> None:
    """Issue 3: kill -9 the process; every job and batch is still there, and its
    running jobs come back after their leases expire."""
    db = tmp_path / "q.db"
    settings = Settings(store=db)
    store = await open_store(settings)
    api = OperatorAPI(store)
    done = await api.enqueue("noop", [{} for _ in range(20)], batch_name="done-first")
    held = await api.enqueue("sleep", [{"seconds": 600}, {"seconds": 600}], batch_name="held")
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    worker = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "jobtui.tui.cli",
            "worker",
            "--store",
            str(db),
            "--lease-seconds",
            "2",
            "--concurrency",
            "4",
        ],
        cwd=ROOT,
        env=env,
        stderr=subprocess.PIPE,
    )
    try:
        await wait_for(lambda: _counts_are(api, held.batch_id, {"processing": 2}), timeout=30)
        await wait_for(lambda: _counts_are(api, done.batch_id, {"completed": 20}), timeout=30)
        os.kill(worker.pid, signal.SIGKILL)
        worker.wait(timeout=10)
    finally:
        if worker.poll() is None:
            worker.kill()
    await store.close()
    # A new process opens the same file: everything as it was.
    store = await open_store(settings)
    api = OperatorAPI(store)
    batches = {b.batch.name: b.counts for b in await api.batches()}
    assert batches == {"done-first": {"completed": 20}, "held": {"processing": 2}}
    # With no owner renewing them, the leases expire and the jobs come back.
    from jobtui.engine.registry import default_registry
    from jobtui.engine.watchdog import Watchdog

    wd = Watchdog(store, default_registry())
    await wait_for(lambda: _swept(wd), timeout=15, interval=0.2)
    jobs = (await api.list_jobs()).jobs
    back = [j for j in jobs if j.batch_id == held.batch_id]
    assert {(j.status, j.attempts) for j in back} == {(JobStatus.PENDING, 1)}
    await store.close()


async def _counts_are(api: OperatorAPI, batch_id: str, counts: dict[str, int]) -> bool:
    b = await api.batch(batch_id)
    return b is not None and b.counts == counts


async def _swept(wd: object) -> bool:
    return await wd.sweep() > 0  # type: ignore[attr-defined]


def test_module_entry_point_runs() -> None:
    for module in ("jobtui.tui.cli", "jobtui.tui"):  # python -m jobtui.tui: the jobtui command
        out = subprocess.run(
            [sys.executable, "-m", module, "--help"],
            capture_output=True,
            text=True,
            cwd=ROOT,
            timeout=60,
        )
        assert out.returncode == 0 and "worker" in out.stdout and "run" in out.stdout


def test_launcher_starts_the_worker_server_only_for_commands_that_process() -> None:
    from jobtui.tui.launch import needs_workers

    assert needs_workers(["run", "docs/"]) and needs_workers(["--store", "x.db", "worker"])
    assert not needs_workers([]) and not needs_workers(["jobs"])
    assert not needs_workers(["run", "--help"])


def test_console_on_a_corrupt_store_file_is_a_clear_error(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    bad = tmp_path / "bad.db"
    bad.write_bytes(b"not a database at all")
    code, _, err = jobtui(capsys, "--store", str(bad))
    assert code == 2 and "jobtui: STORE_CORRUPT:" in err and str(bad) in err
    assert bad.read_bytes() == b"not a database at all"
