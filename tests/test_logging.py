"""Operator logging: levels, JSON lines, the worker's per-job lines, and warnings that
reach the console instead of being lost."""

from __future__ import annotations

import argparse
import io
import json
import logging
import warnings
from collections.abc import Iterator
from pathlib import Path

import pytest

from jobtui.engine.api import OperatorAPI
from jobtui.engine.config import Settings
from jobtui.engine.logsetup import configure
from jobtui.engine.models import Job
from jobtui.engine.registry import default_registry
from jobtui.engine.store.sqlite import SQLiteStore
from jobtui.engine.worker import Engine
from jobtui.tui.cli import build_parser, settings_from_args
from tests.util import wait_for

FAST = {"poll_interval": 0.05, "heartbeat_interval": 0.1, "watchdog_interval": 0.1}


@pytest.fixture
def restore_logging() -> Iterator[None]:
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    jl = logging.getLogger("jobtui").level
    yield
    root.handlers[:] = handlers
    root.setLevel(level)
    logging.getLogger("jobtui").setLevel(jl)
    logging.captureWarnings(False)


def _lines(buf: io.StringIO) -> list[dict[str, object]]:
    return [json.loads(line) for line in buf.getvalue().splitlines() if line.strip()]


async def test_worker_logs_one_json_line_per_job_start_and_end(
    tmp_path: Path, restore_logging: None
) -> None:
    buf = io.StringIO()
    configure("info", "json", stream=buf)
    store = SQLiteStore(tmp_path / "q.db")
    await store.open()
    eng = Engine(store, default_registry(), Settings(output_dir=tmp_path / "o", **FAST))
    await eng.start()
    try:
        ok = Job(job_type="noop", parameters={"path": "/data/a.pdf"})
        bad = Job(job_type="sleep", parameters={"seconds": "x"}, max_attempts=1)
        await store.insert_jobs([ok, bad])
        eng.wake()

        async def done() -> bool:
            jobs = [await store.get_job(j.job_id) for j in (ok, bad)]
            return all(j is not None and j.status.terminal for j in jobs)

        await wait_for(done, what="both jobs terminal")
        await wait_for(
            lambda: _async(sum('"job.finished"' in x for x in buf.getvalue().splitlines()) == 2)
        )
    finally:
        await eng.stop(grace=1)
        await store.close()
    records = [r for r in _lines(buf) if r.get("event") in ("job.started", "job.finished")]
    by_job = {(r["job_id"], r["event"]): r for r in records}
    start = by_job[(ok.job_id, "job.started")]
    assert start["level"] == "info" and start["job_type"] == "noop"
    assert start["path"] == "/data/a.pdf" and start["attempt"] == 1
    end = by_job[(ok.job_id, "job.finished")]
    assert end["outcome"] == "completed" and isinstance(end["duration_s"], float)
    assert end["path"] == "/data/a.pdf" and end["logger"] == "jobtui.engine.worker"
    assert by_job[(bad.job_id, "job.finished")]["outcome"] == "failed INVALID_PARAMETERS"
    assert len(records) == 4  # exactly one line at each start and end


async def _async(value: object) -> object:
    return value


def test_text_format_and_levels(restore_logging: None) -> None:
    buf = io.StringIO()
    configure("warning", "text", stream=buf)
    logging.getLogger("jobtui.engine.worker").info("hidden")
    logging.getLogger("jobtui.engine.worker").warning("shown %d", 1)
    assert "hidden" not in buf.getvalue()
    assert "WARNING jobtui.engine.worker: shown 1" in buf.getvalue()
    configure("debug", "text", stream=buf)
    logging.getLogger("jobtui.x").debug("detail")
    logging.getLogger("httpx").info("HTTP Request: POST ...")  # third-party chatter stays out
    assert "detail" in buf.getvalue() and "HTTP Request" not in buf.getvalue()


def test_python_warnings_are_logged(restore_logging: None) -> None:
    buf = io.StringIO()
    configure("warning", "json", stream=buf)
    with warnings.catch_warnings():
        warnings.simplefilter("always")
        warnings.warn("old API", DeprecationWarning, stacklevel=1)
    (rec,) = _lines(buf)
    assert rec["logger"] == "py.warnings" and "old API" in str(rec["message"])


def test_every_command_takes_log_options() -> None:
    parser = build_parser()

    def commands(p: argparse.ArgumentParser, name: str) -> dict[str, argparse.ArgumentParser]:
        out = {name: p}
        for a in p._actions:
            if isinstance(a, argparse._SubParsersAction):
                for sub_name, sub in a.choices.items():
                    out |= commands(sub, f"{name} {sub_name}".strip())
        return out

    found = commands(parser, "")
    assert {"worker", "run", "enqueue", "jobs", "doctor", "purge", "models pull"} <= set(found)
    for name, p in found.items():
        assert {"--log-level", "--log-format"} <= set(p._option_string_actions), name
    for argv in (["worker"], ["jobs"], []):
        args = parser.parse_args([*argv, "--log-level", "DEBUG", "--log-format", "json"])
        settings = settings_from_args(args)
        assert (settings.log_level, settings.log_format) == ("debug", "json")
    # given before the command, not reset by the command's own (suppressed) default
    args = parser.parse_args(["--log-level", "error", "jobs"])
    assert settings_from_args(args).log_level == "error"


def test_log_level_from_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("JOBTUI_LOG_LEVEL", "error")
    monkeypatch.setenv("JOBTUI_LOG_FORMAT", "json")
    settings = settings_from_args(build_parser().parse_args(["jobs"]))
    assert (settings.log_level, settings.log_format) == ("error", "json")


def test_bad_log_level_is_a_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exc:
        build_parser().parse_args(["jobs", "--log-level", "loud"])
    assert exc.value.code == 2 and "--log-level" in capsys.readouterr().err


async def test_warnings_while_the_console_runs_become_notifications(
    tmp_path: Path, restore_logging: None
) -> None:
    from jobtui.engine.logsetup import divert
    from jobtui.tui.app import JobtuiApp
    from jobtui.tui.console import notifier

    buf = io.StringIO()
    configure("warning", "text", stream=buf)
    store = SQLiteStore(tmp_path / "q.db")
    await store.open()
    try:
        app = JobtuiApp(
            api=OperatorAPI(store, default_registry()), engine=None, settings=Settings()
        )
        async with app.run_test(size=(120, 40)) as pilot:
            with divert(notifier(app)):
                with warnings.catch_warnings():
                    warnings.simplefilter("always")
                    warnings.warn("disk nearly full", ResourceWarning, stacklevel=1)
                logging.getLogger("jobtui.engine.worker").warning("claim failed (boom)")
                logging.getLogger("jobtui.engine.worker").warning("claim failed (boom)")
                await pilot.pause()
                texts = [n.message for n in app._notifications]
            assert any("disk nearly full" in t for t in texts), texts
            assert sum("claim failed" in t for t in texts) == 1, texts  # repeats held back
        assert buf.getvalue() == ""  # nothing written over the screen
        logging.getLogger("jobtui.x").warning("after")
        assert "after" in buf.getvalue()  # the terminal handler is back
    finally:
        await store.close()


def test_jobtui_worker_logs_json_lines_per_job(tmp_path: Path) -> None:
    """The real command: `jobtui worker` with JOBTUI_LOG_FORMAT=json on a queue with one job."""
    import os
    import queue
    import signal
    import subprocess
    import sys
    import threading

    from jobtui.tui.cli import main

    db = str(tmp_path / "q.db")
    (tmp_path / "a.txt").write_text("x")
    assert main(["enqueue", str(tmp_path / "a.txt"), "--type", "noop", "--store", db]) == 0
    root = Path(__file__).resolve().parents[1]
    env = {**os.environ, "PYTHONPATH": str(root), "JOBTUI_LOG_FORMAT": "json"}
    argv = ["worker", "--store", db, "--types", "noop", "--poll-interval", "0.1"]
    proc = subprocess.Popen(
        [sys.executable, "-m", "jobtui.tui.cli", *argv],
        env=env,
        stderr=subprocess.PIPE,
        text=True,
    )
    lines: queue.Queue[str] = queue.Queue()
    assert proc.stderr is not None
    threading.Thread(target=lambda: [lines.put(ln) for ln in proc.stderr], daemon=True).start()
    events: list[dict[str, object]] = []
    try:
        while not any(e.get("event") == "job.finished" for e in events):
            line = lines.get(timeout=60)  # the next line, or fail: the worker is stuck
            events.append(json.loads(line))  # every line on stderr is JSON
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(60)
    while not lines.empty():  # after SIGTERM: engine/signals.py says so in plain text
        line = lines.get()
        if line.startswith("{"):
            events.append(json.loads(line))
    said = [str(e["message"]) for e in events if e.get("event") == "status"]
    assert said[0].startswith("embedded store") and said[1].startswith("worker ")
    assert "running jobs get" in said[-1]  # after SIGTERM
    started, finished = (e for e in events if str(e.get("event")).startswith("job."))
    assert started["event"] == "job.started" and started["level"] == "info"
    assert finished["outcome"] == "completed" and finished["job_type"] == "noop"
    assert finished["path"] == str((tmp_path / "a.txt").resolve())
    assert finished["job_id"] == started["job_id"] and "duration_s" in finished
