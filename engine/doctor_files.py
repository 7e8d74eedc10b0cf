"""Doctor checks of the embedded store's file as a file: who else holds a deleted copy
of it, and who may read it.

A cleanup script that deletes the store, or a restore that renames another file over
it, leaves a running worker writing to an inode no other process will open: its jobs
exist nowhere (the engine itself stops with ``STORE_REPLACED`` within a heartbeat, an
older one would not). Such a process still holds the old inode open, which Linux shows
as ``/proc/PID/fd/N -> PATH (deleted)``.
"""

from __future__ import annotations

import os
import shlex
import stat
from pathlib import Path

from jobtui.engine.checks import FAIL, OK, WARN, Check


def processes_holding_deleted(path: Path) -> list[tuple[int, str]]:
    """(pid, command line) of the processes we can see holding a deleted ``path``."""
    target = f"{os.path.realpath(path)} (deleted)"
    out: list[tuple[int, str]] = []
    try:
        pids = [int(p) for p in os.listdir("/proc") if p.isdigit()]
    except OSError:  # no /proc (not Linux): nothing to tell
        return out
    for pid in pids:
        try:
            fds = os.listdir(f"/proc/{pid}/fd")
        except OSError:  # another user's process, or gone
            continue
        for fd in fds:
            try:
                if os.readlink(f"/proc/{pid}/fd/{fd}") == target:
                    with open(f"/proc/{pid}/cmdline", "rb") as f:
                        argv = f.read().rstrip(b"\0").split(b"\0")
                    out.append((pid, " ".join(a.decode(errors="replace") for a in argv)[:120]))
                    break
            except OSError:
                continue
    return out


def orphan_check(path: Path) -> Check:
    held = processes_holding_deleted(path)
    if not held:
        return Check("store file", OK, f"no process holds a deleted copy of {path}")
    pids = " ".join(str(pid) for pid, _ in held)
    who = "; ".join(f"pid {pid}: {cmd}" for pid, cmd in held)
    return Check(
        "store file",
        FAIL,
        f"STORE_REPLACED: {len(held)} process(es) still use a deleted or replaced copy of "
        f"{path} ({who}); what they do exists nowhere",
        f"stop them (kill {pids}); their running jobs come back here when their leases expire",
    )


def permissions_check(path: Path) -> Check:
    """The store holds job parameters (paths, passwords of encrypted PDFs): others may
    not read it. New stores are created 0600 in a 0700 folder."""
    loose = []
    for p in (path.parent, path):
        try:
            mode = p.stat().st_mode
        except OSError:
            continue
        if mode & (stat.S_IRWXG | stat.S_IRWXO):
            loose.append((p, stat.S_IMODE(mode)))
    if not loose:
        return Check("store access", OK, "only its owner can read the store")
    text = ", ".join(f"{p} is {m:04o}" for p, m in loose)
    fix = " && ".join(
        f"chmod {'700' if p.is_dir() else '600'} {shlex.quote(str(p))}" for p, _ in loose
    )
    return Check(
        "store access",
        WARN,
        f"{text}: other users may read job parameters (a PDF password, say)",
        f"unless the store is shared on purpose: {fix}",
    )
