"""Enqueue files and folders: scan, dedupe by content hash, write one batch in chunks.

``enqueue_paths`` is what ``jobtui enqueue DIR``, ``jobtui run DIR`` and the
console's drop/paste use (through ``OperatorAPI.enqueue_paths``):

* Folders are walked recursively (``recursive``), following symlinks; a directory
  is entered once per ``(st_dev, st_ino)``, so symlink loops end. For ``pdf.*`` job
  types only ``*.pdf`` files (any case) are taken from folders; a file named
  explicitly is always taken, so a bad input shows as an error on its own job.
* Files are hashed (SHA-256, streamed) in a thread pool, never on the event loop;
  ``on_progress(done, total)`` follows the hashing. One content is one job: a
  symlink or a copy reached twice is skipped (``same_file`` / ``same_content``).
* The job's dedupe key is ``jobtui.engine.api.dedupe_key(job_type, sha256, parameters)``;
  a key already in the store (queued, running or finished) is reported as a
  duplicate with its status and not enqueued again, unless ``force`` (then the key
  gets a unique suffix). The store's unique dedupe key makes two enqueuers running
  at once safe: for each key exactly one insert wins.
* Files are hashed largest first and their jobs written as they are hashed, in
  chunks that grow from ``FIRST_CHUNK`` to ``CHUNK`` with one bulk insert each, all
  in one batch: a running engine starts on the first ones while the rest are hashed.
  The batch record is written last, with the number of jobs created.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import os
import stat
import time
from collections import Counter, deque
from collections.abc import AsyncGenerator, Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from jobtui.engine.models import Batch, new_id

if TYPE_CHECKING:
    from jobtui.engine.api import OperatorAPI

CHUNK = 1000  # jobs per bulk insert
FIRST_CHUNK = 16  # the first insert: small, so work can start while the rest is hashed
HASH_THREADS = 4  # hashlib releases the GIL on large updates; I/O overlaps too
HASH_BLOCK = 1 << 20
EXAMPLES_PER_REASON = 3

#: reason -> what the summary says
REASONS = {
    "not_pdf": "not PDF",
    "unreadable": "unreadable",
    "missing": "missing",
    "not_regular": "not a regular file",
    "same_file": "same file reached twice",
    "same_content": "copy of another file",
    "same_folder": "folder reached twice",
    "subfolder": "subfolder (not recursive)",
}


@dataclass
class PathEnqueueReport:
    batch_id: str | None
    job_ids: list[str] = field(default_factory=list)
    found: int = 0  # files considered (named, or met in folders)
    duplicates: dict[str, str] = field(default_factory=dict)  # dedupe_key -> existing status
    duplicate_paths: dict[str, str] = field(default_factory=dict)  # dedupe_key -> path
    #: every file taken (copies of one content included) -> its job's dedupe key
    keys: dict[str, str] = field(default_factory=dict)
    skipped: dict[str, int] = field(default_factory=dict)  # reason -> count
    skipped_examples: dict[str, list[str]] = field(default_factory=dict)  # reason -> paths
    hashed: int = 0
    duration_s: float = 0.0

    @property
    def queued(self) -> int:
        return len(self.job_ids)

    def summary_line(self) -> str:
        """One line for the terminal, e.g. ``12 files: 9 queued in batch 3f2a…, 2 already
        completed, 1 skipped (1 not PDF)``."""
        parts = [f"{self.found} file{'s' if self.found != 1 else ''}: {self.queued} queued"]
        if self.batch_id and self.queued:
            parts[0] += f" in batch {self.batch_id[:12]}"
        for status, n in sorted(Counter(self.duplicates.values()).items()):
            word = {"pending": "already queued", "processing": "already running"}.get(
                status, f"already {status}"
            )
            parts.append(f"{n} {word}")
        total_skipped = sum(self.skipped.values())
        if total_skipped:
            detail = ", ".join(f"{n} {REASONS.get(r, r)}" for r, n in sorted(self.skipped.items()))
            parts.append(f"{total_skipped} skipped ({detail})")
        return ", ".join(parts)


@dataclass
class _Candidate:
    path: str  # absolute, symlinks resolved
    size: int
    explicit: bool  # named by the caller (not found in a folder)
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


def _wanted(job_type: str) -> Callable[[str], bool]:
    if job_type.startswith("pdf."):
        return lambda name: name.lower().endswith(".pdf")
    return lambda name: True


def scan_paths(paths: Sequence[str], job_type: str, recursive: bool = True) -> _Scan:
    """Walk ``paths`` (blocking: run it in a thread). Files in walk order, names sorted."""
    scan = _Scan()
    wanted = _wanted(job_type)
    seen_files: set[tuple[int, int]] = set()
    seen_dirs: set[tuple[int, int]] = set()

    def take(path: str, st: os.stat_result, explicit: bool) -> None:
        scan.found += 1
        if (st.st_dev, st.st_ino) in seen_files:
            scan.skip("same_file", path)
            return
        seen_files.add((st.st_dev, st.st_ino))
        scan.files.append(_Candidate(os.path.realpath(path), st.st_size, explicit))

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
                elif not wanted(entry.name):
                    scan.found += 1
                    scan.skip("not_pdf", entry.path)
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


def hash_file(path: str) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(HASH_BLOCK):
            h.update(block)
    return h.hexdigest()


async def _hashed_in_order(
    files: Sequence[_Candidate], scan: _Scan, on_progress: Callable[[int, int], None] | None
) -> AsyncGenerator[_Candidate, None]:
    """The candidates, hashed in threads (a bounded number at once), in their order;
    the unreadable are dropped (unless named explicitly) and counted in ``scan``."""
    loop = asyncio.get_running_loop()
    total = len(files)
    done = 0
    if on_progress:
        on_progress(0, total)
    with ThreadPoolExecutor(HASH_THREADS, thread_name_prefix="jobtui-hash") as pool:
        ahead: deque[tuple[_Candidate, asyncio.Future[str]]] = deque()
        todo = iter(files)
        try:
            while True:
                while len(ahead) < HASH_THREADS * 4:  # bounded: not 10,000 futures
                    c = next(todo, None)
                    if c is None:
                        break
                    ahead.append((c, loop.run_in_executor(pool, hash_file, c.path)))
                if not ahead:
                    return
                c, fut = ahead.popleft()
                try:
                    c.sha256 = await fut
                    keep = True
                except FileNotFoundError:
                    scan.skip("missing", c.path)  # deleted since the scan
                    keep = False
                except OSError:
                    keep = c.explicit  # its job will fail FILE_UNREADABLE, visibly
                    if not keep:
                        scan.skip("unreadable", c.path)
                done += 1
                if on_progress:
                    on_progress(done, total)
                if keep:
                    yield c
        finally:
            for _, fut in ahead:
                fut.cancel()


def _default_batch_name(paths: Sequence[str], job_type: str) -> str:
    """The folder's (or file's) name when one path was given, else the job type."""
    if len(paths) == 1:
        name = os.path.basename(os.path.expanduser(paths[0]).rstrip("/"))
        if name:
            return name
    return job_type


async def enqueue_paths(
    api: OperatorAPI,
    paths: Sequence[str],
    *,
    job_type: str = "pdf.transcribe",
    parameters: dict[str, Any] | None = None,
    force: bool = False,
    recursive: bool = True,
    batch_name: str | None = None,
    on_progress: Callable[[int, int], None] | None = None,
    batch_id: str | None = None,
) -> PathEnqueueReport:
    """Scan ``paths``, dedupe by content, enqueue one job per new content in one batch
    (``batch_id``, or a new id)."""
    from jobtui.engine.api import dedupe_key

    jt = api.registry.get(job_type)
    model = jt.params_model if jt is not None else None
    t0 = time.monotonic()
    params = {k: v for k, v in (parameters or {}).items() if k not in ("path", "sha256")}
    scan = await asyncio.to_thread(scan_paths, list(paths), job_type, recursive)
    # Largest first: the batch ends sooner when the long documents start early. Hashed
    # in that order and written in chunks that start small, so with an engine running
    # (jobtui run, the console) the first documents start while the rest are hashed.
    # The sort is stable: among copies of one content (one size) walk order is kept,
    # and the first copy met wins.
    files = sorted(scan.files, key=lambda c: -c.size)

    batch_id = batch_id or new_id()
    report = PathEnqueueReport(batch_id=None, found=scan.found)

    async def write(chunk: list[_Candidate]) -> None:
        plist, keys = [], []
        for c in chunk:
            p = {**params, "path": c.path}
            key = None
            if c.sha256 is not None:
                p["sha256"] = c.sha256
                key = dedupe_key(job_type, c.sha256, p, model)
                if force:
                    key = f"{key}:force-{new_id()[:12]}"
                key_of_hash[c.sha256] = key
                report.keys[c.path] = key
            plist.append(p)
            keys.append(key)
        res = await api.enqueue(
            job_type, plist, dedupe_keys=keys, make_batch=False, batch_id=batch_id
        )
        report.job_ids.extend(res.job_ids)
        report.duplicates.update(res.duplicates)
        path_of = dict(zip(keys, (c.path for c in chunk), strict=True))
        report.duplicate_paths.update({k: path_of[k] for k in res.duplicates if k in path_of})

    by_hash: set[str] = set()
    key_of_hash: dict[str, str] = {}
    copies: list[_Candidate] = []
    chunk: list[_Candidate] = []
    size = min(FIRST_CHUNK, CHUNK)
    async with contextlib.aclosing(_hashed_in_order(files, scan, on_progress)) as hashed:
        async for c in hashed:
            if c.sha256 is not None:
                if c.sha256 in by_hash:
                    scan.skip("same_content", c.path)
                    copies.append(c)
                    continue
                by_hash.add(c.sha256)
            chunk.append(c)
            if len(chunk) >= size:
                await write(chunk)
                chunk, size = [], min(size * 4, CHUNK)
    if chunk:
        await write(chunk)
    for c in copies:  # each copy points at the job of the content it repeats
        if c.sha256 in key_of_hash:
            report.keys[c.path] = key_of_hash[c.sha256]
    report.hashed = len(files)
    if report.job_ids:
        # Written last, so its total is exact (job states remain the source of truth).
        await api.store.create_batch(
            Batch(
                batch_id=batch_id,
                name=batch_name or _default_batch_name(paths, job_type),
                total_jobs=len(report.job_ids),
                job_type=job_type,
            )
        )
        report.batch_id = batch_id
    report.skipped = dict(scan.skipped)
    report.skipped_examples = scan.examples
    report.duration_s = round(time.monotonic() - t0, 3)
    return report
