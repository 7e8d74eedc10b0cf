"""Start and stop an nx-27017 MongoDB wire server (tests and benchmarks share this)."""

from __future__ import annotations

import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_for_ping(uri: str, proc: subprocess.Popen[bytes], timeout: float = 30.0) -> None:
    from pymongo import MongoClient
    from pymongo.errors import PyMongoError

    deadline = time.monotonic() + timeout
    while True:
        if proc.poll() is not None:
            raise RuntimeError(f"nx-27017 exited with code {proc.returncode}")
        client: MongoClient = MongoClient(uri, serverSelectionTimeoutMS=500)
        try:
            client.admin.command("ping")
            return
        except PyMongoError:
            if time.monotonic() > deadline:
                raise
        finally:
            client.close()
        time.sleep(0.1)


def nx_executable() -> str | None:
    return shutil.which("nx-27017") or shutil.which("nx_27017")


def start_nx(root: Path, port: int | None = None) -> tuple[str, subprocess.Popen[bytes]]:
    """Start a server with one SQLite file per database under ``root``; return (uri, proc)."""
    exe = nx_executable()
    if exe is None:
        raise RuntimeError("nx-27017 is not installed (pip install nx-27017)")
    port = port or free_port()
    (root / "data").mkdir(parents=True, exist_ok=True)
    cmd = [
        exe,
        "--data-dir",
        str(root / "data"),
        "--port",
        str(port),
        "--log-file",
        str(root / "log"),
        "--pid-file",
        str(root / "pid"),
    ]
    with open(root / "stdout", "ab") as out:
        proc = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT)
    uri = f"mongodb://127.0.0.1:{port}"
    try:
        wait_for_ping(uri, proc)
    except BaseException:
        stop_nx(proc)
        raise
    return uri, proc


def stop_nx(proc: subprocess.Popen[bytes]) -> None:
    proc.terminate()
    try:
        proc.wait(timeout=10)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


@contextmanager
def nx_server(root: Path) -> Iterator[str]:
    uri, proc = start_nx(root)
    try:
        yield uri
    finally:
        stop_nx(proc)
