"""The wheel installs one import name: ``jobtui`` (and its dist-info) plus the
``jobtui`` console script; no top-level ``engine``, ``tui`` or ``jobtui_themes``."""

from __future__ import annotations

import os
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def _run(cmd: list[str], cwd: Path, env: dict[str, str] | None = None) -> str:
    out = subprocess.run(cmd, cwd=cwd, capture_output=True, text=True, timeout=600, env=env)
    assert out.returncode == 0, f"{cmd}\n{out.stdout}\n{out.stderr}"
    return out.stdout


@pytest.mark.slow
def test_the_wheel_installs_only_jobtui_and_its_console_script(tmp_path: Path) -> None:
    # Built from a copy of the tracked files, so the checkout gets no build/ folder.
    src = tmp_path / "src"
    files = _run(["git", "ls-files", "-z"], ROOT).split("\0")
    for rel in filter(None, files):
        source = ROOT / rel
        target = src / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        if source.is_symlink():
            target.symlink_to(os.readlink(source))
        elif source.is_file():
            target.write_bytes(source.read_bytes())
    wheels = tmp_path / "wheels"
    _run([sys.executable, "-m", "pip", "wheel", ".", "--no-deps", "-q", "-w", str(wheels)], src)
    (wheel,) = wheels.glob("jobtui-*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    tops = {n.split("/")[0] for n in names}
    assert tops == {"jobtui", next(t for t in tops if t.endswith(".dist-info"))}, tops
    assert "jobtui/py.typed" in names
    assert "jobtui/engine/processors/image.py" in names and "jobtui/tui/app.tcss" in names
    assert any(n.startswith("jobtui/themes/") for n in names)

    # A fresh venv (the system's packages visible, so nothing is downloaded).
    venv = tmp_path / "venv"
    _run([sys.executable, "-m", "venv", "--system-site-packages", str(venv)], tmp_path)
    py = venv / "bin" / "python"
    _run([str(py), "-m", "pip", "install", "-q", "--no-deps", str(wheel)], tmp_path)
    site = Path(
        _run(
            [str(py), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"], tmp_path
        ).strip()
    )
    installed = {p.name for p in site.iterdir()}
    assert "jobtui" in installed and any(
        n.startswith("jobtui-") and n.endswith(".dist-info") for n in installed
    )
    assert not {"engine", "tui", "themes", "jobtui_themes"} & installed
    assert (venv / "bin" / "jobtui").is_file()

    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "JOBTUI_CONFIG")}
    probe = (
        "import jobtui, jobtui.engine, jobtui.tui, jobtui.themes;"
        "from jobtui.engine.registry import default_registry, source_tree;"
        "print(jobtui.__file__); print(source_tree());"
        "print(' '.join(default_registry().names()))"
    )
    out = _run([str(py), "-c", probe], tmp_path, env).splitlines()
    assert out[0].startswith(str(site))  # the installed copy, not a checkout
    assert out[1] == "None"  # installed: the entry points come from its metadata
    assert {"pdf.transcribe", "image.ocr", "noop"} <= set(out[2].split())
    assert "usage: jobtui" in _run([str(venv / "bin" / "jobtui"), "--help"], tmp_path, env)
