"""``jobtui doctor`` on a healthy embedded store and on broken setups: unreachable
URI (no password printed), a missing index, a missing Tesseract language."""

from __future__ import annotations

import json
import os
import socket
import stat
from datetime import timedelta
from pathlib import Path

import pytest

from jobtui.engine.config import Settings
from jobtui.engine.doctor import FAIL, OK, WARN, Check, clock_check, output_check, store_checks
from jobtui.engine.models import Job, utcnow
from jobtui.engine.registry import default_registry
from jobtui.engine.store._sqlite_schema import SCHEMA_VERSION
from jobtui.engine.store.mongo import MongoStore
from jobtui.engine.store.sqlite import SQLiteStore
from jobtui.tui.cli import main


def _lines(out: str) -> dict[str, str]:
    """check name -> its whole line."""
    return {line[5:17].strip(): line for line in out.splitlines() if line.strip()}


def _fake_tesseract(tmp_path: Path, langs: list[str]) -> None:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    script = bin_dir / "tesseract"
    listing = "\\n".join(langs)
    script.write_text(
        "#!/bin/sh\n"
        'if [ "$1" = "--version" ]; then echo "tesseract 5.0.0-fake"; exit 0; fi\n'
        f"printf 'List of available languages in \"/fake/\" ({len(langs)}):\\n{listing}\\n'\n",
        encoding="utf-8",
    )
    script.chmod(script.stat().st_mode | stat.S_IXUSR)
    os.environ["PATH"] = f"{bin_dir}{os.pathsep}{os.environ['PATH']}"


@pytest.fixture(autouse=True)
def _restore_path(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("PATH", os.environ["PATH"])  # undone after each test
    for var in ("MONGODB_URI", "JOBTUI_CONFIG", "JOBTUI_INPUT_ROOTS", "JOBTUI_STORE"):
        monkeypatch.delenv(var, raising=False)
    # With the audio extra installed, a healthy setup has its speech model in place
    # (else doctor warns that the first job downloads it).
    model = tmp_path / "speech-model"
    model.mkdir()
    (model / "model.bin").write_bytes(b"x")
    (model / "config.json").write_text("{}")
    monkeypatch.setenv("JOBTUI_AUDIO_MODEL", str(model))


def test_healthy_embedded_store(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    _fake_tesseract(tmp_path, ["deu", "eng", "osd"])
    code = main(["doctor", "--store", str(tmp_path / "q.db"), "--output", str(tmp_path / "out")])
    out = capsys.readouterr().out
    assert code == 0, out
    lines = _lines(out)
    assert set(lines) >= {
        "store",
        "changes",
        "indexes",
        "job types",
        "unserved",
        "tesseract",
        "output",
        "input roots",
    }
    assert all(line.startswith(("ok ", "warn ")) for line in lines.values()), out
    assert (
        lines["store"].startswith("ok   store        sqlite:")
        and f"(schema {SCHEMA_VERSION}" in lines["store"]
    )
    assert "pdf.transcribe" in lines["job types"]
    assert lines["input roots"].startswith("warn") and "--input-root" in lines["input roots"]


def test_input_roots_set_is_ok_and_json_output(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    _fake_tesseract(tmp_path, ["deu", "eng"])
    code = main(
        [
            "doctor",
            "--json",
            "--store",
            str(tmp_path / "q.db"),
            "--output",
            str(tmp_path / "out"),
            "--input-root",
            str(tmp_path),
        ]
    )
    data = json.loads(capsys.readouterr().out)
    assert code == 0 and data["verdict"] == OK
    roots = next(c for c in data["checks"] if c["name"] == "input roots")
    assert roots["verdict"] == OK and str(tmp_path) in roots["detail"]


def test_unreachable_uri_fails_without_the_password(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    _fake_tesseract(tmp_path, ["deu", "eng"])
    with socket.socket() as s:  # a port nothing listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    uri = f"mongodb://alice:hunter2secret@127.0.0.1:{port}/?serverSelectionTimeoutMS=200"
    code = main(["doctor", "--mongodb-uri", uri, "--output", str(tmp_path)])
    captured = capsys.readouterr()
    assert code != 0
    assert "hunter2secret" not in captured.out + captured.err
    store = _lines(captured.out)["store"]
    assert store.startswith("FAIL store") and "STORE_UNREACHABLE" in store and "alice:***@" in store


async def test_missing_mongo_index_fails() -> None:
    store = MongoStore.in_memory()
    await store.open()
    try:
        reg = default_registry()
        checks = {c.name: c for c in await store_checks(store, Settings(), reg)}
        assert checks["indexes"].verdict == OK
        assert checks["store"].verdict == OK and "server 5." in checks["store"].detail
        assert checks["changes"].verdict == WARN  # mongomock: no change streams, polling
        await store._jobs.drop_index("batch_id_1_status_1")
        checks = {c.name: c for c in await store_checks(store, Settings(), reg)}
        assert checks["indexes"].verdict == FAIL
        assert "batch_id 1, status 1" in checks["indexes"].detail and checks["indexes"].fix
    finally:
        await store.close()


async def test_missing_sqlite_index_fails(tmp_path: Path) -> None:
    store = SQLiteStore(tmp_path / "q.db")
    await store.open()
    try:
        await store._t.write(store._count, "DROP INDEX jobs_batch")
        checks = {c.name: c for c in await store_checks(store, Settings(), default_registry())}
        assert checks["indexes"].verdict == FAIL and "jobs_batch" in checks["indexes"].detail
    finally:
        await store.close()


async def test_pending_type_nobody_serves_is_named(tmp_path: Path) -> None:
    store = SQLiteStore(tmp_path / "q.db")
    await store.open()
    try:
        await store.insert_jobs([Job(job_type="mystery.type")])
        checks = {c.name: c for c in await store_checks(store, Settings(), default_registry())}
        assert checks["unserved"].verdict == WARN
        assert "mystery.type (1 pending)" in checks["unserved"].detail
        assert "--types mystery.type" in checks["unserved"].fix
    finally:
        await store.close()


def test_missing_tesseract_language_fails_naming_it(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    _fake_tesseract(tmp_path, ["eng"])
    code = main(["doctor", "--store", str(tmp_path / "q.db"), "--output", str(tmp_path / "o")])
    out = capsys.readouterr().out
    assert code == 1
    line = _lines(out)["tesseract"]
    assert line.startswith("FAIL tesseract    language 'deu' missing")
    assert "apt-get install tesseract-ocr-deu" in line
    # Other languages can be asked for explicitly.
    code = main(
        [
            "doctor",
            "--languages",
            "eng",
            "--store",
            str(tmp_path / "q.db"),
            "--output",
            str(tmp_path / "o"),
        ]
    )
    assert code == 0 and _lines(capsys.readouterr().out)["tesseract"].startswith("ok")


def test_clock_skew_verdicts() -> None:
    now = utcnow()
    assert clock_check(now + timedelta(seconds=0.4), now, 30).verdict == OK
    assert clock_check(now - timedelta(seconds=3), now, 30).verdict == WARN
    bad = clock_check(now + timedelta(seconds=11), now, 30)  # > 30 s / 3
    assert bad.verdict == FAIL and "+11.00s" in bad.detail and "NTP" in bad.fix
    assert clock_check(None, now, 30).verdict == WARN


def test_output_dir_checks(tmp_path: Path) -> None:
    assert output_check(tmp_path).verdict == OK
    assert "will be created" in output_check(tmp_path / "a" / "b").detail
    (tmp_path / "file").write_text("x")
    assert output_check(tmp_path / "file").verdict == FAIL
    if os.geteuid() != 0:  # root may write anywhere
        locked = tmp_path / "locked"
        locked.mkdir(mode=0o500)
        assert output_check(locked).verdict == FAIL


def test_line_format() -> None:
    assert (
        Check("store", OK, "sqlite:/x (schema 1)").line()
        == "ok   store        sqlite:/x (schema 1)"
    )
    line = Check("tesseract", FAIL, "language 'deu' missing", "apt-get install x").line()
    assert line == "FAIL tesseract    language 'deu' missing — apt-get install x"


async def test_doctor_on_a_wire_server(nx_uri: str, tmp_path: Path) -> None:
    """The MongoDB path over a real connection (nx-27017): version, change streams,
    indexes, and a measured clock skew (same machine: well under 2 s)."""
    from jobtui.engine.doctor import run_checks

    settings = Settings(
        mongodb_uri=nx_uri,
        database=f"doctor_{os.getpid()}",
        output_dir=tmp_path,
        input_roots=[tmp_path],
    )
    checks = {c.name: c for c in await run_checks(settings, default_registry())}
    assert checks["store"].verdict == OK and "MongoDB" in checks["store"].detail
    assert checks["indexes"].verdict == OK, checks["indexes"].detail
    assert checks["changes"].verdict in (OK, WARN)
    assert checks["clock"].verdict in (OK, WARN)  # WARN only if the server gives no time
    if checks["clock"].verdict == OK:
        assert "skew" in checks["clock"].detail
