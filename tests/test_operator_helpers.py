"""What the CLI and console rely on below the operator API: parameters checked and
normalised before a job exists, ids by unique prefix, outputs named per input file,
and an engine that claims only the jobs in its scope."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from pydantic import BaseModel, ConfigDict, Field

from jobtui.engine.api import OperatorAPI, dedupe_key
from jobtui.engine.config import Settings
from jobtui.engine.errors import ConfigError
from jobtui.engine.models import Batch, Job, JobStatus
from jobtui.engine.outputs import name_for, output_paths, place_outputs
from jobtui.engine.params import check_parameters, normalised_parameters
from jobtui.engine.registry import JobType, Registry
from jobtui.engine.store.base import ClaimScope, Store
from jobtui.engine.worker import Engine
from tests.util import wait_for


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")
    path: str
    sha256: str | None = None
    languages: str = "deu+eng"
    dpi: int = Field(300, ge=72, le=600)
    password: str | None = None


async def _noop(ctx: object, p: object) -> dict[str, object]:
    return {}


STRICT = JobType("strict", _noop, params_model=Strict)


def test_misspelt_parameter_is_named_with_the_closest_valid_one() -> None:
    with pytest.raises(ConfigError) as err:
        check_parameters(STRICT, {"langauges": "eng"})
    assert err.value.code == "INVALID_PARAMETERS"
    assert "'langauges'" in err.value.message and "did you mean 'languages'" in err.value.message


def test_bad_value_is_named_and_secrets_are_not_echoed() -> None:
    with pytest.raises(ConfigError) as err:
        check_parameters(STRICT, {"dpi": 5000})
    assert "'dpi'" in err.value.message and "600" in err.value.message
    with pytest.raises(ConfigError) as err:
        check_parameters(STRICT, {"password": ["hunter2"]})
    assert "hunter2" not in err.value.message
    check_parameters(STRICT, {"languages": "eng", "dpi": "150"})  # fine: no error


def test_equal_settings_give_equal_dedupe_keys() -> None:
    sha = "a" * 64
    cli = {"path": "/x/a.pdf", "sha256": sha}
    console = {"path": "/y/b.pdf", "sha256": sha, "languages": "deu+eng", "dpi": "300"}
    assert normalised_parameters(Strict, console) == {}
    assert dedupe_key("strict", sha, cli, Strict) == dedupe_key("strict", sha, console, Strict)
    # ...and the key is the one written before normalisation existed (no options)
    assert dedupe_key("strict", sha, cli, Strict) == dedupe_key("strict", sha, cli)
    other = {**cli, "languages": "eng"}
    assert dedupe_key("strict", sha, other, Strict) != dedupe_key("strict", sha, cli, Strict)


async def test_id_prefixes(store: Store) -> None:
    api = OperatorAPI(store)
    a, b = "abcdef01" + "0" * 24, "abcdef02" + "0" * 24
    await store.insert_jobs([Job(job_id=a, job_type="x"), Job(job_id=b, job_type="x")])
    await store.create_batch(Batch(batch_id="fedcba" + "9" * 26, name="n"))
    assert (await api.resolve_id("abcdef01")).id == a
    assert (await api.resolve_id(a)).kind == "job"
    assert (await api.resolve_id("fedcba")).kind == "batch"
    for given, code in [
        ("abcdef", "ID_AMBIGUOUS"),
        ("abc", "ID_TOO_SHORT"),
        ("999999", "ID_NOT_FOUND"),
    ]:
        with pytest.raises(ConfigError) as err:
            await api.resolve_id(given)
        assert err.value.code == code
        if code == "ID_AMBIGUOUS":
            assert a[:12] in err.value.message and b[:12] in err.value.message
    with pytest.raises(ConfigError):
        await api.resolve_id("fedcba", kinds=("job",))


def test_outputs_named_per_input(tmp_path: Path) -> None:
    done = tmp_path / "earlier"
    done.mkdir()
    md = done / "report-0123456789ab.md"
    md.write_text("# report")
    pages = done / "report-0123456789ab"
    pages.mkdir()
    (pages / "p1.png").write_bytes(b"png")
    results = {"markdown_path": str(md), "output_dir": str(pages), "pages": 1, "x_path": "rel"}
    assert set(output_paths(results)) == {"markdown_path", "output_dir"}
    assert name_for(str(md), "/a/report.pdf", "/b/copy.pdf") == "copy-0123456789ab.md"
    out = tmp_path / "out"
    placed = place_outputs(results, "/a/report.pdf", "/b/copy.pdf", out)
    assert placed["markdown_path"] == str(out / "copy-0123456789ab.md")
    assert Path(placed["markdown_path"]).read_text() == "# report"
    assert (out / "copy-0123456789ab" / "p1.png").read_bytes() == b"png"
    # again: nothing changes; the job's own output in its own folder stays itself
    assert place_outputs(results, "/a/report.pdf", "/b/copy.pdf", out) == placed
    assert place_outputs(results, "/a/report.pdf", "/a/report.pdf", done)["markdown_path"] == str(
        md
    )
    os.unlink(md)
    with pytest.raises(FileNotFoundError):
        place_outputs(results, "/a/report.pdf", "/c/new.pdf", out)
    with pytest.raises(FileNotFoundError):  # in its own folder too: gone is said
        place_outputs(results, "/a/report.pdf", "/a/report.pdf", done)


async def test_engine_with_a_scope_leaves_other_jobs_alone(store: Store) -> None:
    reg = Registry()
    reg.handler("x", max_attempts=1)(_noop)
    api = OperatorAPI(store, reg)
    foreign = await api.enqueue("x", [{} for _ in range(3)], batch_name="theirs")
    mine = await api.enqueue("x", [{} for _ in range(2)], batch_name="mine")
    assert mine.batch_id is not None and foreign.batch_id is not None
    engine = Engine(
        store, reg, Settings(poll_interval=0.05), scope=ClaimScope(batch_id=mine.batch_id)
    )
    await engine.start()
    try:
        await engine.wait_batch(mine.batch_id)
        engine.serve_also([foreign.job_ids[0]])

        async def taken() -> bool:
            j = await store.get_job(foreign.job_ids[0])
            return j is not None and j.status is JobStatus.COMPLETED

        await wait_for(taken, timeout=10)
    finally:
        await engine.stop(grace=0)
    counts = (await api.batch(foreign.batch_id)).counts  # type: ignore[union-attr]
    assert counts == {"completed": 1, "pending": 2}
