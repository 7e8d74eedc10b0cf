"""The docs' Python samples run, so the docs cannot drift from the code."""

from __future__ import annotations

import json
import re
import subprocess
import sys
import threading
from http.server import ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from engine.store.sqlite import SQLiteStore

ROOT = Path(__file__).resolve().parents[1]


def python_blocks(page: str) -> list[str]:
    text = (ROOT / "docs" / page).read_text(encoding="utf-8")
    return re.findall(r"```python\n(.*?)```", text, flags=re.S)


def test_handler_guide_samples_run_and_print_what_they_say() -> None:
    blocks = python_blocks("handlers.md")
    # the first two blocks form a program; the plug-in snippet needs its own package
    program = blocks[0] + "\n" + blocks[1]
    out = subprocess.run([sys.executable, "-c", program], capture_output=True, text=True,
                         cwd=ROOT, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip().splitlines()[-1] == "{'words': 4}"


async def test_operations_guide_samples(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """docs/operations.md: the signature check and the receiver work against the engine's
    real webhook sender; every `jobtui` command line (sh blocks and the systemd unit)
    parses; the doctor example runs and prints the checks and verdicts shown."""
    import asyncio
    import shlex

    from engine.webhooks import Delivery, Webhooks
    from engine.webhooks import sign as engine_sign
    from tui.cli import build_parser

    text = (ROOT / "docs" / "operations.md").read_text(encoding="utf-8")
    verify_src, receiver_src = python_blocks("operations.md")
    ns: dict[str, Any] = {"__name__": "docs_sample"}
    exec(compile(verify_src + "\n" + receiver_src, "operations.md", "exec"), ns)  # noqa: S102
    body = b'{"event":"job.finished"}'
    assert ns["verify"]("k", body, engine_sign("k", body))
    assert not ns["verify"]("k", body + b" ", engine_sign("k", body))
    assert not ns["verify"]("k", body, None)

    # The receiver, served locally, takes the engine's signed deliveries and refuses
    # unsigned ones (a 401 is final: one attempt).
    server = ThreadingHTTPServer(("127.0.0.1", 0), ns["Receiver"])
    threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True).start()
    try:
        url = f"http://127.0.0.1:{server.server_address[1]}/"
        hooks = Webhooks(SQLiteStore(tmp_path / "unused.db"), backoff=0.01)
        payload = json.dumps({"event": "job.finished", "job_id": "j1", "status": "completed"})
        good = Delivery(url, payload.encode(), "job.finished", secret=ns["SECRET"])
        assert await hooks.deliver(good) and good.attempts == 1
        bad = Delivery(url, payload.encode(), "job.finished", secret="wrong")
        assert not await hooks.deliver(bad) and bad.attempts == 1
    finally:
        server.shutdown()
        server.server_close()
    assert "job.finished j1 completed" in capsys.readouterr().out

    # Every jobtui command in the page parses with the real CLI.
    commands = [ln for block in re.findall(r"```(?:sh|ini)\n(.*?)```", text, flags=re.DOTALL)
                for ln in block.splitlines()
                if ln.startswith(("jobtui ", "ExecStart="))]
    assert len(commands) >= 4
    parser = build_parser()
    for line in commands:
        argv = shlex.split(line.removeprefix("ExecStart="))[1:]
        parser.parse_args(argv)

    # The doctor example, with its /tmp paths moved into tmp_path, prints what is shown.
    doctor = next(c for c in commands if c.startswith("jobtui doctor"))
    argv = shlex.split(doctor.replace("/tmp", str(tmp_path)))[1:]
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "tui.cli", *argv, cwd=ROOT,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    stdout, stderr = await asyncio.wait_for(proc.communicate(), 120)
    assert proc.returncode == 0, stdout.decode() + stderr.decode()
    got = [ln[:17] for ln in stdout.decode().splitlines()]
    shown = re.search(r"```text\n(ok   store.*?)```", text, flags=re.DOTALL)
    assert shown is not None
    assert got == [ln[:17] for ln in shown.group(1).splitlines()]
