"""The docs' Python samples run, so the docs cannot drift from the code."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def python_blocks(page: str) -> list[str]:
    text = (ROOT / "docs" / page).read_text(encoding="utf-8")
    return re.findall(r"```python\n(.*?)```", text, flags=re.S)


def test_handler_guide_samples_run_and_print_what_they_say() -> None:
    blocks = python_blocks("handlers.md")
    # the first two blocks form a program; the plug-in snippet needs its own package
    program = blocks[0] + "\n" + blocks[1]
    out = subprocess.run([sys.executable, "-c", program], capture_output=True, text=True,
                         cwd=ROOT, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip().splitlines()[-1] == "{'words': 4}"
