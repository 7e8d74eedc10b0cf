"""``jobtui run`` makes sure its files have outputs in ``--output`` (issue 13):
re-runs after success, after a failure, after fixing the output folder; a shared
store with other people's jobs; duplicates across folders; files of the run that run
elsewhere; the JSON and text summaries; exit codes."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import pytest

from jobtui.engine.api import OperatorAPI
from jobtui.engine.config import Settings
from jobtui.engine.models import JobFilter, JobStatus, Outcome
from jobtui.engine.store.factory import open_store
from jobtui.tui import cli
from tests import cli_types
from tests.util import wait_for


@pytest.fixture(autouse=True)
def test_types(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(cli, "default_registry", cli_types.registry)
    cli_types.FAILING.clear()


def jobtui(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = cli.main(list(argv))
    out = capsys.readouterr()
    return code, out.out, out.err


def run_json(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, dict[str, Any]]:
    code, out, err = jobtui(capsys, "run", *argv, "--json")
    assert "Traceback" not in err
    return code, json.loads(out)


def by_name(summary: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {Path(f["path"]).parent.name + "/" + Path(f["path"]).name: f for f in summary["files"]}


@pytest.fixture
def tree(tmp_path: Path) -> Path:
    """a/one.txt, a/two.txt, b/one-copy.txt (same bytes as a/one.txt)."""
    d = tmp_path / "in"
    (d / "a").mkdir(parents=True)
    (d / "b").mkdir()
    (d / "a" / "one.txt").write_text("one")
    (d / "a" / "two.txt").write_text("two")
    (d / "b" / "one-copy.txt").write_text("one")
    return d


def opts(tmp_path: Path, out: str = "out") -> list[str]:
    return [
        "--type",
        "test.copy",
        "--store",
        str(tmp_path / "q.db"),
        "--output",
        str(tmp_path / out),
    ]


def test_duplicates_across_folders_each_get_their_own_output(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, tree: Path
) -> None:
    code, summary = run_json(capsys, str(tree), *opts(tmp_path))
    assert code == 0
    files = by_name(summary)
    assert {f["status"] for f in files.values()} == {"completed"}
    assert summary["total"] == 2 and len(summary["files"]) == 3  # two jobs, three files
    copy, one = files["b/one-copy.txt"], files["a/one.txt"]
    assert copy["job_id"] == one["job_id"] and copy["same_content_as"] == one["path"]
    out = tmp_path / "out"
    assert Path(one["outputs"]["text_path"]).parent == out
    assert Path(copy["outputs"]["text_path"]).name.startswith("one-copy-")
    assert Path(copy["outputs"]["text_path"]).read_text() == "ONE"
    assert summary["output_dir"] == str(out)
    assert sorted(p.name.split("-")[0] for p in out.iterdir()) == ["one", "one", "two"]


def test_rerun_after_success_links_outputs_into_the_new_folder(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, tree: Path
) -> None:
    assert run_json(capsys, str(tree), *opts(tmp_path))[0] == 0
    code, out, err = jobtui(capsys, "run", str(tree), *opts(tmp_path, "elsewhere"))
    assert code == 0, err
    assert out.count("done earlier ") == 3 and "(3 done earlier)" in out
    assert f"outputs in {tmp_path / 'elsewhere'}" in out
    names = sorted(p.name for p in (tmp_path / "elsewhere").iterdir())
    assert [n.rsplit("-", 1)[0] for n in names] == ["one", "one-copy", "two"]
    assert all((tmp_path / "elsewhere" / n).read_text() in ("ONE", "TWO") for n in names)
    # Nothing was computed again: still one attempt each, no new batch.
    code, listed, _ = jobtui(capsys, "jobs", "--store", str(tmp_path / "q.db"), "--json")
    assert [j["attempts"] for j in json.loads(listed)] == [1, 1]


def test_rerun_after_failure_retries_unless_told_not_to(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, tree: Path
) -> None:
    cli_types.FAILING.add("two.txt")
    code, summary = run_json(capsys, str(tree), *opts(tmp_path))
    assert code == 1
    assert by_name(summary)["a/two.txt"]["status"] == "failed"
    assert by_name(summary)["a/two.txt"]["error_code"] == "FLAKY"
    # Still failing, and told not to retry: reported failed, exit 1, nothing run.
    code, summary = run_json(capsys, str(tree), *opts(tmp_path), "--no-retry-failed")
    assert code == 1 and by_name(summary)["a/two.txt"]["status"] == "failed"
    assert "retried" not in by_name(summary)["a/two.txt"]
    cli_types.FAILING.clear()  # the cause is fixed
    code, summary = run_json(capsys, str(tree), *opts(tmp_path))
    assert code == 0
    files = by_name(summary)
    assert files["a/two.txt"]["status"] == "completed" and files["a/two.txt"]["retried"]
    assert files["a/one.txt"]["status"] == "done_earlier"
    assert Path(files["a/two.txt"]["outputs"]["text_path"]).read_text() == "TWO"


def test_rerun_after_fixing_the_output_folder(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, tree: Path
) -> None:
    blocker = tmp_path / "out"
    blocker.write_text("a file where the output folder should be")
    code, summary = run_json(capsys, str(tree), *opts(tmp_path))
    assert code == 1
    assert {f["error_code"] for f in summary["files"]} == {"OUTPUT_ERROR"}
    blocker.unlink()
    code, summary = run_json(capsys, str(tree), *opts(tmp_path))
    assert code == 0 and {f["status"] for f in summary["files"]} == {"completed"}
    assert len(list((tmp_path / "out").iterdir())) == 3


def test_outputs_deleted_since_are_reported_not_hidden(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, tree: Path
) -> None:
    code, summary = run_json(capsys, str(tree / "a"), *opts(tmp_path))
    assert code == 0
    for f in summary["files"]:
        Path(f["outputs"]["text_path"]).unlink()
    code, summary = run_json(capsys, str(tree / "a"), *opts(tmp_path, "other"))
    assert code == 1
    assert {f["status"] for f in summary["files"]} == {"output_missing"}
    assert "--force" in summary["files"][0]["error_message"]
    code, summary = run_json(capsys, str(tree / "a"), *opts(tmp_path, "other"), "--force")
    assert code == 0 and {f["status"] for f in summary["files"]} == {"completed"}


async def _store(tmp_path: Path) -> tuple[Any, OperatorAPI]:
    store = await open_store(Settings(store=tmp_path / "q.db"))
    return store, OperatorAPI(store, cli_types.registry())


async def test_run_leaves_other_peoples_jobs_alone_unless_drain(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, tree: Path
) -> None:
    store, api = await _store(tmp_path)
    try:
        theirs = await api.enqueue("noop", [{} for _ in range(3)], batch_name="theirs")
        assert theirs.batch_id
        args = cli.build_parser().parse_args(["run", str(tree), *opts(tmp_path), "--json"])
        assert await cli._main(args) == 0
        assert (await api.batch(theirs.batch_id)).counts == {"pending": 3}  # type: ignore[union-attr]
        args = cli.build_parser().parse_args(
            ["run", str(tree), *opts(tmp_path), "--json", "--drain"]
        )
        assert await cli._main(args) == 0
        assert (await api.batch(theirs.batch_id)).counts == {"completed": 3}  # type: ignore[union-attr]
    finally:
        await store.close()
    capsys.readouterr()


async def test_jobs_left_queued_by_an_interrupted_run_are_finished_by_the_next(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, tree: Path
) -> None:
    """What an interrupted run leaves (its jobs pending in its batch) is this run's work."""
    args = cli.build_parser().parse_args(["enqueue", str(tree), *opts(tmp_path)[:4]])
    assert await cli._main(args) == 0
    store, api = await _store(tmp_path)
    try:
        args = cli.build_parser().parse_args(["run", str(tree), *opts(tmp_path), "--json"])
        assert await cli._main(args) == 0
        summary = json.loads(capsys.readouterr().out.splitlines()[-1])
        assert {f["status"] for f in summary["files"]} == {"completed"}
        assert summary["batch_id"] is None  # nothing new: the old batch's jobs ran here
        assert (await api.count_jobs()) == {"completed": 2}
    finally:
        await store.close()


@pytest.mark.parametrize("ends", [JobStatus.COMPLETED, JobStatus.FAILED])
async def test_a_file_running_elsewhere_is_waited_for(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, tree: Path, ends: JobStatus
) -> None:
    """Another process holds the job of a/one.txt: the run waits for its outcome and
    reports that, not success."""
    args = cli.build_parser().parse_args(
        ["enqueue", str(tree / "a" / "one.txt"), *opts(tmp_path)[:4]]
    )
    assert await cli._main(args) == 0
    store, api = await _store(tmp_path)
    try:
        from jobtui.engine.models import utcnow

        held = await store.claim(
            worker_id="elsewhere",
            slots={"test.copy": 1},
            limit=1,
            lease_seconds=300,
            timeouts={},
            now=utcnow(),
        )
        assert len(held) == 1 and held[0].lease is not None
        args = cli.build_parser().parse_args(["run", str(tree), *opts(tmp_path), "--json"])
        run = asyncio.create_task(cli._main(args))

        async def rest_done() -> bool:
            jobs = await api.all_jobs(JobFilter(status=[JobStatus.COMPLETED]))
            return len(jobs) == 1  # a/two.txt, the run's own new job

        await wait_for(rest_done, timeout=30)
        assert not run.done()  # still waiting for the job held elsewhere
        results = {"text_path": str(tmp_path / "x.txt")} if ends is JobStatus.COMPLETED else None
        (tmp_path / "x.txt").write_text("ONE")
        assert await store.finish(
            held[0].job_id, held[0].lease.token, Outcome(status=ends, results=results), now=utcnow()
        )
        code = await asyncio.wait_for(run, 60)
    finally:
        await store.close()
    summary = json.loads(capsys.readouterr().out.splitlines()[-1])
    one = by_name(summary)["a/one.txt"]
    if ends is JobStatus.COMPLETED:
        assert code == 0 and one["status"] == "completed"
        assert Path(one["outputs"]["text_path"]).read_text() == "ONE"
    else:
        assert code == 1 and one["status"] == "failed"


def test_text_summary_and_progress_lines(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, tree: Path
) -> None:
    code, out, err = jobtui(capsys, "run", str(tree), *opts(tmp_path))
    assert code == 0
    lines = out.splitlines()
    assert lines[-1] == f"outputs in {tmp_path / 'out'}"
    assert lines[-2].startswith("batch ") and "3 files (3 completed)" in lines[-2]
    batch = lines[-2].split()[1].rstrip(":")
    assert len(batch) == 12
    assert any("same content as" in ln and "one-copy.txt" in ln for ln in lines)
    # stderr is not a terminal here: plain lines, the last one the final count
    assert err.splitlines()[-1] == "jobtui: 2/2 files, " + err.splitlines()[-1].split(", ", 1)[1]
    code, out, err = jobtui(capsys, "run", str(tree), *opts(tmp_path), "--json")
    assert "files" not in err.replace("3 files:", "")  # no progress lines with --json


def test_default_parameters_spelt_out_are_the_same_job(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, tree: Path
) -> None:
    """The console fills in defaults (upper=true), the CLI leaves them out: one job."""
    code, summary = run_json(capsys, str(tree), *opts(tmp_path), "--param", "upper=true")
    assert code == 0
    code, summary = run_json(capsys, str(tree), *opts(tmp_path))
    assert code == 0 and {f["status"] for f in summary["files"]} == {"done_earlier"}
    code, summary = run_json(capsys, str(tree), *opts(tmp_path), "--param", "upper=false")
    assert code == 0 and {f["status"] for f in summary["files"]} == {"completed"}


def test_auto_type_sends_each_file_to_its_type_and_checks_parameters(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, tree: Path
) -> None:
    db = ["--store", str(tmp_path / "q.db"), "--output", str(tmp_path / "out")]
    code, out, err = jobtui(capsys, "run", str(tree), *db, "--param", "uper=false")
    assert code == 2 and "INVALID_PARAMETERS" in err and "did you mean 'upper'" in err
    assert not (tmp_path / "q.db").exists()
    # a key only test.copy declares is fine with --type auto (the default)
    code, summary = run_json(capsys, str(tree), *db, "--param", "upper=false")
    assert code == 0 and {j["job_type"] for j in summary["jobs"]} == {"test.copy"}
    assert Path(by_name(summary)["a/two.txt"]["outputs"]["text_path"]).read_text() == "two"


def test_jobs_of_types_not_served_here_are_not_waited_for(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, tree: Path
) -> None:
    """--types leaves a type to other workers: the run ends and says so (no hang)."""
    code, summary = run_json(capsys, str(tree), *opts(tmp_path), "--types", "noop")
    assert code == 1
    assert {f["status"] for f in summary["files"]} == {"pending"}
    assert {f["waiting_for_type"] for f in summary["files"]} == {"test.copy"}
    code, out, _ = jobtui(capsys, "run", str(tree), *opts(tmp_path), "--types", "noop")
    assert code == 1 and "waiting for a worker that serves test.copy" in out
    # a run that serves the type finishes them
    code, summary = run_json(capsys, str(tree), *opts(tmp_path))
    assert code == 0 and {f["status"] for f in summary["files"]} == {"completed"}
