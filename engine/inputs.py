"""Which files a worker may read, and where it may write: input roots, output names.

Anyone who can write to the jobs collection can name a file for a worker to read
(``parameters.path``). So when input roots are configured (``--input-root DIR``,
``JOBTUI_INPUT_ROOTS``, YAML ``jobtui.input_roots``) a worker reads a file only if its
real location, after resolving every symlink and ``..``, lies under one of them;
otherwise the job fails with ``PATH_NOT_ALLOWED`` before a byte is read. Without
roots everything is allowed (``jobtui doctor`` warns about that).

The check lives here, once; handlers call ``check_input_path`` and read the path it
returns (the resolved one), so what is read is what was checked.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from jobtui.engine.errors import JobFailed
from jobtui.engine.models import ErrorCode


def _real(path: str | os.PathLike[str]) -> str:
    return os.path.realpath(os.path.abspath(os.path.expanduser(os.fspath(path))))


def _inside(path: str, root: str) -> bool:
    try:
        return os.path.commonpath([path, root]) == root
    except ValueError:  # different drives (Windows) or mixed absolute/relative
        return False


def check_input_path(path: str, roots: Sequence[Path | str]) -> Path:
    """The path a worker may read for ``path``, or ``JobFailed("PATH_NOT_ALLOWED")``.

    With no ``roots``: the absolute path, unchanged (symlinks kept, so output names
    follow the name the job gave). With roots: the fully resolved path, which must
    lie under one of the (also resolved) roots. A path that does not exist is judged
    the same way, so a refused job does not reveal whether a file exists.
    """
    try:
        if not roots:
            return Path(os.path.abspath(os.path.expanduser(path)))
        real = _real(path)
        real_roots = [_real(r) for r in roots]
    except (ValueError, OSError) as exc:  # an embedded NUL byte, an unreadable cwd
        raise JobFailed(
            ErrorCode.PATH_NOT_ALLOWED, f"unusable path {path!r}: {exc}", {"path": path}
        ) from None
    if any(_inside(real, root) for root in real_roots):
        return Path(real)
    shown = ", ".join(real_roots)
    raise JobFailed(
        ErrorCode.PATH_NOT_ALLOWED,
        f"{path} is outside the input roots ({shown}); this worker reads nothing else",
        {"path": path, "resolved": real, "input_roots": real_roots},
    )


def roots_of(settings: Any) -> list[Path]:
    """The input roots from a handler's ``ctx.settings`` (a dict) or a ``Settings``."""
    if isinstance(settings, dict):
        value = settings.get("input_roots")
    else:
        value = getattr(settings, "input_roots", None)
    return [Path(r) for r in value or ()]


def safe_name(name: str, fallback: str = "document") -> str:
    """``name`` usable as one file name inside the output directory: no separators,
    no NUL, not ``.`` or ``..``. Output paths are ``out_dir / safe_name(...)``, so a
    crafted input name cannot put a file anywhere else."""
    for bad in {"/", "\\", "\0", os.sep, os.altsep or "/"}:
        name = name.replace(bad, "_")
    return fallback if name.strip(".") == "" else name
