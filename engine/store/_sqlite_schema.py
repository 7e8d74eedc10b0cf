"""The SQLite store's file format: schema, migrations, and the checks made at open.

Split out of ``sqlite.py`` so that the store module holds only the verbs. The
format decisions live here:

* ``PRAGMA application_id`` = ``APPLICATION_ID`` marks a file as ours; a file with
  tables but another id is refused (``STORE_NOT_OURS``) and never written to.
* ``PRAGMA user_version`` is the schema version; ``MIGRATIONS[i]`` moves version
  ``i`` to ``i + 1``. A file newer than we know is refused (``STORE_TOO_NEW``).
* How rows encode models (timestamps, the JSON ``doc``): ``_sqlite_rows.py``.
"""

from __future__ import annotations

import contextlib
import os
import random
import sqlite3
import time
from pathlib import Path

from jobtui.engine.store import _sqlite_wakeups
from jobtui.engine.store.base import StoreError

#: "JOBT" as a big-endian 32-bit integer; stamped into the SQLite header.
APPLICATION_ID = 0x4A4F4254
#: Files up to this size get ``PRAGMA quick_check`` at open.
QUICK_CHECK_MAX_BYTES = 512 * 1024 * 1024
_OPEN_RETRIES = 8

# Version 1: the initial schema. Each step runs inside one BEGIN IMMEDIATE
# transaction together with the user_version bump, so a crash mid-migration
# leaves the previous version intact.
_V1 = """
CREATE TABLE jobs (
    job_id           TEXT PRIMARY KEY,
    job_type         TEXT NOT NULL,
    status           TEXT NOT NULL,
    priority         INTEGER NOT NULL DEFAULT 0,
    created_at       INTEGER NOT NULL,
    run_after        INTEGER,
    cancel_requested INTEGER NOT NULL DEFAULT 0,
    batch_id         TEXT,
    dedupe_key       TEXT UNIQUE,
    lease_owner      TEXT,
    lease_token      TEXT,
    lease_expires_at INTEGER,
    timeout_at       INTEGER,
    attempts         INTEGER NOT NULL DEFAULT 0,
    max_attempts     INTEGER NOT NULL DEFAULT 3,
    started_at       INTEGER,
    completed_at     INTEGER,
    updated_at       INTEGER,
    worker_id        TEXT,
    doc              TEXT NOT NULL DEFAULT '{}'
);
-- Claim: per job type, in claim order, over pending rows only (the index stays
-- as small as the queue, and claim is O(log n) whatever the table holds). The
-- trailing columns make the pick covering: jobs waiting for run_after are skipped
-- without reading their rows, and pending_job_types is an index-only scan.
CREATE INDEX jobs_claim
    ON jobs (job_type, priority DESC, created_at, job_id, run_after, cancel_requested, status)
    WHERE status = 'pending';
-- Batch counts (GROUP BY batch_id, status) as an index-only scan, including the
-- first start / last completion the batch table shows; also a batch's jobs of one
-- status in page order.
CREATE INDEX jobs_batch
    ON jobs (batch_id, status, created_at, job_id, started_at, completed_at);
-- Operator pages: keyset over (created_at, job_id), alone or within one batch,
-- status or job type. Only jobs_status_created changes after insert; the others
-- cost nothing on claim and finish. The status one also serves the watchdog
-- (processing rows are few: the slots) and count_jobs; there is no index on
-- lease_expires_at, so heartbeats touch no index.
CREATE INDEX jobs_created ON jobs (created_at, job_id);
CREATE INDEX jobs_batch_created ON jobs (batch_id, created_at, job_id);
CREATE INDEX jobs_type_created ON jobs (job_type, created_at, job_id);
CREATE INDEX jobs_status_created ON jobs (status, created_at, job_id);

CREATE TABLE batches (
    batch_id   TEXT PRIMARY KEY,
    created_at INTEGER NOT NULL,
    doc        TEXT NOT NULL DEFAULT '{}'
);
CREATE INDEX batches_created ON batches (created_at, batch_id);

CREATE TABLE logs (
    id      INTEGER PRIMARY KEY,
    job_id  TEXT NOT NULL,
    ts      INTEGER NOT NULL,
    seq     INTEGER NOT NULL DEFAULT 0,
    level   TEXT NOT NULL DEFAULT 'info',
    message TEXT NOT NULL DEFAULT ''
);
CREATE INDEX logs_job ON logs (job_id, ts, seq);

CREATE TABLE workers (
    worker_id    TEXT PRIMARY KEY,
    heartbeat_at INTEGER NOT NULL,
    doc          TEXT NOT NULL DEFAULT '{}'
);
"""

# Version 2: retention. Purge picks finished jobs of a status by completion time
# (partial: pending and running rows, and the claim path, never touch it), and
# expiring log lines by age walks their timestamps.
_V2 = """
CREATE INDEX jobs_finished ON jobs (status, completed_at) WHERE completed_at IS NOT NULL;
CREATE INDEX logs_ts ON logs (ts);
"""

# Version 3: wake-ups between processes, one counter per channel (_sqlite_wakeups.py).
_V3 = _sqlite_wakeups.SCHEMA

# Version 4: the work of a batch's jobs in the unit they report (pages, seconds), for
# the console's ETA. VIRTUAL columns computed from ``doc``: every write that changes
# the progress or the results keeps them true, and nothing is stored twice. A job
# that reported no unit but returned ``results.pages`` counts in pages. The partial
# index holds only jobs that report a unit, and covers the per-batch sums, so they
# never parse a document at read time (parsing 40,000 finished jobs' documents took
# ~460 ms here, the index scan ~15 ms); keeping it costs a claim nothing and a
# finish ~20 us.
_V4 = """
ALTER TABLE jobs ADD COLUMN unit TEXT GENERATED ALWAYS AS (coalesce(
    json_extract(doc, '$.progress.unit'),
    iif(json_type(doc, '$.results.pages') IN ('integer', 'real'), 'pages', NULL)
)) VIRTUAL;
ALTER TABLE jobs ADD COLUMN units_total REAL GENERATED ALWAYS AS (iif(
    json_extract(doc, '$.progress.unit') IS NULL,
    json_extract(doc, '$.results.pages'),
    json_extract(doc, '$.progress.total')
)) VIRTUAL;
ALTER TABLE jobs ADD COLUMN units_done REAL GENERATED ALWAYS AS (
    json_extract(doc, '$.progress.done')
) VIRTUAL;
CREATE INDEX jobs_units ON jobs (batch_id, status, unit, units_done, units_total)
    WHERE unit IS NOT NULL;
"""

# Version 5: the claim of ``jobtui run`` (scoped to its batch) in claim order within
# the batch. Without it each claim listed every pending job of the batch (jobs_batch)
# and sorted them: ~5 ms a claim with 10,000 pending, so a folder's run cost grew with
# the square of its size. Partial like jobs_claim: only pending rows, never a finished
# one, and an O(log n) pick whatever the batch or the queue holds.
_V5 = """
CREATE INDEX jobs_claim_batch
    ON jobs (batch_id, job_type, priority DESC, created_at, job_id, run_after, cancel_requested, status)
    WHERE status = 'pending';
"""

# Version 6: the batches whose ``batch.finished`` announcement is due. Engines ask for
# them after each recount (at most every 0.25 s while jobs end); without an index the
# question read every batch's document: ~15 ms at 10,000 batches, inside a write
# transaction, so other processes' writers waited too. Partial: it holds only the due
# ones (none, most of the time).
_V6 = """
CREATE INDEX batches_announce_due ON batches (batch_id)
    WHERE json_extract(doc, '$.announce') = 'due';
"""

MIGRATIONS: list[str] = [_V1, _V2, _V3, _V4, _V5, _V6]
SCHEMA_VERSION = len(MIGRATIONS)


# -- opening a file -------------------------------------------------------------


def _corrupt(path: Path, exc: BaseException) -> StoreError:
    return StoreError(
        "STORE_CORRUPT",
        f"{path} is not a usable SQLite database (corrupt or not a database file: {exc})",
    )


def connect(path: Path, busy_timeout_s: float) -> sqlite3.Connection:
    """Open ``path``, check it is ours (or empty), migrate it, configure WAL.

    Nothing is written before the checks pass: a foreign, corrupt or newer file
    is left byte-for-byte as it was.
    """
    try:
        # The store holds job parameters (paths, passwords of encrypted PDFs): a new
        # folder is its owner's alone, and so is a new file (SQLite gives its -wal
        # and -shm files the database file's mode). Existing ones are left as they
        # are (a shared store may be shared on purpose); doctor warns.
        path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    except OSError as exc:
        readonly = _readonly(path)
        if readonly:
            raise StoreError("STORE_READONLY", f"cannot create {path.parent}: {readonly}") from exc
        raise StoreError("STORE_UNREACHABLE", f"cannot create {path.parent}: {exc}") from exc
    readonly = _readonly(path)
    if readonly:
        raise StoreError(
            "STORE_READONLY",
            f"{path}: {readonly}; jobtui writes to its store (leases, results), so it "
            "needs a writable file in a writable folder",
        )
    _check_left_wal(path)
    if path.exists() and not os.access(path, os.R_OK | os.W_OK):
        raise StoreError("STORE_UNREACHABLE", f"{path} is not readable and writable")
    try:
        with contextlib.suppress(FileExistsError):
            os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))
    except OSError as exc:
        raise StoreError("STORE_UNREACHABLE", f"cannot create {path}: {exc}") from exc
    try:
        conn = sqlite3.connect(
            str(path), timeout=busy_timeout_s, isolation_level=None, check_same_thread=True
        )
    except sqlite3.Error as exc:
        raise StoreError("STORE_UNREACHABLE", f"cannot open {path}: {exc}") from exc
    try:
        conn.execute(f"PRAGMA busy_timeout = {int(busy_timeout_s * 1000)}")
        # Processes opening a fresh file together race for the switch to WAL and
        # the first migration; SQLite answers some of those lock waits with an
        # immediate SQLITE_BUSY (no busy handler), so the loser simply retries.
        for attempt in range(_OPEN_RETRIES):
            try:
                _prepare(conn, path)
                break
            except sqlite3.OperationalError as exc:
                if not _is_busy(exc) or attempt == _OPEN_RETRIES - 1:
                    raise
                time.sleep(0.02 * 2**attempt + random.random() * 0.02)
    except StoreError:
        conn.close()
        raise
    except sqlite3.DatabaseError as exc:
        conn.close()
        msg = str(exc).lower()
        if "readonly" in msg or ("unable to open" in msg and _readonly(path)):
            why = _readonly(path) or "SQLite could not write to it"
            raise StoreError("STORE_READONLY", f"cannot use {path}: {why} ({exc})") from exc
        if _is_busy(exc) or "unable to open" in msg:
            raise StoreError("STORE_UNREACHABLE", f"cannot use {path}: {exc}") from exc
        raise _corrupt(path, exc) from exc
    return conn


def _check_left_wal(path: Path) -> None:
    """A missing or empty store next to a non-empty -wal: the file was deleted (or
    replaced by an empty one) while a process used it, and the WAL is that file's.
    SQLite would answer "disk I/O error"; say what happened instead."""
    wal = Path(f"{path}-wal")
    try:
        if wal.stat().st_size == 0 or (path.exists() and path.stat().st_size > 0):
            return
    except OSError:
        return
    raise StoreError(
        "STORE_REPLACED",
        f"{path} is missing or empty but {wal.name} next to it is not: the store file "
        "was deleted or replaced while a process used it. `jobtui doctor` names the "
        f"processes still using the old file; once none is left, move {wal.name} and "
        f"{Path(f'{path}-shm').name} away (they belong to the deleted file)",
    )


def _readonly(path: Path) -> str:
    """Why the store cannot be written ("" when nothing says so). A healthy store on a
    read-only mount or in a read-only folder is STORE_READONLY, never STORE_CORRUPT
    (whose answer, restore from backup, would be wrong)."""
    folder = path.parent
    with contextlib.suppress(OSError):
        if os.statvfs(folder).f_flag & os.ST_RDONLY:
            return "it is on a read-only filesystem"
    if path.exists() and not os.access(path, os.W_OK):
        return "the file is read-only"
    if folder.exists() and not os.access(folder, os.W_OK | os.X_OK):
        return "its folder is read-only (SQLite creates its -wal and -shm files there)"
    return ""


def _is_busy(exc: BaseException) -> bool:
    msg = str(exc).lower()
    return isinstance(exc, sqlite3.OperationalError) and ("locked" in msg or "busy" in msg)


def _prepare(conn: sqlite3.Connection, path: Path) -> None:
    """Checks (read only), then WAL and the connection's settings, then migrations."""
    _check(conn, path)
    if not _header(conn)[2]:
        # A new file: freed pages go back to the file system when a purge asks
        # (PRAGMA incremental_vacuum); only possible before the first table exists.
        conn.execute("PRAGMA auto_vacuum = INCREMENTAL")
    mode = conn.execute("PRAGMA journal_mode = WAL").fetchone()[0]
    if str(mode).lower() != "wal":  # e.g. a network filesystem; say so, do not guess
        raise StoreError("STORE_UNREACHABLE", f"{path}: cannot use WAL mode (got {mode})")
    # NORMAL in WAL mode: a commit survives a process crash; a power cut may
    # lose the last transactions but never corrupts the file.
    conn.execute("PRAGMA synchronous = NORMAL")
    # The hot pages of 100,000 jobs (claim index, recent rows) stay in memory.
    conn.execute("PRAGMA cache_size = -32768")
    conn.execute("PRAGMA temp_store = MEMORY")
    # After a checkpoint, shrink a WAL that a big enqueue blew up.
    conn.execute("PRAGMA journal_size_limit = 67108864")
    migrate(conn, path)


def _header(conn: sqlite3.Connection) -> tuple[int, int, int]:
    # One statement, so one snapshot: read as three, another process's first
    # migration could commit in between (no application_id yet, but tables), and a
    # fresh file would look like another application's.
    app_id, version, tables = conn.execute(
        "SELECT (SELECT application_id FROM pragma_application_id),"
        " (SELECT user_version FROM pragma_user_version),"
        " (SELECT count(*) FROM sqlite_master)"
    ).fetchone()
    return int(app_id), int(version), int(tables)


def _check(conn: sqlite3.Connection, path: Path) -> None:
    """Refuse a file that is corrupt, not ours, or from a newer release."""
    try:
        app_id, version, tables = _header(conn)
        if tables and path.stat().st_size <= QUICK_CHECK_MAX_BYTES:
            # Reads every page once (~0.1 s at 100,000 jobs): a truncated or
            # scribbled-on file fails here, before anything writes to it, instead
            # of mid-claim. Bigger files skip it; corruption found later still
            # raises STORE_CORRUPT (see _sqlite_thread).
            problem = conn.execute("PRAGMA quick_check(1)").fetchone()[0]
            if problem != "ok":
                raise _corrupt(path, sqlite3.DatabaseError(problem))
    except sqlite3.DatabaseError as exc:
        msg = str(exc).lower()
        if _is_busy(exc) or "readonly" in msg or "unable to open" in msg:
            raise  # connect() retries a busy file, and tells read-only from unreachable
        raise _corrupt(path, exc) from exc
    _judge(path, app_id, version, tables)


def _judge(path: Path, app_id: int, version: int, tables: int) -> None:
    if app_id != APPLICATION_ID and (tables or app_id != 0 or version != 0):
        raise StoreError(
            "STORE_NOT_OURS",
            f"{path} is an SQLite database of another application "
            f"(application_id {app_id:#x}, not jobtui's {APPLICATION_ID:#x}); "
            "it was left untouched. Point jobtui at another file with --store.",
        )
    if version > SCHEMA_VERSION:
        raise StoreError(
            "STORE_TOO_NEW",
            f"{path} has jobtui schema version {version}; this jobtui knows up to "
            f"{SCHEMA_VERSION}. Upgrade jobtui; the file was left untouched.",
        )


def migrate(conn: sqlite3.Connection, path: Path) -> None:
    """Apply the missing migration steps, each in its own write transaction.

    Several processes may open a fresh file at once: the version is re-read
    under the write lock, so each step runs exactly once.
    """
    while True:
        conn.execute("BEGIN IMMEDIATE")
        try:
            app_id, version, tables = _header(conn)
            _judge(path, app_id, version, tables)
            if version >= SCHEMA_VERSION:
                conn.execute("COMMIT")
                return
            for stmt in _statements(MIGRATIONS[version]):
                conn.execute(stmt)
            conn.execute(f"PRAGMA application_id = {APPLICATION_ID}")
            conn.execute(f"PRAGMA user_version = {version + 1}")
            conn.execute("COMMIT")
        except BaseException:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            raise


def _statements(script: str) -> list[str]:
    """Split a migration script into statements (``executescript`` would commit)."""
    out: list[str] = []
    buf = ""
    for line in script.splitlines():
        if line.strip().startswith("--"):
            continue
        buf += line + "\n"
        if sqlite3.complete_statement(buf):
            out.append(buf.strip())
            buf = ""
    if buf.strip():
        out.append(buf.strip())
    return out
