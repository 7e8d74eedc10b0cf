"""The CLI checks before it writes (exit 2, nothing written), takes id prefixes
wherever an id is, and shows jobs, batches and one job or batch in full."""

from __future__ import annotations

import asyncio
import json
import os
from pathlib import Path

import pytest

from jobtui.engine.api import OperatorAPI
from jobtui.engine.config import Settings
from jobtui.engine.models import Batch, Job, WorkerInfo
from jobtui.engine.store.factory import open_store
from jobtui.tui import cli
from tests import cli_types


@pytest.fixture(autouse=True)
def test_types(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(cli, "default_registry", cli_types.registry)


def jobtui(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = cli.main(list(argv))
    out = capsys.readouterr()
    return code, out.out, out.err


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    d = tmp_path / "in"
    d.mkdir()
    (d / "a.txt").write_text("a")
    return d


@pytest.mark.parametrize(
    "extra,code_text,says",
    [
        (["--type", "pdf.nope"], "UNKNOWN_JOB_TYPE", ["pdf.transcribe", "test.copy", "auto"]),
        (
            ["--type", "test.copy", "--param", "uper=false"],
            "INVALID_PARAMETERS",
            ["'uper'", "did you mean 'upper'"],
        ),
        (["--type", "test.copy", "--param", "pages=0"], "INVALID_PARAMETERS", ["'pages'"]),
        (["--type", "test.copy", "--param", "novalue"], "USAGE", ["KEY=VALUE"]),
    ],
)
@pytest.mark.parametrize("command", ["run", "enqueue"])
def test_bad_input_exits_2_and_writes_nothing(
    capsys: pytest.CaptureFixture[str],
    tmp_path: Path,
    folder: Path,
    command: str,
    extra: list[str],
    code_text: str,
    says: list[str],
) -> None:
    db = tmp_path / "q.db"
    code, out, err = jobtui(capsys, command, str(folder), *extra, "--store", str(db))
    assert code == 2 and f"jobtui: {code_text}:" in err and "Traceback" not in err
    assert all(s in err for s in says), err
    assert not db.exists()  # nothing written, not even an empty store
    assert not (tmp_path / "jobtui-output").exists()


def test_missing_paths_and_store_folder_are_refused(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, folder: Path
) -> None:
    db = tmp_path / "q.db"
    code, _, err = jobtui(
        capsys, "run", str(folder), str(tmp_path / "nope"), "--type", "noop", "--store", str(db)
    )
    assert code == 2 and "PATH_NOT_FOUND" in err and str(tmp_path / "nope") in err
    assert not db.exists()
    typo = tmp_path / "typo" / "dir" / "x.db"
    for argv in (["enqueue", str(folder), "--type", "noop"], ["jobs"], ["batches"], []):
        code, _, err = jobtui(capsys, *argv, "--store", str(typo))
        assert code == 2 and "STORE_FOLDER_MISSING" in err, err
    assert not (tmp_path / "typo").exists()


async def _seed(db: Path) -> OperatorAPI:
    store = await open_store(Settings(store=db))
    api = OperatorAPI(store)
    await store.create_batch(Batch(batch_id="feed01" + "a" * 26, name="first"))
    await store.create_batch(Batch(batch_id="feed02" + "b" * 26, name="second"))
    await store.insert_jobs(
        [
            Job(job_id="abcdef01" + "0" * 24, job_type="noop", batch_id="feed01" + "a" * 26),
            Job(job_id="abcdef02" + "0" * 24, job_type="noop", batch_id="feed02" + "b" * 26),
            Job(
                job_id="0123456789" + "0" * 22,
                job_type="nobody.serves",
                batch_id="feed02" + "b" * 26,
            ),
        ]
    )
    # a live worker that serves noop only
    await store.upsert_worker(
        WorkerInfo(worker_id="w", host="h", pid=1, job_types=["noop"], concurrency=1)
    )
    return api


def seeded(db: Path) -> None:
    async def go() -> None:
        api = await _seed(db)
        await api.store.close()

    asyncio.run(go())


def test_id_prefixes_everywhere(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    db = tmp_path / "q.db"
    seeded(db)
    s = ["--store", str(db)]
    code, out, _ = _run(capsys, "jobs", "--batch", "feed01", "--json", *s)
    assert code == 0 and [j["job_id"][:8] for j in json.loads(out)] == ["abcdef01"]
    code, out, _ = _run(capsys, "show", "abcdef02", *s)
    assert code == 0 and "abcdef02" + "0" * 24 in out
    code, _, err = _run(capsys, "show", "abcdef", *s)
    assert code == 2 and "ID_AMBIGUOUS" in err
    assert "abcdef010000" in err and "abcdef020000" in err
    code, _, err = _run(capsys, "jobs", "--batch", "feed0", *s)
    assert code == 2 and "ID_TOO_SHORT" in err  # fits both batches, and is too short
    code, _, err = _run(capsys, "jobs", "--batch", "abcdef01", *s)
    assert code == 2 and "ID_NOT_FOUND" in err  # a job id where a batch id is asked
    code, _, err = _run(capsys, "cancel", "abcdef01", "ffffff", *s)
    assert code == 2 and "ID_NOT_FOUND" in err
    code, out, _ = _run(capsys, "jobs", "--status", "pending", "--json", *s)
    assert len(json.loads(out)) == 3  # the bad id changed nothing
    code, out, _ = _run(capsys, "cancel", "abcdef01", *s)
    assert code == 0 and out.startswith("1 job(s)")
    code, out, _ = _run(capsys, "retry", "--batch", "feed01aa", "--status", "cancelled", *s)
    assert code == 0 and out.startswith("1 job(s)")
    purge = ["purge", "--older-than", "1d", "--status", "completed", "--dry-run", *s]
    code, out, _ = _run(capsys, *purge, "--batch", "feed02")
    assert code == 0 and "in batch feed02bbbbbb" in out
    code, _, err = _run(capsys, *purge, "--batch", "abcdef01")
    assert code == 2 and "ID_NOT_FOUND" in err


def _run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    return jobtui(capsys, *argv)


def test_jobs_table_has_a_header_and_messages(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    db = tmp_path / "q.db"
    seeded(db)
    code, out, _ = _run(capsys, "jobs", "--store", str(db))
    lines = out.splitlines()
    assert code == 0 and lines[0].split() == [
        "ID",
        "STATUS",
        "TYPE",
        "PROGRESS",
        "TRIES",
        "MESSAGE",
        "PATH",
    ]
    row = next(ln for ln in lines if ln.startswith("012345678900"))
    assert "waiting for a worker that serves nobody.serves" in row
    assert all(len(ln.split()[0]) == 12 for ln in lines[1:])
    code, out, _ = _run(capsys, "batches", "--store", str(db))
    lines = out.splitlines()
    assert lines[0].split() == ["ID", "NAME", "CREATED", "JOBS", "STATUS", "COUNTS"]
    assert any(ln.startswith("feed02bbbbbb  second") and "2 pending" in ln for ln in lines)
    code, out, _ = _run(capsys, "batches", "--store", str(db), "--json")
    assert {b["name"]: b["total"] for b in json.loads(out)} == {"first": 1, "second": 2}


def test_show_a_failed_job_and_its_batch(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, folder: Path
) -> None:
    db = str(tmp_path / "q.db")
    code, out, _ = _run(
        capsys,
        "run",
        str(folder),
        "--type",
        "test.secret",
        "--param",
        "password=hunter2",
        "--store",
        db,
        "--json",
    )
    assert code == 1
    job = json.loads(out)["jobs"][0]
    code, out, _ = _run(capsys, "show", job["job_id"][:8], "--store", db)
    assert code == 0 and "hunter2" not in out
    assert "HANDLER_ERROR: RuntimeError: broken on purpose" in out
    assert "traceback:" in out and "raise RuntimeError" in out
    assert '"password": "' in out and "about to fail" in out  # log tail
    code, out, _ = _run(capsys, "show", job["job_id"][:8], "--store", db, "--json")
    shown = json.loads(out)
    assert "hunter2" not in out and shown["error"]["code"] == "HANDLER_ERROR"
    code, out, _ = _run(capsys, "show", job["batch_id"][:6], "--store", db)
    assert code == 0 and "1 failed" in out and "broken on purpose" in out
    assert f"jobtui retry --batch {job['batch_id'][:12]} --status cancelled,failed" in out
    assert os.path.exists(db)
