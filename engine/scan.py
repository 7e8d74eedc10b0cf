"""The folder walk behind enqueue: which files, under which job type, and why the
others were skipped (see ``jobtui.engine.enqueue`` for the rules)."""

from __future__ import annotations

import os
import stat
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field

from jobtui.engine.registry import SNIFF_BYTES, Registry

EXAMPLES_PER_REASON = 3

#: reason -> what the summary says
REASONS = {
    "unsupported": "no job type takes it",
    "not_accepted": "not for this job type",
    "unreadable": "unreadable",
    "missing": "missing",
    "not_regular": "not a regular file",
    "same_file": "same file reached twice",
    "same_content": "copy of another file",
    "same_folder": "folder reached twice",
    "subfolder": "subfolder (not recursive)",
}


@dataclass
class _Candidate:
    path: str  # absolute, symlinks resolved
    size: int
    explicit: bool  # named by the caller (not found in a folder)
    job_type: str  # the type it goes to
    sha256: str | None = None


@dataclass
class _Scan:
    files: list[_Candidate] = field(default_factory=list)
    found: int = 0
    skipped: Counter[str] = field(default_factory=Counter)
    examples: dict[str, list[str]] = field(default_factory=dict)

    def skip(self, reason: str, path: str) -> None:
        self.skipped[reason] += 1
        ex = self.examples.setdefault(reason, [])
        if len(ex) < EXAMPLES_PER_REASON:
            ex.append(path)


def _read_head(path: str) -> bytes:
    with open(path, "rb") as f:
        return f.read(SNIFF_BYTES)


class _Chooser:
    """Which job type a regular file goes to (None: no type takes it)."""

    def __init__(self, registry: Registry, job_type: str | None) -> None:
        self.registry = registry
        self.job_type = job_type
        self.named = registry.get(job_type) if job_type else None
        self.by_ext: dict[str, str | None] = {}  # auto mode: extension -> type, memoized

    def __call__(self, path: str, explicit: bool) -> str | None:
        """Raises OSError when the file's head cannot be read (only read when needed)."""
        if self.job_type is not None:
            jt = self.named
            # An unknown type or one that declares no files takes every file; a file
            # named explicitly is always taken (a bad input fails on its own job).
            if jt is None or explicit or jt.accepts(path):
                return self.job_type
            sniffs = jt.files is not None and jt.files.sniff is not None  # else no head read
            return self.job_type if sniffs and jt.accepts(path, _read_head(path)) else None
        ext = os.path.splitext(path)[1].lower()
        if ext not in self.by_ext:
            found = self.registry.type_for_file(path)
            self.by_ext[ext] = found.name if found else None
        if self.by_ext[ext] is not None:
            return self.by_ext[ext]
        if not self.registry.sniffs:
            return None
        found = self.registry.type_for_file(path, _read_head(path))
        return found.name if found else None


def type_taking(path: str, registry: Registry) -> str | None:
    """The job type a folder enqueued without one would send the file ``path`` to: by
    its name, else (when some type sniffs) by its head. Raises OSError when the head
    cannot be read."""
    return _Chooser(registry, None)(path, explicit=False)


def scan_paths(
    paths: Sequence[str],
    job_type: str | None,
    recursive: bool = True,
    *,
    registry: Registry,
) -> _Scan:
    """Walk ``paths`` (blocking: run it in a thread). Files in walk order, names sorted,
    each with the job type it goes to (``job_type``, or the automatic one when None)."""
    scan = _Scan()
    choose = _Chooser(registry, job_type)
    seen_files: set[tuple[int, int]] = set()
    seen_dirs: set[tuple[int, int]] = set()

    def take(path: str, st: os.stat_result, explicit: bool) -> None:
        scan.found += 1
        if (st.st_dev, st.st_ino) in seen_files:
            scan.skip("same_file", path)
            return
        seen_files.add((st.st_dev, st.st_ino))
        try:
            chosen = choose(path, explicit)
        except OSError:
            scan.skip("unreadable", path)
            return
        if chosen is None:
            scan.skip("unsupported" if job_type is None else "not_accepted", path)
            return
        scan.files.append(_Candidate(os.path.realpath(path), st.st_size, explicit, chosen))

    def walk(top: str, st: os.stat_result) -> None:
        stack = [(top, st)]
        while stack:
            folder, fst = stack.pop()
            if (fst.st_dev, fst.st_ino) in seen_dirs:
                scan.skip("same_folder", folder)
                continue
            seen_dirs.add((fst.st_dev, fst.st_ino))
            try:
                with os.scandir(folder) as it:
                    entries = sorted(it, key=lambda e: e.name)
            except OSError:
                scan.skip("unreadable", folder)
                continue
            subdirs = []
            for entry in entries:
                try:
                    est = entry.stat(follow_symlinks=True)
                except FileNotFoundError:
                    scan.skip("missing", entry.path)  # a dangling symlink
                    continue
                except OSError:
                    scan.skip("unreadable", entry.path)
                    continue
                if stat.S_ISDIR(est.st_mode):
                    if recursive:
                        subdirs.append((entry.path, est))
                    else:
                        scan.skip("subfolder", entry.path)
                elif not stat.S_ISREG(est.st_mode):
                    scan.skip("not_regular", entry.path)
                else:
                    take(entry.path, est, explicit=False)
            stack.extend(reversed(subdirs))  # depth first, in name order

    for raw in paths:
        path = os.path.abspath(os.path.expanduser(raw))
        try:
            st = os.stat(path)
        except FileNotFoundError:
            scan.skip("missing", path)
            continue
        except OSError:
            scan.skip("unreadable", path)
            continue
        if stat.S_ISDIR(st.st_mode):
            walk(path, st)
        elif stat.S_ISREG(st.st_mode):
            take(path, st, explicit=True)
        else:
            scan.skip("not_regular", path)
    return scan
