"""The SQLite store's retention statements: purge old finished jobs and old log lines.

Functions here run on the store thread with its connection (``SQLiteStore`` calls
them through ``SQLiteThread.read`` / ``write``). The shape of a purge:

* **Dry run**: one read (one snapshot) counts the jobs, their log lines and the
  batches that would be left empty.
* **Real run**: repeated short write transactions, each deleting at most
  ``CHUNK`` jobs (picked by ``rowid`` from the partial ``jobs_finished`` index) and
  their log lines; then one transaction deletes the batches left with no jobs.
  Other processes' writers wait at most one chunk for the lock.

Both use the same conditions (``_scope``), so with no writes in between a real run
deletes exactly what the dry run counted.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from jobtui.engine.models import JobStatus
from jobtui.engine.store._sqlite_rows import marks, to_us

#: Jobs per write transaction (their log lines go in the same one).
CHUNK = 500
#: Log lines per write transaction when expiring logs by age.
LOG_CHUNK = 5000


def _scope(
    statuses: Sequence[JobStatus], older_than: datetime, batch_id: str | None, alias: str = ""
) -> tuple[str, list[Any]]:
    """The purged jobs: these statuses, finished before ``older_than`` (in a batch).

    The explicit ``IS NOT NULL`` lets SQLite use the partial ``jobs_finished`` index
    (status, completed_at), and keeps ``NOT (...)`` of this clause true, not NULL,
    for a job without ``completed_at``.
    """
    a = f"{alias}." if alias else ""
    sql = (
        f"{a}status IN ({marks(statuses)}) AND {a}completed_at IS NOT NULL AND {a}completed_at < ?"
    )
    params: list[Any] = [s.value for s in statuses] + [to_us(older_than)]
    if batch_id is not None:
        sql += f" AND {a}batch_id = ?"
        params.append(batch_id)
    return sql, params


def _batch_candidates(
    statuses: Sequence[JobStatus], older_than: datetime, batch_id: str | None
) -> tuple[str, list[Any]]:
    """Batches a purge may remove (once they hold no jobs): those with a purged job,
    and those created before ``older_than`` (an empty batch a crash left behind)."""
    scope, params = _scope(statuses, older_than, batch_id)
    sql = f"(b.batch_id IN (SELECT batch_id FROM jobs WHERE {scope}) OR b.created_at < ?)"
    params = [*params, to_us(older_than)]
    if batch_id is not None:
        sql += " AND b.batch_id = ?"
        params.append(batch_id)
    return sql, params


def count(
    db: sqlite3.Connection,
    statuses: Sequence[JobStatus],
    older_than: datetime,
    batch_id: str | None,
) -> tuple[int, int, int]:
    """(jobs, log lines, batches) a purge would delete, from one snapshot."""
    scope, params = _scope(statuses, older_than, batch_id)
    jobs = db.execute(f"SELECT count(*) FROM jobs WHERE {scope}", params).fetchone()[0]
    logs = db.execute(
        f"SELECT count(*) FROM logs WHERE job_id IN (SELECT job_id FROM jobs WHERE {scope})",
        params,
    ).fetchone()[0]
    cand, cand_params = _batch_candidates(statuses, older_than, batch_id)
    kept, kept_params = _scope(statuses, older_than, None, alias="j")
    # Left empty: no job of the batch survives (every one of them is purged).
    batches = db.execute(
        f"SELECT count(*) FROM batches b WHERE {cand} AND NOT EXISTS"
        f" (SELECT 1 FROM jobs j WHERE j.batch_id = b.batch_id AND NOT ({kept}))",
        [*cand_params, *kept_params],
    ).fetchone()[0]
    return int(jobs), int(logs), int(batches)


def delete_chunk(
    db: sqlite3.Connection,
    statuses: Sequence[JobStatus],
    older_than: datetime,
    batch_id: str | None,
) -> tuple[int, int, list[str]]:
    """Inside one write transaction: delete up to ``CHUNK`` purged jobs and their log
    lines. Returns (jobs, log lines, batch ids touched); 0 jobs means done."""
    scope, params = _scope(statuses, older_than, batch_id)
    rows = db.execute(
        f"SELECT rowid, job_id, batch_id FROM jobs WHERE {scope} LIMIT {CHUNK}", params
    ).fetchall()
    if not rows:
        return 0, 0, []
    rowids = [r[0] for r in rows]
    job_ids = [r[1] for r in rows]
    logs = db.execute(f"DELETE FROM logs WHERE job_id IN ({marks(job_ids)})", job_ids).rowcount
    jobs = db.execute(f"DELETE FROM jobs WHERE rowid IN ({marks(rowids)})", rowids).rowcount
    touched = sorted({r[2] for r in rows if r[2] is not None})
    return int(jobs), int(logs), touched


def delete_empty_batches(
    db: sqlite3.Connection, touched: Sequence[str], older_than: datetime, batch_id: str | None
) -> int:
    """Inside one write transaction: delete the touched batches, and those created
    before ``older_than``, that hold no jobs now."""
    deleted = 0
    no_jobs = "NOT EXISTS (SELECT 1 FROM jobs j WHERE j.batch_id = batches.batch_id)"
    for i in range(0, len(touched), CHUNK):
        part = list(touched[i : i + CHUNK])
        deleted += db.execute(
            f"DELETE FROM batches WHERE batch_id IN ({marks(part)}) AND {no_jobs}", part
        ).rowcount
    sql = f"DELETE FROM batches WHERE created_at < ? AND {no_jobs}"
    params: list[Any] = [to_us(older_than)]
    if batch_id is not None:
        sql += " AND batch_id = ?"
        params.append(batch_id)
    return deleted + int(db.execute(sql, params).rowcount)


def count_logs(db: sqlite3.Connection, older_than: datetime) -> int:
    return int(
        db.execute("SELECT count(*) FROM logs WHERE ts < ?", (to_us(older_than),)).fetchone()[0]
    )


def delete_logs_chunk(db: sqlite3.Connection, older_than: datetime) -> int:
    """Inside one write transaction: delete up to ``LOG_CHUNK`` log lines older than
    ``older_than`` (picked from the ``logs_ts`` index). 0 means done."""
    return int(
        db.execute(
            "DELETE FROM logs WHERE id IN (SELECT id FROM logs WHERE ts < ? LIMIT ?)",
            (to_us(older_than), LOG_CHUNK),
        ).rowcount
    )


#: Pages handed back to the file system per write transaction (4 KiB each: 16 MB).
VACUUM_PAGES = 4096


def vacuum_step(db: sqlite3.Connection) -> bool:
    """Inside one write transaction: return up to ``VACUUM_PAGES`` free pages to the
    file system (``auto_vacuum = INCREMENTAL``). True while free pages remain."""
    db.execute(f"PRAGMA incremental_vacuum({VACUUM_PAGES})").fetchall()
    return int(db.execute("PRAGMA freelist_count").fetchone()[0]) > 0
