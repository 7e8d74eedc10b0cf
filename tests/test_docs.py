"""The docs' Python samples run, so the docs cannot drift from the code."""

from __future__ import annotations

import json
import re
import subprocess
import sys
import threading
import time
from http.server import ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from jobtui.engine.store.sqlite import SQLiteStore

ROOT = Path(__file__).resolve().parents[1]


def python_blocks(page: str) -> list[str]:
    text = (ROOT / "docs" / page).read_text(encoding="utf-8")
    return re.findall(r"```python\n(.*?)```", text, flags=re.DOTALL)


def _named_blocks(page: str) -> dict[str, str]:
    """Fenced blocks whose first line is ``# <file name>``, by that name."""
    text = (ROOT / "docs" / page).read_text(encoding="utf-8")
    blocks = re.findall(r"```(?:python|toml)\n(.*?)```", text, flags=re.DOTALL)
    out = {}
    for block in blocks:
        first = block.splitlines()[0]
        if first.startswith("# ") and "." in first:
            out[first[2:].split()[0]] = block
    return out


def test_handler_guide_plugin_and_its_tests_run(tmp_path: Path) -> None:
    """docs/handlers.md: the plug-in module, its pyproject (pytest settings) and its
    tests with jobtui.engine.testing are written out as the guide shows them and the
    tests run, in a separate process, against this checkout."""
    import os

    files = _named_blocks("handlers.md")
    assert {"wordcount_plugin.py", "test_wordcount.py", "pyproject.toml"} <= set(files)
    for name in ("wordcount_plugin.py", "test_wordcount.py", "pyproject.toml"):
        (tmp_path / name).write_text(files[name], encoding="utf-8")
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(tmp_path), str(ROOT)])}
    out = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "test_wordcount.py"],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        env=env,
        timeout=600,
    )
    assert out.returncode == 0, out.stdout + out.stderr
    assert "3 passed" in out.stdout


def test_handler_guide_plugin_declares_what_the_guide_says() -> None:
    """The guide's register(): files, checks, retry policy; its entry point names it."""
    import asyncio
    import tomllib

    from jobtui.engine.checks import CheckContext
    from jobtui.engine.config import Settings
    from jobtui.engine.registry import Registry

    files = _named_blocks("handlers.md")
    ns: dict[str, Any] = {"__name__": "wordcount_plugin"}
    exec(compile(files["wordcount_plugin.py"], "handlers.md", "exec"), ns)  # noqa: S102
    reg = Registry()
    ns["register"](reg)
    jt = reg.get("text.wordcount")
    assert jt is not None and jt.params_model is ns["WordCountParams"]
    assert jt.files is not None and jt.files.extensions == {".wc"}
    assert (jt.max_attempts, jt.timeout) == (3, 60)
    found = reg.type_for_file("/inbox/Notes.WC")
    assert found is not None and found.name == "text.wordcount"
    lines = asyncio.run(jt.checks[0](CheckContext(Settings(), reg)))
    assert [c.verdict for c in lines] == ["ok"]
    project = tomllib.loads(files["pyproject.toml"])["project"]
    assert project["entry-points"]["jobtui.handlers"] == {"wordcount": "wordcount_plugin:register"}


async def test_operations_guide_samples(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """docs/operations.md: the signature check and the receiver work against the engine's
    real webhook sender; every `jobtui` command line (sh blocks and the systemd unit)
    parses; the doctor example runs and prints the checks and verdicts shown."""
    import asyncio
    import shlex

    from jobtui.engine.webhooks import Delivery, Webhooks
    from jobtui.engine.webhooks import sign as engine_sign
    from jobtui.tui.cli import build_parser

    text = (ROOT / "docs" / "operations.md").read_text(encoding="utf-8")
    verify_src, receiver_src = python_blocks("operations.md")
    ns: dict[str, Any] = {"__name__": "docs_sample"}
    exec(compile(verify_src + "\n" + receiver_src, "operations.md", "exec"), ns)  # noqa: S102
    body, secret, now = b'{"event":"job.finished"}', ns["SECRET"], int(time.time())

    def signed(ts: int, payload: bytes = body, key: str = secret) -> dict[str, str]:
        sig = engine_sign(key, "msg_1", ts, payload)
        return {"Webhook-Id": "msg_1", "Webhook-Timestamp": str(ts), "Webhook-Signature": sig}

    assert ns["verify"](secret, signed(now), body)
    assert not ns["verify"](secret, signed(now), body + b" ")  # body changed
    assert not ns["verify"](secret, signed(now, key="whsec_b3RoZXI="), body)  # other key
    assert not ns["verify"](secret, signed(now - 3600), body)  # a replay an hour later
    assert not ns["verify"](secret, {}, body)

    # The receiver, served locally, takes the engine's real signed deliveries (headers
    # as sent over HTTP) and refuses wrongly signed ones (a 401 is final: one attempt).
    server = ThreadingHTTPServer(("127.0.0.1", 0), ns["Receiver"])
    threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True).start()
    hooks = Webhooks(SQLiteStore(tmp_path / "unused.db"), backoff=0.01)
    try:
        url = f"http://127.0.0.1:{server.server_address[1]}/"
        payload = json.dumps({"event": "job.finished", "job_id": "j1", "status": "completed"})
        good = Delivery(url, payload.encode(), "job.finished", secret=secret)
        assert await hooks.deliver(good) and good.attempts == 1
        bad = Delivery(url, payload.encode(), "job.finished", secret="whsec_d3Jvbmc=")
        assert not await hooks.deliver(bad) and bad.attempts == 1
    finally:
        await hooks.stop()
        server.shutdown()
        server.server_close()
    assert "job.finished j1 completed" in capsys.readouterr().out

    # Every jobtui command in the page parses with the real CLI.
    commands = [
        ln
        for block in re.findall(r"```(?:sh|ini)\n(.*?)```", text, flags=re.DOTALL)
        for ln in block.splitlines()
        if ln.startswith(("jobtui ", "ExecStart="))
    ]
    assert len(commands) >= 4
    parser = build_parser()
    for line in commands:
        argv = shlex.split(line.removeprefix("ExecStart="))[1:]
        parser.parse_args(argv)

    # The doctor example, with its /tmp paths moved into tmp_path, prints what is shown.
    doctor = next(c for c in commands if c.startswith("jobtui doctor"))
    argv = shlex.split(doctor.replace("/tmp", str(tmp_path)))[1:]
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "jobtui.tui.cli",
        *argv,
        cwd=ROOT,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    stdout, stderr = await asyncio.wait_for(proc.communicate(), 120)
    assert proc.returncode == 0, stdout.decode() + stderr.decode()
    got = [ln[:17] for ln in stdout.decode().splitlines()]
    shown = re.search(r"```text\n(ok   store.*?)```", text, flags=re.DOTALL)
    assert shown is not None
    assert got == [ln[:17] for ln in shown.group(1).splitlines()]


def test_every_error_code_is_explained_in_troubleshooting() -> None:
    """A new code in the engine without its line in the docs fails here."""
    from jobtui.engine.models import ErrorCode

    page = (ROOT / "docs" / "troubleshooting.md").read_text(encoding="utf-8")
    source = "\n".join(p.read_text(encoding="utf-8") for p in (ROOT / "engine").rglob("*.py"))
    source += "\n".join(p.read_text(encoding="utf-8") for p in (ROOT / "tui").glob("*.py"))
    raised = set(re.findall(r'(?:StoreError|ConfigError)\(\s*"([A-Z_]+)"', source))
    raised |= set(re.findall(r'"(STORE_[A-Z_]+)"', source))
    # a processor's own codes: its ErrorCode-like class, NAME = "NAME" (media, image)
    raised |= set(re.findall(r'^\s+([A-Z][A-Z_]+) = "\1"', source, flags=re.MULTILINE))
    assert {"NOT_MEDIA", "NOT_AN_IMAGE"} <= raised  # the pattern still finds them
    codes = {c.value for c in ErrorCode} | raised
    missing = sorted(c for c in codes if f"`{c}`" not in page)
    assert not missing, f"error codes without an explanation: {missing}"


def _shell_lines(text: str) -> list[str]:
    lines = []
    for block in re.findall(r"```(?:sh|bash|console)\n(.*?)```", text, flags=re.DOTALL):
        for raw in block.splitlines():
            line = raw.split(" #")[0].strip().removesuffix("&").strip()
            if "jobtui " in line or line == "jobtui":
                lines.append(line[line.index("jobtui") :].split(" && ")[0])
    return lines


def test_every_jobtui_command_in_the_docs_and_readme_parses() -> None:
    import shlex

    from jobtui.tui.cli import build_parser

    pages = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
    seen = 0
    for page in pages:
        for line in _shell_lines(page.read_text(encoding="utf-8")):
            argv = shlex.split(line)[1:]
            try:
                build_parser().parse_args(argv)
            except SystemExit as exc:
                raise AssertionError(f"{page.name}: `{line}` does not parse") from exc
            seen += 1
    assert seen >= 15


def test_readme_main_command_runs(tmp_path: Path) -> None:
    """The README's first command (after `pip install .`) on the shipped examples."""
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    line = next(ln for ln in _shell_lines(readme) if ln.startswith("jobtui run"))
    import shlex

    argv = shlex.split(line)[1:] + [
        "--store",
        str(tmp_path / "q.db"),
        "--output",
        str(tmp_path / "out"),
        "--json",
    ]
    out = subprocess.run(
        [sys.executable, "-m", "jobtui.tui.cli", *argv],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=300,
    )
    assert out.returncode == 0, out.stderr
    summary = json.loads(out.stdout)
    assert summary["counts"] == {"completed": 2}
    by_name = {Path(j["path"]).name: j for j in summary["jobs"]}
    assert by_name["scan-deu.pdf"]["ocr_pages"] == 1 and by_name["text.pdf"]["ocr_pages"] == 0


# -- the quick start, as a newcomer sees it ------------------------------------------

DOC_HOME = "/home/you/jobtui"  # the project folder in the quick start's transcripts
DOC_STORE = "/home/you/.local/share/jobtui/jobtui.db"
DOC_BATCH = "3f2a1b9c0d4e5f60718293a4b5c6d7e8"
DOC_JOBS = {"9e90af47fd1e": "scan-deu.pdf", "450097b7b324": "text.pdf"}


def console_sessions(page: str) -> list[tuple[str, list[str]]]:
    """``$ command`` lines and the lines shown after each, from ```console blocks."""
    text = (ROOT / "docs" / page).read_text(encoding="utf-8")
    out: list[tuple[str, list[str]]] = []
    for block in re.findall(r"```console\n(.*?)```", text, flags=re.DOTALL):
        for line in block.splitlines():
            if line.startswith("$ "):
                out.append((line[2:], []))
            else:
                out[-1][1].append(line)
    return out


def _line_pattern(expected: str) -> re.Pattern[str]:
    """A shown line as a pattern: times, dates and durations vary, and column padding
    follows the widths of what is shown."""
    pat = re.escape(expected)
    pat = re.sub(
        r"\d{4}\\-\d\d\\-\d\d\\ \d\d:\d\d(:\d\d)?",
        r"\\d{4}-\\d\\d-\\d\\d \\d\\d:\\d\\d(:\\d\\d)?",
        pat,
    )
    pat = re.sub(r"in\\ \d+\\.\d+s", r"in\\ [\\d.]+s", pat)
    pat = re.sub(r"(\\ )+", r"\\s+", pat)
    return re.compile(pat)


def test_quickstart_transcripts_are_what_a_newcomer_sees(tmp_path: Path) -> None:
    """docs/quickstart.md's ```console sessions, run in order in a fresh project folder
    on a fresh store: every line shown is printed (stderr, then stdout, as a terminal
    shows them), in order, and nothing else. Ids, times and the folders differ."""
    import shlex
    import shutil

    home = tmp_path / "project"
    shutil.copytree(ROOT / "examples", home / "examples")
    store = tmp_path / "data" / "jobtui.db"
    store.parent.mkdir()
    env = {**__import__("os").environ, "PYTHONPATH": str(ROOT), "JOBTUI_STORE": str(store)}
    ids: dict[str, str] = {}
    sessions = console_sessions("quickstart.md")
    assert [c for c, _ in sessions][:2] == ["jobtui run examples/pdfs"] * 2
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    assert "jobtui run examples/pdfs" in readme  # the README's command comes first
    for command, shown in sessions:
        for doc_id, real in sorted(ids.items(), key=lambda kv: -len(kv[0])):
            command = command.replace(doc_id, real)
        proc = subprocess.run(
            [sys.executable, "-m", "jobtui.tui.cli", *shlex.split(command)[1:]],
            capture_output=True,
            text=True,
            cwd=home,
            env=env,
            timeout=300,
        )
        assert proc.returncode == 0, proc.stderr
        # A terminal shows the live progress line only while it runs; here (no
        # terminal) it is a plain line, left out.
        err = [ln for ln in proc.stderr.splitlines() if not re.match(r"jobtui: \d+/\d+ files", ln)]
        got = err + proc.stdout.splitlines()
        if not ids:  # learn the real ids behind the ones shown
            batch = re.search(r"batch ([0-9a-f]{12}):", proc.stdout)
            assert batch is not None, proc.stdout
            full = _only_batch(env, home)
            assert full.startswith(batch.group(1))
            ids.update({DOC_BATCH: full, DOC_BATCH[:12]: full[:12], DOC_BATCH[:6]: full[:6]})
            ids.update(_job_ids(env, home))
        expected = []
        for line in shown:
            line = line.replace(DOC_STORE, str(store)).replace(DOC_HOME, str(home))
            for doc_id, real in sorted(ids.items(), key=lambda kv: -len(kv[0])):
                line = line.replace(doc_id, real)
            expected.append(line)
        assert len(got) == len(expected), f"{command}:\n" + "\n".join(got)
        for g, e in zip(got, expected, strict=True):
            assert _line_pattern(e).fullmatch(g), f"{command}: shown {e!r}, printed {g!r}"


def _only_batch(env: dict[str, str], cwd: Path) -> str:
    out = subprocess.run(
        [sys.executable, "-m", "jobtui.tui.cli", "batches", "--json"],
        capture_output=True,
        text=True,
        cwd=cwd,
        env=env,
        timeout=120,
        check=True,
    )
    (batch,) = json.loads(out.stdout)
    return str(batch["batch_id"])


def _job_ids(env: dict[str, str], cwd: Path) -> dict[str, str]:
    out = subprocess.run(
        [sys.executable, "-m", "jobtui.tui.cli", "jobs", "--json"],
        capture_output=True,
        text=True,
        cwd=cwd,
        env=env,
        timeout=120,
        check=True,
    )
    by_name = {Path(j["path"]).name: j["job_id"] for j in json.loads(out.stdout)}
    return {doc: by_name[name][:12] for doc, name in DOC_JOBS.items()}


def test_quickstart_json_example_has_the_keys_a_run_prints(tmp_path: Path) -> None:
    text = (ROOT / "docs" / "quickstart.md").read_text(encoding="utf-8")
    shown = json.loads(re.search(r"```json\n(.*?)```", text, flags=re.DOTALL).group(1))  # type: ignore[union-attr]
    out = subprocess.run(
        [
            sys.executable,
            "-m",
            "jobtui.tui.cli",
            "run",
            "examples/pdfs",
            "--json",
            "--store",
            str(tmp_path / "q.db"),
            "--output",
            str(tmp_path / "out"),
        ],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=300,
    )
    assert out.returncode == 0, out.stderr
    got = json.loads(out.stdout)
    assert set(shown) <= set(got)
    assert set(shown["files"][0]) <= set(got["files"][0])
    assert {k for k in shown["jobs"][0] if k != "…"} <= set(got["jobs"][0])


def test_cli_reference_lists_every_command_with_its_exit_codes() -> None:
    """docs/cli.md: every subcommand the parser has is in the overview and has a
    section that states its exit codes."""
    import argparse

    from jobtui.tui.cli import build_parser

    page = (ROOT / "docs" / "cli.md").read_text(encoding="utf-8")
    overview = page.split("```")[1]
    sub = next(a for a in build_parser()._actions if isinstance(a, argparse._SubParsersAction))
    for name in sub.choices:
        assert f"jobtui {name}" in overview, f"{name} missing from the overview"
        heading = next(
            (
                m
                for m in re.finditer(r"^## (.*)$", page, flags=re.M)
                if re.search(rf"`jobtui {name}[` ]", m.group(1))
            ),
            None,
        )
        assert heading is not None, f"no section for jobtui {name}"
        section = page[heading.end() :].split("\n## ")[0]
        assert "Exit code" in section, f"jobtui {name}: no exit codes"
