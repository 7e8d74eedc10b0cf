"""The fork server's preload list, kept from one run to the next: the server then
imports the workers' modules without building a registry (no pydantic, no handler
modules) before it forks its first worker."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from jobtui.engine import preload_cache
from jobtui.engine.api import start_worker_processes
from jobtui.engine.registry import default_registry

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture
def cache_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    return tmp_path


def _preload_in_fresh_process(cache_home: Path) -> dict[str, bool]:
    code = (
        "import json, sys; import jobtui.engine.preload; "
        "print(json.dumps({m: m in sys.modules for m in ('pydantic', 'pymupdf')}))"
    )
    env = {**os.environ, "XDG_CACHE_HOME": str(cache_home), "PYTHONPATH": str(ROOT)}
    out = subprocess.run(
        [sys.executable, "-c", code], env=env, cwd=ROOT, capture_output=True, text=True, check=True
    )
    return json.loads(out.stdout)


def test_the_list_is_kept_whole_and_replaced_when_it_changes(cache_home: Path) -> None:
    assert preload_cache.remembered() is None
    preload_cache.remember(["a.b", "c"])
    assert preload_cache.remembered() == ["a.b", "c"]
    preload_cache.remember(["d"])
    assert preload_cache.remembered() == ["d"]
    preload_cache.cache_file().write_text("{not json")
    assert preload_cache.remembered() is None  # unreadable: as if there were none


def test_a_run_remembers_its_registry_and_the_next_server_skips_the_registry(
    cache_home: Path,
) -> None:
    # No list yet: the server builds the registry (pydantic) to learn what to import.
    assert _preload_in_fresh_process(cache_home) == {"pydantic": True, "pymupdf": True}
    registry = default_registry()
    start_worker_processes(registry)  # what `jobtui run` calls; the server runs already
    assert preload_cache.remembered() == list(registry.worker_preload())
    # Next start: the same modules, without the registry's imports.
    assert _preload_in_fresh_process(cache_home) == {"pydantic": False, "pymupdf": True}


def test_a_stale_list_naming_a_missing_module_is_skipped(cache_home: Path) -> None:
    preload_cache.remember(["jobtui_no_such_module", "pymupdf"])
    assert _preload_in_fresh_process(cache_home) == {"pydantic": False, "pymupdf": True}
