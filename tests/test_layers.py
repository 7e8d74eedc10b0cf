"""The layer rules are contracts that really fail.

``lint-imports`` (import-linter, configured in pyproject.toml's ``[tool.importlinter]``)
checks them in CI. Here it runs on the real tree (every contract kept), then on a copy
of the tree with one forbidden import injected per contract: the contract named must
come out BROKEN, so a contract that silently checks nothing would fail this test.
Also: the API <-> worker <-> enqueue cycle is gone (each imports alone, in a fresh
interpreter, and the engine modules import without the API).
"""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.util import ROOT, run_python

LINT = shutil.which("lint-imports")

pytestmark = pytest.mark.skipif(LINT is None, reason="import-linter is not installed")


def lint(tree: Path) -> subprocess.CompletedProcess[str]:
    assert LINT is not None
    return subprocess.run(
        [LINT, "--no-cache", "--config", str(tree / "pyproject.toml")],
        capture_output=True,
        text=True,
        cwd=tree,
        env={"PYTHONPATH": str(tree), "PATH": "/usr/bin:/bin"},
        timeout=120,
    )


@pytest.fixture(scope="module")
def tree(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """A copy of the package folders (jobtui/ keeps its relative symlinks, so it points
    at the copies) and of pyproject.toml."""
    dst = tmp_path_factory.mktemp("tree")
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc")
    for name in ("engine", "tui", "themes"):
        shutil.copytree(ROOT / name, dst / name, ignore=ignore)
    shutil.copytree(ROOT / "jobtui", dst / "jobtui", symlinks=True, ignore=ignore)
    shutil.copy(ROOT / "pyproject.toml", dst / "pyproject.toml")
    yield dst


def test_every_contract_is_kept_on_the_real_tree() -> None:
    out = lint(ROOT)
    assert out.returncode == 0, out.stdout + out.stderr
    assert "0 broken" in out.stdout


def test_the_copy_is_clean_before_anything_is_injected(tree: Path) -> None:
    out = lint(tree)
    assert out.returncode == 0, out.stdout + out.stderr


# (file to change, line to add, the contract that must break)
INJECTIONS = [
    (
        "tui/screens/main.py",
        "from jobtui.engine.store.base import Store",
        "the console and CLI reach the engine only through jobtui.engine.api",
    ),
    (
        "tui/cli.py",
        "import jobtui.engine.worker",
        "the console and CLI reach the engine only through jobtui.engine.api",
    ),
    (
        "engine/processors/pdf.py",
        "from jobtui.engine.store import sqlite",
        "processors never import the store (they see only their JobContext)",
    ),
    (
        "engine/worker.py",
        "import textual.app",
        "the engine never imports textual or rich (headless workers)",
    ),
    (
        "engine/retention.py",
        "import rich",
        "the engine never imports textual or rich (headless workers)",
    ),
    # the old cycle: an engine service calling back up into the API
    ("engine/enqueue.py", "from jobtui.engine import api", "engine layers"),
    ("engine/store/base.py", "import jobtui.engine.worker", "engine layers"),
    # two services that must not know each other
    ("engine/worker.py", "import jobtui.engine.doctor", "engine layers"),
    ("engine/models.py", "import jobtui.tui.app", "the console and CLI sit on the engine"),
]


@pytest.mark.parametrize(("path", "line", "contract"), INJECTIONS)
def test_a_forbidden_import_breaks_its_contract(
    tree: Path, path: str, line: str, contract: str
) -> None:
    target = tree / path
    original = target.read_text()
    # Appended at the end, at module level: a real import, whatever the file holds.
    target.write_text(original + f"\n{line}  # injected by tests/test_layers.py\n")
    try:
        out = lint(tree)
    finally:
        target.write_text(original)
    assert out.returncode != 0, out.stdout
    broken = [ln for ln in out.stdout.splitlines() if " BROKEN" in ln]
    assert any(ln.startswith(contract) for ln in broken), out.stdout


def test_a_new_engine_module_needs_a_layer(tree: Path) -> None:
    """``exhaustive``: a module nobody placed is an error, not a free pass."""
    stray = tree / "engine" / "stray_module.py"
    stray.write_text('"""A module no layer names."""\n')
    try:
        out = lint(tree)
    finally:
        stray.unlink()
    assert out.returncode != 0 and "stray_module" in out.stdout, out.stdout


@pytest.mark.parametrize(
    "module", ["jobtui.engine.api", "jobtui.engine.worker", "jobtui.engine.enqueue"]
)
def test_api_worker_enqueue_import_alone(module: str) -> None:
    """Each of the three imports first in a fresh interpreter (an import cycle between
    them used to depend on who came first), and the worker and enqueue load without
    the operator API."""
    code = (
        f"import sys, {module}\n"
        "api = 'jobtui.engine.api' in sys.modules\n"
        f"sys.exit(0 if ({module!r} == 'jobtui.engine.api') or not api else 3)\n"
    )
    out = run_python(code)
    assert out.returncode == 0, out.stdout + out.stderr
