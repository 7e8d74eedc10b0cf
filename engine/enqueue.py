"""Enqueue files and folders: scan, dedupe by content hash, write one batch in chunks.

``enqueue_paths`` is what ``jobtui enqueue DIR``, ``jobtui run DIR`` and the
console's drop/paste use (through ``OperatorAPI.enqueue_paths``):

* Folders are walked recursively (``recursive``), following symlinks; a directory
  is entered once per ``(st_dev, st_ino)``, so symlink loops end.
* Each file goes to the job type that declared it (``JobType.files``). Without a job
  type (``job_type=None``, what a dropped folder does) every file goes to its
  automatic type (``Registry.type_for_file``: by extension, else by the first 512
  bytes), so a folder of documents and scans becomes one batch of two job types. With a
  job type, a folder gives only the files that type accepts (a type that declares no
  files takes every file); a file named explicitly is then always taken, so a bad
  input shows as an error on its own job. Files no type takes are counted skipped.
* Files are hashed (SHA-256, streamed) in a thread pool, never on the event loop;
  ``on_progress(done, total)`` follows the hashing. One content is one job: a
  symlink or a copy reached twice is skipped (``same_file`` / ``same_content``).
* ``parameters`` go to every job; without a job type, a key goes only to the types
  whose parameters model declares it (a key none declares goes to all, and fails
  visibly as ``INVALID_PARAMETERS`` where it is not allowed).
* The job's dedupe key is ``dedupe_key(job_type, sha256, parameters)``;
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
import json
import os
import time
from collections import Counter, deque
from collections.abc import AsyncGenerator, Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

from pydantic import BaseModel

from jobtui.engine.ids import short_id
from jobtui.engine.models import Batch, Job, JobFilter, new_id
from jobtui.engine.params import PER_FILE_KEYS, check_parameters, normalised_parameters
from jobtui.engine.registry import JobType, Registry
from jobtui.engine.scan import REASONS, _Candidate, _Scan, scan_paths
from jobtui.engine.store.base import StoreError

__all__ = [
    "REASONS",
    "Enqueuer",
    "PathEnqueueReport",
    "dedupe_key",
    "enqueue_paths",
    "hash_file",
    "scan_paths",
]

if TYPE_CHECKING:
    from jobtui.engine.store.base import Store

CHUNK = 1000  # jobs per bulk insert
# The first insert: one job, the largest file's, written as soon as it is hashed, so
# the engine starts on it while the rest are hashed (then 4, 16, 64... jobs at once).
# With 16, 'jobtui run' on 50 documents claimed its first job ~50-80 ms later (the other
# 15 hashed and their futures awaited one by one first; bench/startup.py, 8 pairs).
FIRST_CHUNK = 1
HASH_THREADS = 4  # hashlib releases the GIL on large updates; I/O overlaps too
HASH_BLOCK = 1 << 20
HASH_GROUP_FILES = 32  # files a thread hashes in one call
HASH_GROUP_BYTES = 8 << 20  # or this much of them


class Enqueued(Protocol):
    job_ids: list[str]
    duplicates: dict[str, str]  # dedupe_key -> existing status


class Enqueuer(Protocol):
    """What ``enqueue_paths`` needs of its caller: the operator API, seen from below.
    (This module must not import ``jobtui.engine.api``, which imports it.)"""

    @property
    def store(self) -> Store: ...

    @property
    def registry(self) -> Registry: ...

    async def enqueue(
        self,
        job_type: str,
        parameters: Sequence[dict[str, Any]],
        *,
        dedupe_keys: Sequence[str | None] | None = None,
        make_batch: bool = True,
        batch_id: str | None = None,
        output_dir: str | None = None,
    ) -> Enqueued: ...

    async def all_jobs(self, flt: JobFilter | None = None, page_size: int = 500) -> list[Job]: ...


def dedupe_key(
    job_type: str,
    content_hash: str,
    parameters: dict[str, Any],
    params_model: type[BaseModel] | None = None,
) -> str:
    """The key that makes the same input with the same options one job. With the
    type's ``params_model`` the options are normalised first (``engine/params.py``):
    whatever front end enqueued, equal settings give equal keys."""
    return f"{job_type}:{content_hash}:{options_hash(parameters, params_model)}"


def options_hash(parameters: dict[str, Any], params_model: type[BaseModel] | None = None) -> str:
    """The options' part of a dedupe key: per-file keys (path, sha256) play no part."""
    opts = normalised_parameters(params_model, parameters)
    return hashlib.sha256(json.dumps(opts, sort_keys=True, default=str).encode()).hexdigest()[:12]


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
        completed, 1 skipped (1 no job type takes it)``."""
        parts = [f"{self.found} file{'s' if self.found != 1 else ''}: {self.queued} queued"]
        if self.batch_id and self.queued:
            parts[0] += f" in batch {short_id(self.batch_id)}"
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


def hash_file(path: str) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(HASH_BLOCK):
            h.update(block)
    return h.hexdigest()


def _hash_group(paths: Sequence[str]) -> list[str | OSError]:
    """Each file's hash, or the error reading it: one thread's call for several files."""
    out: list[str | OSError] = []
    for path in paths:
        try:
            out.append(hash_file(path))
        except OSError as exc:
            out.append(exc)
    return out


def _hash_groups(files: Sequence[_Candidate]) -> Iterator[list[_Candidate]]:
    """The candidates in order, in groups a thread hashes in one call: the first file
    alone (its job can start while the rest are hashed), then up to HASH_GROUP_FILES
    files or HASH_GROUP_BYTES bytes. A folder of small documents costs a hand-over
    between threads per group, not per file (~0.1 s of the engine's process in 400)."""
    group: list[_Candidate] = []
    size = 0
    for i, c in enumerate(files):
        group.append(c)
        size += c.size
        if i == 0 or len(group) >= HASH_GROUP_FILES or size >= HASH_GROUP_BYTES:
            yield group
            group, size = [], 0
    if group:
        yield group


async def _hashed_in_order(
    files: Sequence[_Candidate], scan: _Scan, on_progress: Callable[[int, int], None] | None
) -> AsyncGenerator[_Candidate, None]:
    """The candidates, hashed in threads (a bounded number of groups at once), in
    their order; the unreadable are dropped (unless named explicitly) and counted in
    ``scan``."""
    loop = asyncio.get_running_loop()
    total = len(files)
    done = 0
    if on_progress:
        on_progress(0, total)
    with ThreadPoolExecutor(HASH_THREADS, thread_name_prefix="jobtui-hash") as pool:
        ahead: deque[tuple[list[_Candidate], asyncio.Future[list[str | OSError]]]] = deque()
        groups = _hash_groups(files)
        try:
            while True:
                while len(ahead) < HASH_THREADS * 2:  # bounded: not 10,000 futures
                    group = next(groups, None)
                    if group is None:
                        break
                    paths = [c.path for c in group]
                    ahead.append((group, loop.run_in_executor(pool, _hash_group, paths)))
                if not ahead:
                    return
                group, fut = ahead.popleft()
                for c, sha in zip(group, await fut, strict=True):
                    if isinstance(sha, str):
                        c.sha256 = sha
                        keep = True
                    elif isinstance(sha, FileNotFoundError):
                        scan.skip("missing", c.path)  # deleted since the scan
                        keep = False
                    else:
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


def _default_batch_name(paths: Sequence[str], job_types: Sequence[str]) -> str:
    """The folder's (or file's) name when one path was given, else the job type(s)."""
    if len(paths) == 1:
        name = os.path.basename(os.path.expanduser(paths[0]).rstrip("/"))
        if name:
            return name
    return ", ".join(job_types) or "files"


def _fits(model: type[BaseModel], key: str) -> bool:
    """Whether ``model`` takes the parameter ``key`` (declared, or extras allowed)."""
    return key in model.model_fields or model.model_config.get("extra") == "allow"


class _Params:
    """The parameters each job type's jobs get (see the module's docstring)."""

    def __init__(self, registry: Registry, params: dict[str, Any], explicit: bool) -> None:
        self.registry = registry
        self.params = params
        self.explicit = explicit
        # The types a file can go to without a named type: a key that none of them
        # declares goes to all of them (and is refused where extras are forbidden).
        self.models = [
            jt.params_model for jt in registry.types() if jt.files is not None and jt.files.auto
        ]
        self._cache: dict[str, tuple[dict[str, Any], str, bool]] = {}

    def of(self, job_type: str) -> tuple[dict[str, Any], str, bool]:
        """``(parameters, path parameter, takes sha256)`` for ``job_type``."""
        if job_type not in self._cache:
            jt: JobType | None = self.registry.get(job_type)
            if jt is None:
                self._cache[job_type] = (self.params, "path", True)
            else:
                model = jt.params_model
                params = {
                    k: v
                    for k, v in self.params.items()
                    if self.explicit or _fits(model, k) or not any(_fits(m, k) for m in self.models)
                }
                self._cache[job_type] = (params, jt.path_param, _fits(model, "sha256"))
        return self._cache[job_type]


async def enqueue_paths(
    api: Enqueuer,
    paths: Sequence[str],
    *,
    job_type: str | None = None,
    parameters: dict[str, Any] | None = None,
    force: bool = False,
    recursive: bool = True,
    batch_name: str | None = None,
    on_progress: Callable[[int, int], None] | None = None,
    batch_id: str | None = None,
    output_dir: str | None = None,
) -> PathEnqueueReport:
    """Scan ``paths``, dedupe by content, enqueue one job per new content in one batch
    (``batch_id``, or a new id); each file under ``job_type``, or (None) under the type
    that declared its kind. Without a job type the parameters are checked here against
    every automatic type they go to (``ConfigError("INVALID_PARAMETERS")``, nothing
    written); ``OperatorAPI.enqueue_paths`` checks them for a named type."""
    t0 = time.monotonic()
    registry = api.registry
    params = {k: v for k, v in (parameters or {}).items() if k not in PER_FILE_KEYS}
    params_of = _Params(registry, params, explicit=job_type is not None)
    if job_type is None and params:
        for jt in registry.types():
            if jt.files is not None and jt.files.auto:
                check_parameters(jt, params_of.of(jt.name)[0])
    scan = await asyncio.to_thread(scan_paths, list(paths), job_type, recursive, registry=registry)
    # Largest first: the batch ends sooner when the long documents start early. Hashed
    # in that order and written in chunks that start small, so with an engine running
    # (jobtui run, the console) the first documents start while the rest are hashed.
    # The sort is stable: among copies of one content (one size) walk order is kept,
    # and the first copy met wins.
    files = sorted(scan.files, key=lambda c: -c.size)

    batch_id = batch_id or new_id()
    report = PathEnqueueReport(batch_id=None, found=scan.found)

    used: dict[str, None] = {}  # the job types of the jobs written, in order

    async def write(chunk: list[_Candidate]) -> None:
        by_type: dict[str, list[_Candidate]] = {}
        for c in chunk:
            by_type.setdefault(c.job_type, []).append(c)
        for jtype, cands in by_type.items():
            base, path_param, takes_sha = params_of.of(jtype)
            jt = registry.get(jtype)
            model = jt.params_model if jt is not None else None
            plist, keys = [], []
            # Every file of a type has the same options (its path and hash are no
            # options): their share of the key is computed once, not per file.
            opt_hash = ""
            for c in cands:
                p = {**base, path_param: c.path}
                key = None
                if c.sha256 is not None:
                    if takes_sha:
                        p["sha256"] = c.sha256
                    if not opt_hash:  # validated as the file's own (a real sha256 in it)
                        opts = {k: v for k, v in p.items() if k != path_param}
                        opt_hash = options_hash(opts, model)
                    key = f"{jtype}:{c.sha256}:{opt_hash}"
                    if force:
                        key = f"{key}:force-{new_id()[:12]}"
                    key_of_hash[c.sha256] = key
                    report.keys[c.path] = key
                plist.append(p)
                keys.append(key)
            res = await api.enqueue(
                jtype,
                plist,
                dedupe_keys=keys,
                make_batch=False,
                batch_id=batch_id,
                output_dir=output_dir,
            )
            if res.job_ids:
                used[jtype] = None
            report.job_ids.extend(res.job_ids)
            report.duplicates.update(res.duplicates)
            path_of = dict(zip(keys, (c.path for c in cands), strict=True))
            report.duplicate_paths.update({k: path_of[k] for k in res.duplicates if k in path_of})

    by_hash: set[str] = set()
    key_of_hash: dict[str, str] = {}
    copies: list[_Candidate] = []
    chunk: list[_Candidate] = []
    size = min(FIRST_CHUNK, CHUNK)
    try:
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
    except StoreError as exc:
        raise _interrupted(exc, report, len(files)) from None
    if report.duplicates:
        # Jobs an earlier, interrupted enqueue wrote (a full disk) have no batch
        # record yet: write it now, so every job belongs to a batch again.
        await _record_interrupted_batches(api, list(report.duplicates), paths)
    for c in copies:  # each copy points at the job of the content it repeats
        if c.sha256 in key_of_hash:
            report.keys[c.path] = key_of_hash[c.sha256]
    report.hashed = len(files)
    if report.job_ids:
        # Written last, so its total is exact (job states remain the source of truth).
        await api.store.create_batch(
            Batch(
                batch_id=batch_id,
                name=batch_name or _default_batch_name(paths, list(used)),
                total_jobs=len(report.job_ids),
                # One type's batch names it; a mixed one has several (its jobs say).
                job_type=next(iter(used)) if len(used) == 1 else None,
            )
        )
        report.batch_id = batch_id
    report.skipped = dict(scan.skipped)
    report.skipped_examples = scan.examples
    report.duration_s = round(time.monotonic() - t0, 3)
    return report


def _interrupted(exc: StoreError, report: PathEnqueueReport, total: int) -> StoreError:
    """The enqueue stopped part-way (chunks are committed as files are hashed): say
    how far it got, and that running the same command again finishes it."""
    done = len(report.job_ids)
    if not done:
        return StoreError(exc.code, f"{exc.message}; nothing was queued")
    return StoreError(
        exc.code,
        f"{exc.message}; {done} of {total} files were queued before it stopped (they run "
        "as usual). Run the same command again once the store can be written: it queues "
        "the rest and records the batch of these",
    )


async def _record_interrupted_batches(api: Enqueuer, keys: list[str], paths: Sequence[str]) -> None:
    existing = await api.store.find_by_dedupe_keys(keys)
    for batch_id in {j.batch_id for j in existing.values() if j.batch_id}:
        if await api.store.get_batch(batch_id) is not None:
            continue
        jobs = await api.all_jobs(JobFilter(batch_id=batch_id))
        types = sorted({j.job_type for j in jobs})
        await api.store.create_batch(
            Batch(
                batch_id=batch_id,
                name=f"{_default_batch_name(paths, types)} (interrupted, completed later)",
                total_jobs=len(jobs),
                job_type=types[0] if len(types) == 1 else None,
                created_at=min(j.created_at for j in jobs),
            ),
            placeholder=True,  # its own enqueuer, still at work, would write over it
        )
