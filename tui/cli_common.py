"""What every ``jobtui`` command shares: exit codes, opening the store, reading what
the operator typed (parameters, job type, ids) and checking it before anything is
written."""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

from jobtui.engine.api import OperatorAPI, check_parameters_for, connect
from jobtui.engine.config import Settings
from jobtui.engine.errors import ConfigError
from jobtui.engine.logsetup import status
from jobtui.engine.registry import JobType, Registry

EXIT_OK, EXIT_JOB_FAILED, EXIT_USAGE = 0, 1, 2
AUTO = "auto"  # --type auto: each file under the job type that declared its kind


def announce(settings: Settings, api: OperatorAPI) -> None:
    status(api.banner(settings))


def check_store_folder(settings: Settings) -> None:
    """An embedded store named by the operator must be in a folder that exists: a
    typo (``--store /typo/dir/x.db``) must not create folders and an empty queue."""
    if settings.mongodb_uri or settings.store is None:
        return
    folder = os.path.dirname(os.path.abspath(os.path.expanduser(settings.store)))
    if not os.path.isdir(folder):
        raise ConfigError(
            "STORE_FOLDER_MISSING",
            f"the folder of the store file {settings.store} does not exist ({folder}); "
            "create it first, or leave --store out for the default store",
        )


async def with_api(
    settings: Settings,
    registry: Registry,
    fn: Callable[[OperatorAPI], Awaitable[int]],
    *,
    announce_it: bool = True,
) -> int:
    """Open the store through the operator API, run ``fn`` on it, close it."""
    check_store_folder(settings)
    api = await connect(settings, registry)
    if announce_it:
        announce(settings, api)
    try:
        return await fn(api)
    finally:
        await api.close()


def parse_params(items: list[str]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for item in items:
        key, sep, raw = item.partition("=")
        if not sep or not key:
            raise ConfigError("USAGE", f"--param expects KEY=VALUE, got {item!r}")
        try:
            out[key] = json.loads(raw)
        except ValueError:
            out[key] = raw
    return out


def chosen_types(registry: Registry, name: str) -> tuple[str | None, list[JobType]]:
    """``--type``: the job type to use (None for ``auto``) and the types files may go
    to. An unknown name is ``UNKNOWN_JOB_TYPE`` listing the registered ones."""
    if name == AUTO:
        auto = [jt for jt in registry.types() if jt.files is not None and jt.files.auto]
        return None, auto
    jt = registry.get(name)
    if jt is None:
        raise ConfigError(
            "UNKNOWN_JOB_TYPE",
            f"no handler for job type {name!r}; registered: {', '.join(registry.names())} "
            f"(or {AUTO}: each file under the type that declares it)",
        )
    return name, [jt]


def check_enqueue_args(
    args: argparse.Namespace, registry: Registry
) -> tuple[str | None, dict[str, Any]]:
    """Everything ``enqueue`` and ``run`` can check before writing: the job type, the
    parameters against its model, and that every path exists."""
    job_type, types = chosen_types(registry, args.type)
    params = parse_params(args.param)
    check_parameters_for(types, params)
    missing = [p for p in args.paths if not os.path.lexists(os.path.expanduser(p))]
    if missing:
        raise ConfigError("PATH_NOT_FOUND", f"no such file or folder: {', '.join(missing)}")
    return job_type, params


def scan_progress(quiet: bool) -> Callable[[int, int], None] | None:
    """``scanning 120/424 files`` on a terminal while files are hashed (then cleared)."""
    if quiet or not sys.stderr.isatty():
        return None
    last = [0.0]

    def show(done: int, total: int) -> None:
        now = time.monotonic()
        if done == total:  # done: clear the line, the summary line says the rest
            print("\r\033[K", end="", file=sys.stderr, flush=True)
        elif now - last[0] > 0.1:
            last[0] = now
            print(f"\rscanning {done}/{total} files", end="", file=sys.stderr, flush=True)

    return show


def table(rows: Sequence[Sequence[str]], header: Sequence[str]) -> list[str]:
    """Left-aligned columns sized to their content; the last column is not padded."""
    widths = [max(len(str(r[i])) for r in [header, *rows]) for i in range(len(header) - 1)]
    out = []
    for r in [header, *rows]:
        cells = [str(c).ljust(w) for c, w in zip(r, widths, strict=False)] + [str(r[-1])]
        out.append("  ".join(cells).rstrip())
    return out
