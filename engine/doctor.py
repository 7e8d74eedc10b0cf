"""``jobtui doctor``: check a setup and say, one line each, what is wrong and the fix.

Each check returns a ``Check(name, verdict, detail, fix)`` with verdict ``ok``,
``warn`` (works, but worth knowing) or ``fail`` (blocks work: the CLI exits 1).
The engine's checks: the store is reachable (MongoDB version; embedded file and
schema), change streams or polling, the indexes the engine expects, registered job
types and pending types no live worker serves, the output directory is writable, the
clock skew against the MongoDB server (leases are timestamps written by one machine
and judged by another), and input roots. Then every check the served job types
declare (``JobType.checks``, e.g. an OCR engine and its languages), each once.

Nothing here prints a URI with its password: stores describe themselves redacted.
"""

from __future__ import annotations

import logging
import os
import shlex
import tempfile
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from jobtui.engine.checks import FAIL, OK, WARN, Check, CheckContext
from jobtui.engine.config import Settings
from jobtui.engine.registry import Registry
from jobtui.engine.store.base import Store, StoreError

__all__ = ["FAIL", "OK", "WARN", "Check", "CheckContext", "run_checks", "report", "worst"]

log = logging.getLogger(__name__)

SKEW_WARN_S = 2.0  # more than this is worth fixing (NTP); more than lease/3 breaks leases


# -- store checks ----------------------------------------------------------------------


def _aware(value: datetime) -> datetime:
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value


def clock_check(
    server_time: datetime | None,
    local_time: datetime | None,
    lease_seconds: float,
    round_trip_s: float = 0.0,
) -> Check:
    """Skew between this machine and the server. Leases are written with one machine's
    clock and judged by another's: a skew near the lease length expires healthy jobs."""
    if server_time is None or local_time is None:
        return Check(
            "clock",
            WARN,
            "the server did not report its time; skew unknown",
            "keep every host on NTP (chrony, systemd-timesyncd)",
        )
    skew = (_aware(server_time) - _aware(local_time)).total_seconds()
    detail = f"skew {skew:+.2f}s against the server (round trip {round_trip_s * 1000:.0f} ms)"
    limit = lease_seconds / 3
    if abs(skew) > limit:
        return Check(
            "clock",
            FAIL,
            detail + f", more than a third of the {lease_seconds:g}s "
            "lease: leases expire early or late",
            "sync clocks with NTP (chrony, systemd-timesyncd), or raise --lease-seconds",
        )
    if abs(skew) > SKEW_WARN_S:
        return Check("clock", WARN, detail, "sync this host's clock with NTP")
    return Check("clock", OK, detail)


async def store_checks(store: Store, settings: Settings, registry: Registry) -> list[Check]:
    """Checks that need an opened store (after ``open`` succeeded)."""
    from jobtui.engine.liveness import live_workers, unserved_types

    info = await store.server_info()
    out: list[Check] = []
    if store.kind == "sqlite":
        schema = info.get("user_version", "?")
        out.append(
            Check(
                "store",
                OK,
                f"{store.description} (schema {schema}, {info.get('journal_mode', '?')} journal)",
            )
        )
        out.append(
            Check(
                "changes",
                OK,
                "embedded store: local enqueues wake the engine; "
                "other processes' enqueues, retries and cancels within "
                f"{info.get('wakeup_poll_s', settings.poll_interval):g}s (their wake-up counters)",
            )
        )
        out.append(Check("clock", OK, "embedded store: one machine, one clock"))
    else:
        version = info.get("version") or "version unknown"
        rs = f", replica set {info['replica_set']}" if info.get("replica_set") else ""
        from jobtui.engine.store.factory import describe_store

        where = describe_store(settings, store)
        out.append(Check("store", OK, f"{where}; server {version}{rs}"))
        if info.get("change_streams"):
            out.append(Check("changes", OK, "change streams: workers wake on new jobs at once"))
        else:
            out.append(
                Check(
                    "changes",
                    WARN,
                    f"no change streams (standalone server); workers poll every "
                    f"{settings.poll_interval:g}s",
                    "run MongoDB as a replica set (one node is enough) or Atlas; "
                    "or accept the polling delay (--poll-interval)",
                )
            )
        out.append(
            clock_check(
                info.get("server_time"),
                info.get("local_time"),
                settings.lease_seconds,
                float(info.get("round_trip_s") or 0.0),
            )
        )
    missing = await store.missing_indexes()
    if missing:
        out.append(
            Check(
                "indexes",
                FAIL,
                "missing: " + "; ".join(missing),
                "run `jobtui worker` (or any command) once with a user allowed to "
                "create indexes; if a legacy index of the same name conflicts, "
                "drop it first (the worker's log names it)",
            )
        )
    else:
        out.append(Check("indexes", OK, "every index the engine uses is present"))
    selected = registry.select(settings.types)
    names = selected.names()
    out.append(
        Check(
            "job types",
            OK if names else FAIL,
            f"{len(names)} registered here: {', '.join(names)}"
            if names
            else "no job type matches --types " + " ".join(settings.types or []),
            "" if names else "check --types, or install the plug-in that registers them",
        )
    )
    out.append(await retention_check(store, settings))
    workers = await live_workers(store)
    unserved = await unserved_types(store, workers=workers)
    live = sum(1 for w in workers if w.alive)
    if unserved:
        parts = ", ".join(f"{t} ({n} pending)" for t, n in sorted(unserved.items()))
        unknown = [t for t in unserved if t not in registry]
        # Type names come from the database: quoted, so pasting the fix runs no more
        # than `jobtui worker` (a type named "x; rm -rf ~" stays one argument).
        fix = "start a worker that serves them: " + shlex.join(
            ["jobtui", "worker", "--types", *sorted(unserved)]
        )
        if unknown:
            fix += f"; no plug-in here registers {', '.join(sorted(unknown))}"
        out.append(
            Check("unserved", WARN, f"no live worker serves {parts} ({live} live worker(s))", fix)
        )
    else:
        out.append(
            Check(
                "unserved", OK, f"every pending job type has a live worker ({live} live worker(s))"
            )
        )
    return out


async def retention_check(store: Store, settings: Settings) -> Check:
    """The retention in force and what its next sweep would delete (a dry run)."""
    from jobtui.engine import retention

    gone = await retention.would_delete(store, settings)
    return Check(
        "retention",
        OK,
        f"{retention.describe(settings, store.kind)}; a sweep now would delete {gone.jobs} "
        f"jobs, {gone.logs} log lines, {gone.batches} batches",
    )


async def open_store_check(settings: Settings) -> tuple[Store | None, Check | None]:
    """Open the configured store; on failure a ``fail`` check saying why (no password)."""
    from jobtui.engine.store.factory import make_store

    try:
        store = make_store(settings)
        await store.open()
    except StoreError as exc:
        where = settings.safe_uri or f"sqlite:{settings.store_path}"
        fix = (
            "check the URI, the network and the credentials; `mongosh` with the same URI "
            "should connect"
            if settings.mongodb_uri
            else "check the file's permissions, or point --store at another file"
        )
        # Driver messages run on (topology dumps); the first sentence says enough.
        message = (exc.message or where).split(" (configured timeouts")[0]
        if len(message) > 240:
            message = message[:237] + "..."
        return None, Check("store", FAIL, f"{exc.code}: {message}", fix)
    return store, None


# -- machine checks --------------------------------------------------------------------


async def type_checks(ctx: CheckContext) -> list[Check]:
    """The checks the served job types declare, each once; one that crashes is a
    ``fail`` line naming it, not a traceback."""
    # Plug-ins that registered nothing here: not a fault (the extra is optional), but
    # an operator looking for their types learns how to get them.
    out = [Check(name[:12], OK, hint) for name, hint in sorted(ctx.registry.hints().items())]
    for check in ctx.registry.checks():
        name = getattr(check, "__qualname__", repr(check))
        try:
            out.extend(await check(ctx))
        except Exception as exc:  # noqa: BLE001 - a plug-in's broken check is reported
            log.debug("doctor check %s crashed", name, exc_info=True)
            out.append(
                Check(
                    name.rsplit(".", 1)[-1][:12],
                    FAIL,
                    f"the check {name} crashed: {type(exc).__name__}: {exc}"[:240],
                    "report this to the plug-in that declares it",
                )
            )
    return out


def output_check(output_dir: Path) -> Check:
    """The output directory exists and takes a file, or can be created."""
    target = Path(output_dir).expanduser().absolute()
    if target.exists():
        if not target.is_dir():
            return Check(
                "output",
                FAIL,
                f"{target} exists and is not a directory",
                "choose another --output DIR",
            )
        try:
            with tempfile.NamedTemporaryFile(dir=target, prefix=".jobtui-doctor-"):
                pass
        except OSError as exc:
            return Check(
                "output",
                FAIL,
                f"{target} is not writable: {exc.strerror or exc}",
                f"chown/chmod {target} for the worker's user, or choose --output DIR",
            )
        return Check("output", OK, f"{target} is writable")
    parent = target.parent
    while not parent.exists() and parent != parent.parent:
        parent = parent.parent
    if os.access(parent, os.W_OK | os.X_OK):
        return Check("output", OK, f"{target} will be created (under writable {parent})")
    return Check(
        "output",
        FAIL,
        f"{target} does not exist and {parent} is not writable",
        f"mkdir -p {target} as a user who may, or choose --output DIR",
    )


def input_roots_check(roots: list[Path]) -> Check:
    if not roots:
        return Check(
            "input roots",
            WARN,
            "none set: a job may name any file this user can read",
            "--input-root DIR (repeatable) or JOBTUI_INPUT_ROOTS=/data/in:/data/more",
        )
    missing = [str(r) for r in roots if not Path(r).expanduser().is_dir()]
    shown = ", ".join(str(r) for r in roots)
    if missing:
        return Check(
            "input roots",
            WARN,
            f"{shown}; not a directory here: {', '.join(missing)}",
            "create them, or fix --input-root (jobs under them fail FILE_NOT_FOUND)",
        )
    return Check("input roots", OK, f"reads only under {shown}")


# -- all together ---------------------------------------------------------------------


async def run_checks(
    settings: Settings,
    registry: Registry,
    *,
    languages: str | None = None,
    **options: Any,
) -> list[Check]:
    """Every check, in display order. Never raises for a broken setup: says so.
    ``languages`` and ``options`` reach the job types' checks (``CheckContext``)."""
    checks: list[Check] = []
    store, failed = await open_store_check(settings)
    if store is None:
        assert failed is not None
        checks.append(failed)
    else:
        try:
            checks += await store_checks(store, settings, registry)
        except Exception as exc:  # noqa: BLE001 - the store broke mid-check: report it
            checks.append(
                Check(
                    "store",
                    FAIL,
                    f"{type(exc).__name__} while checking {store.description}",
                    "run doctor again; check the server",
                )
            )
        finally:
            await store.close()
    if not settings.mongodb_uri:  # the file as a file; also when it failed to open
        from jobtui.engine.doctor_files import orphan_check, permissions_check

        checks += [orphan_check(settings.store_path), permissions_check(settings.store_path)]
    ctx = CheckContext(
        settings, registry.select(settings.types), {"languages": languages, **options}
    )
    checks += await type_checks(ctx)
    checks.append(output_check(settings.output_dir))
    checks.append(input_roots_check(list(settings.input_roots)))
    return checks


def worst(checks: list[Check]) -> str:
    verdicts = {c.verdict for c in checks}
    return FAIL if FAIL in verdicts else WARN if WARN in verdicts else OK


def report(checks: list[Check]) -> dict[str, Any]:
    return {"verdict": worst(checks), "checks": [c.as_dict() for c in checks]}
