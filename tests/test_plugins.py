"""A plug-in from another distribution serves its own file type in a dropped folder,
with no change to engine/: a test distribution (a dist-info with entry_points.txt on
PYTHONPATH, as pip would install it) registers ``text.wordcount`` for ``.wc`` files,
and ``jobtui run FOLDER`` (no --type) runs its files next to the PDFs, in one batch."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pymupdf
import pytest

ROOT = Path(__file__).resolve().parents[1]

PLUGIN = '''
"""A test plug-in: counts the words of .wc files."""
from __future__ import annotations

from pydantic import BaseModel, ConfigDict

from jobtui.engine.registry import FileTypes, Registry


class Params(BaseModel):
    model_config = ConfigDict(extra="forbid")
    path: str
    sha256: str | None = None


def count(path: str) -> int:  # runs in a CPU worker process
    with open(path, encoding="utf-8") as f:
        return len(f.read().split())


async def wordcount(ctx, params: Params) -> dict:
    words = await ctx.run_cpu(count, params.path)
    ctx.log(f"{words} words")
    return {"words": words}


def register(registry: Registry) -> None:
    registry.handler("text.wordcount", params=Params, files=FileTypes(frozenset({".wc"})))(
        wordcount
    )
'''


def _install_test_distribution(site: Path) -> None:
    """What ``pip install`` of a package with this entry point leaves in site-packages."""
    (site / "wordcount_plugin.py").write_text(PLUGIN, encoding="utf-8")
    info = site / "jobtui_wordcount-1.0.dist-info"
    info.mkdir()
    (info / "METADATA").write_text(
        "Metadata-Version: 2.1\nName: jobtui-wordcount\nVersion: 1.0\n", encoding="utf-8"
    )
    (info / "entry_points.txt").write_text(
        "[jobtui.handlers]\nwordcount = wordcount_plugin:register\n", encoding="utf-8"
    )


def _jobtui(args: list[str], env: dict[str, str], cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "jobtui.tui.cli", *args],
        capture_output=True,
        text=True,
        env=env,
        cwd=cwd,
        timeout=300,
    )


@pytest.mark.slow
def test_a_plugin_distribution_serves_its_files_in_a_dropped_folder(tmp_path: Path) -> None:
    site = tmp_path / "site"
    site.mkdir()
    _install_test_distribution(site)
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    (inbox / "eins.wc").write_text("Grüße aus der Küche", encoding="utf-8")
    (inbox / "zwei.WC").write_text("zwei Wörter", encoding="utf-8")
    doc = pymupdf.open()
    doc.new_page().insert_text((72, 72), "Ein kurzer Bericht", fontname="helv")
    doc.save(inbox / "bericht.pdf")
    (inbox / "liesmich.txt").write_text("no type takes .txt", encoding="utf-8")
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(site), str(ROOT)]),
    }
    for var in ("MONGODB_URI", "JOBTUI_CONFIG", "JOBTUI_STORE", "JOBTUI_INPUT_ROOTS"):
        env.pop(var, None)
    common = ["--store", str(tmp_path / "q.db"), "--output", str(tmp_path / "out")]

    # The plug-in's type is registered (loaded from the distribution's entry point) ...
    doctor = _jobtui(["doctor", "--json", *common], env, tmp_path)
    types = next(c for c in json.loads(doctor.stdout)["checks"] if c["name"] == "job types")
    assert "text.wordcount" in types["detail"], doctor.stdout + doctor.stderr

    # ... and a folder run without --type sends each file to the type of its kind.
    run = _jobtui(["run", str(inbox), "--json", *common], env, tmp_path)
    assert run.returncode == 0, run.stdout + run.stderr
    report = json.loads(run.stdout)
    assert report["skipped"] == {"unsupported": 1}
    assert report["counts"] == {"completed": 3}
    jobs = {Path(j["path"]).name: j for j in report["jobs"]}
    assert {n: j["job_type"] for n, j in jobs.items()} == {
        "eins.wc": "text.wordcount",
        "zwei.WC": "text.wordcount",
        "bericht.pdf": "pdf.transcribe",
    }
    assert jobs["eins.wc"]["words"] == 4 and jobs["zwei.WC"]["words"] == 2

    # Without the distribution on the path, the same folder has nothing for .wc files.
    env["PYTHONPATH"] = str(ROOT)
    plain = _jobtui(
        ["enqueue", str(inbox), "--json", "--store", str(tmp_path / "p.db")], env, tmp_path
    )
    assert plain.returncode == 0, plain.stdout + plain.stderr
    assert json.loads(plain.stdout)["skipped"] == {"unsupported": 3}


def test_the_plugin_needed_no_change_to_the_engine() -> None:
    """Nothing under engine/ names the test plug-in's type or extension."""
    engine = ROOT / "engine"
    for path in engine.rglob("*.py"):
        text = path.read_text(encoding="utf-8")
        assert "wordcount" not in text and '".wc"' not in text, path


def test_plugin_source_is_valid_python() -> None:
    compile(textwrap.dedent(PLUGIN), "wordcount_plugin.py", "exec")
