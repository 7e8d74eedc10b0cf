"""Input roots: a worker reads only under its configured roots (PATH_NOT_ALLOWED), and
outputs land only under the output directory, whatever the input's name."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from jobtui.engine.config import Settings, load_settings
from jobtui.engine.errors import JobFailed
from jobtui.engine.inputs import check_input_path, safe_name
from jobtui.engine.models import Job, JobStatus
from jobtui.engine.processors.pdf import output_stem
from jobtui.engine.registry import default_registry
from jobtui.engine.store.sqlite import SQLiteStore
from jobtui.engine.worker import Engine
from jobtui.tui.cli import build_parser, settings_from_args
from tests.util import api_of

FAST = {
    "poll_interval": 0.05,
    "heartbeat_interval": 0.1,
    "watchdog_interval": 0.1,
    "cpu_workers": 1,
}


def _pdf(path: Path, text: str = "Hello roots") -> Path:
    import pymupdf

    doc = pymupdf.open()
    doc.new_page().insert_text((72, 72), text)
    doc.save(path)
    doc.close()
    return path


@pytest.fixture
def tree(tmp_path: Path) -> dict[str, Path]:
    """root/ (allowed) holding a good PDF and a symlink to outside/secret.pdf."""
    root, outside = tmp_path / "root", tmp_path / "outside"
    root.mkdir()
    outside.mkdir()
    good = _pdf(root / "good.pdf")
    secret = _pdf(outside / "secret.pdf", "secret")
    link = root / "link.pdf"
    link.symlink_to(secret)
    (root / "sub").mkdir()
    return {"root": root, "outside": outside, "good": good, "secret": secret, "link": link}


# -- the check itself ------------------------------------------------------------------


def test_inside_a_root_is_allowed_and_resolved(tree: dict[str, Path]) -> None:
    got = check_input_path(str(tree["root"] / "sub" / ".." / "good.pdf"), [tree["root"]])
    assert got == Path(os.path.realpath(tree["good"]))


def test_symlink_leaving_the_root_is_refused(tree: dict[str, Path]) -> None:
    with pytest.raises(JobFailed) as info:
        check_input_path(str(tree["link"]), [tree["root"]])
    assert info.value.code == "PATH_NOT_ALLOWED"
    assert info.value.details and info.value.details["resolved"] == os.path.realpath(tree["secret"])


def test_dotdot_leaving_the_root_is_refused(tree: dict[str, Path]) -> None:
    with pytest.raises(JobFailed) as info:
        check_input_path(f"{tree['root']}/../outside/secret.pdf", [tree["root"]])
    assert info.value.code == "PATH_NOT_ALLOWED"


def test_prefix_of_a_root_name_is_not_inside_it(tmp_path: Path) -> None:
    (tmp_path / "root").mkdir()
    (tmp_path / "root-evil").mkdir()
    with pytest.raises(JobFailed):
        check_input_path(str(tmp_path / "root-evil" / "x.pdf"), [tmp_path / "root"])


def test_a_symlinked_root_is_resolved_too(tree: dict[str, Path], tmp_path: Path) -> None:
    alias = tmp_path / "alias"
    alias.symlink_to(tree["root"], target_is_directory=True)
    assert check_input_path(str(tree["good"]), [alias]) == Path(os.path.realpath(tree["good"]))


def test_missing_files_outside_are_refused_not_reported_missing(tree: dict[str, Path]) -> None:
    with pytest.raises(JobFailed) as info:
        check_input_path("/etc/no-such-file", [tree["root"]])
    assert info.value.code == "PATH_NOT_ALLOWED"


def test_nul_byte_is_refused(tree: dict[str, Path]) -> None:
    with pytest.raises(JobFailed) as info:
        check_input_path(f"{tree['root']}/a\0b.pdf", [tree["root"]])
    assert info.value.code == "PATH_NOT_ALLOWED"


def test_without_roots_everything_is_allowed_unchanged(tree: dict[str, Path]) -> None:
    assert check_input_path(str(tree["link"]), []) == tree["link"]  # symlink kept as named


def test_output_names_cannot_leave_the_output_dir() -> None:
    sha = "a" * 64
    for name in ("..", ".", "", "a/b", "..\\..\\x", "x\0y"):
        stem = output_stem(f"/in/{name}", sha) if "/" not in name else safe_name(name)
        assert "/" not in stem and "\0" not in stem and stem.strip(".") != ""
        out = Path("/out") / f"{stem}.md"
        assert out.parent == Path("/out")
    assert output_stem("/in/..", sha) == f"document-{sha[:12]}"


# -- configuration ------------------------------------------------------------------------


def test_roots_from_env_yaml_and_cli(tmp_path: Path) -> None:
    env = {"JOBTUI_INPUT_ROOTS": f"/data/a{os.pathsep}/data/b"}
    assert load_settings(environ=env).input_roots == [Path("/data/a"), Path("/data/b")]
    cfg = tmp_path / "c.yaml"
    cfg.write_text("jobtui:\n  input_roots: [/srv/in]\n", encoding="utf-8")
    assert load_settings(cfg, environ={}).input_roots == [Path("/srv/in")]
    args = build_parser().parse_args(["worker", "--input-root", "/x", "--input-root", "/y"])
    assert settings_from_args(args).input_roots == [Path("/x"), Path("/y")]


# -- through a real engine ------------------------------------------------------------------


@pytest.fixture
async def engine(tree: dict[str, Path], tmp_path: Path) -> AsyncIterator[Engine]:
    store = SQLiteStore(tmp_path / "q.db")
    await store.open()
    settings = Settings(output_dir=tmp_path / "out", input_roots=[tree["root"]], **FAST)
    eng = Engine(store, default_registry(), settings)
    await eng.start()
    try:
        yield eng
    finally:
        await eng.stop(grace=5)
        await store.close()


async def _run(eng: Engine, path: str) -> Job:
    res = await api_of(eng).enqueue("pdf.transcribe", [{"path": path}])
    assert res.batch_id
    await eng.wait_batch(res.batch_id, poll=0.05)
    job = await eng.store.get_job(res.job_ids[0])
    assert job is not None
    return job


async def test_engine_allows_inside_refuses_outside(
    engine: Engine, tree: dict[str, Path], tmp_path: Path
) -> None:
    ok = await _run(engine, str(tree["good"]))
    assert ok.status is JobStatus.COMPLETED, ok.error
    assert Path(ok.results["markdown_path"]).parent == (tmp_path / "out").absolute()  # type: ignore[index]

    for path in (str(tree["link"]), f"{tree['root']}/../outside/secret.pdf"):
        job = await _run(engine, path)
        assert job.status is JobStatus.FAILED
        assert job.error is not None and job.error.code == "PATH_NOT_ALLOWED"
        assert job.attempts == 1  # refused, not retried
        await engine.logs.flush()
        lines = [e.message for e in await engine.store.tail_logs(job.job_id)]
        assert not any("pages" in line for line in lines), lines  # nothing was opened
    # The secret never reached the output directory.
    assert not any("secret" in p.name for p in (tmp_path / "out").iterdir())
