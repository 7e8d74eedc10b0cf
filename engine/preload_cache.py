"""The list of modules CPU worker processes preload (``JobType.worker_preload``), kept
from one run to the next so the fork server need not build a registry to learn it
(see ``jobtui.engine.preload``). Light: no pydantic, no handler modules.
"""

from __future__ import annotations

import contextlib
import json
import os
from collections.abc import Sequence
from pathlib import Path


def cache_file() -> Path:
    from platformdirs import user_cache_dir  # light (~3 ms), unlike the config module

    return Path(user_cache_dir("jobtui", appauthor=False)) / "worker-preload.json"


def remembered() -> list[str] | None:
    """The list the last run declared, or None when there is none (or it is unreadable)."""
    try:
        names = json.loads(cache_file().read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if isinstance(names, list) and all(isinstance(n, str) for n in names):
        return names
    return None


def remember(names: Sequence[str]) -> None:
    """Keep the registry's list for the next start (written only when it changed)."""
    if remembered() == list(names):
        return
    path = cache_file()
    with contextlib.suppress(OSError):  # a read-only home only costs the next start time
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f"{path.name}.{os.getpid()}.tmp")
        tmp.write_text(json.dumps(list(names)), encoding="utf-8")
        os.replace(tmp, path)  # readers see the old list or the new, never half of one
