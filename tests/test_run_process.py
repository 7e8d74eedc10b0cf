"""``jobtui run`` as the whole process a shell starts (``python -m jobtui.tui``): it
ends without the interpreter's teardown (``launch.exit_now``), so these check from
outside that nothing is lost on the way out: the exit code tells the truth, the JSON
report is complete on stdout, every job's state and results are in the store file
and its outputs on disk, and multiprocessing's temporary folder is gone."""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
from pathlib import Path
from typing import Any

import pymupdf
import pytest

ROOT = Path(__file__).resolve().parents[1]


def _pdf(path: Path, pages: int) -> Path:
    doc = pymupdf.open()
    for i in range(pages):
        doc.new_page().insert_text((72, 72), f"Seite {i + 1}: Größe")
    doc.save(path)
    return path


def _run(tmp_path: Path, target: Path) -> tuple[int, dict[str, Any], str]:
    tmpdir = tmp_path / "tmp"
    tmpdir.mkdir()
    env = {**os.environ, "PYTHONPATH": str(ROOT), "TMPDIR": str(tmpdir)}
    cmd = [sys.executable, "-m", "jobtui.tui", "--store", str(tmp_path / "jobs.db"), "run"]
    cmd += [str(target), "--output", str(tmp_path / "out"), "--json", "--cpu-workers", "2"]
    proc = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)
    assert "Traceback" not in proc.stderr, proc.stderr
    # multiprocessing's folder (the fork server's socket) was removed on the way out
    assert list(tmpdir.iterdir()) == []
    return proc.returncode, json.loads(proc.stdout), proc.stderr


def _stored(db: Path) -> dict[str, tuple[str, dict[str, Any]]]:
    with sqlite3.connect(db) as conn:
        rows = conn.execute("SELECT job_id, status, doc FROM jobs").fetchall()
    return {job_id: (status, json.loads(doc)) for job_id, status, doc in rows}


@pytest.mark.slow
def test_run_process_exits_0_with_results_and_outputs_durable(tmp_path: Path) -> None:
    docs = tmp_path / "in"
    docs.mkdir()
    _pdf(docs / "long.pdf", 150)  # split into parts
    _pdf(docs / "short.pdf", 2)
    code, report, _ = _run(tmp_path, docs)
    assert code == 0
    assert report["counts"] == {"completed": 2} and report["file_counts"] == {"completed": 2}
    stored = _stored(tmp_path / "jobs.db")
    assert {s for s, _ in stored.values()} == {"completed"}
    for job in report["jobs"]:
        status, doc = stored[job["job_id"]]
        assert doc["results"]["pages"] in (150, 2)
        pages = json.loads(Path(doc["results"]["json_path"]).read_text("utf-8"))["pages"]
        assert [p["text"].strip() for p in pages] == [
            f"Seite {i}: Größe" for i in range(1, len(pages) + 1)
        ]
        assert Path(doc["results"]["markdown_path"]).read_text("utf-8").startswith("# ")


@pytest.mark.slow
def test_run_process_exits_1_when_a_job_fails_and_the_failure_is_stored(
    tmp_path: Path,
) -> None:
    docs = tmp_path / "in"
    docs.mkdir()
    _pdf(docs / "good.pdf", 3)
    (docs / "bad.pdf").write_bytes(b"%PDF-1.7\n" + bytes(range(256)) * 8)
    code, report, _ = _run(tmp_path, docs)
    assert code == 1
    assert report["counts"] == {"completed": 1, "failed": 1}
    stored = _stored(tmp_path / "jobs.db")
    assert sorted(s for s, _ in stored.values()) == ["completed", "failed"]
    failed = next(doc for s, doc in stored.values() if s == "failed")
    assert failed["error"]["code"] == "PDF_CORRUPT"
