"""A job's output files, and giving every input file its own named outputs.

Handlers report what they wrote in their result: by convention every result field
whose name ends in ``_path`` (a file) or ``_dir`` (a folder) and holds an absolute
path is an output (``markdown_path``, ``json_path``, ``output_dir``). Output names
start with ``output_base(source)``, the input's stem.

One content is one job, so two input files with the same bytes (``a/report.pdf``
and ``b/copy.pdf``), or a file done earlier into another output folder, share one
set of outputs. ``place_outputs`` gives each input its own: the same files under
names that start with *its* stem, in the folder the operator asked for, as hard
links (no space used) or, across file systems, copies. Nothing is ever overwritten
with different content that is not the job's own output.
"""

from __future__ import annotations

import os
import secrets
import shutil
from pathlib import Path
from typing import Any

from jobtui.engine.inputs import safe_name

STEM_MAX_BYTES = 120  # keeps "<stem>-<sha12>.structured.md" well under NAME_MAX (255)
OUTPUT_SUFFIXES = ("_path", "_dir")


def output_base(path: str) -> str:
    """The readable part of an output name: the input's stem, safe and bounded."""
    stem = safe_name(Path(path).stem)  # a crafted name cannot leave the output dir
    while len(stem.encode("utf-8", "surrogateescape")) > STEM_MAX_BYTES:
        stem = stem[:-1]
    return stem


def output_paths(results: dict[str, Any] | None) -> dict[str, str]:
    """The outputs a job's result names: field -> absolute path."""
    return {
        k: v
        for k, v in (results or {}).items()
        if k.endswith(OUTPUT_SUFFIXES) and isinstance(v, str) and os.path.isabs(v)
    }


def name_for(output: str, job_source: str, source: str) -> str:
    """The name ``output`` (made for ``job_source``) gets for ``source``."""
    name = os.path.basename(output.rstrip(os.sep))
    old, new = output_base(job_source), output_base(source)
    if name.startswith(old):
        return new + name[len(old) :]
    return f"{new}-{name}"


def place_outputs(
    results: dict[str, Any] | None, job_source: str, source: str, out_dir: str | Path
) -> dict[str, str]:
    """Make ``out_dir`` hold ``source``'s own outputs of a completed job whose input
    was ``job_source``; field -> path for ``source``. Files already in place are
    left alone. Raises ``OSError`` (``FileNotFoundError`` when an output is gone)."""
    out = Path(out_dir).absolute()
    here = str(out)
    placed: dict[str, str] = {}
    for key, path in output_paths(results).items():
        if not os.path.lexists(path):
            raise FileNotFoundError(2, "output no longer exists", path)
        if source == job_source and os.path.dirname(path.rstrip(os.sep)) == here:
            # The job's own input, its outputs already in this folder under its name:
            # the common case of a run, nothing to link (or stat twice, or name again).
            placed[key] = path
            continue
        target = out / name_for(path, job_source, source)
        if os.path.isdir(path):
            _link_tree(path, target)
        else:
            out.mkdir(parents=True, exist_ok=True)
            _link_file(path, target)
        placed[key] = str(target)
    return placed


def _same(a: str | Path, b: str | Path) -> bool:
    try:
        return os.path.samefile(a, b)
    except OSError:
        return False


def _link_file(src: str | Path, target: Path) -> None:
    if _same(src, target):
        return
    tmp = target.with_name(f".{target.name}.{secrets.token_hex(4)}.tmp")
    try:
        try:
            os.link(src, tmp)
        except OSError:  # another file system, or links not allowed: copy
            shutil.copyfile(src, tmp)
        os.replace(tmp, target)  # readers never see half a file
    finally:
        if os.path.lexists(tmp):
            os.unlink(tmp)


def _link_tree(src: str, target: Path) -> None:
    if _same(src, target):
        return
    for folder, _dirs, names in os.walk(src):
        dest = target / os.path.relpath(folder, src)
        dest.mkdir(parents=True, exist_ok=True)
        for name in names:
            _link_file(os.path.join(folder, name), dest / name)
