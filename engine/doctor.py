"""``jobtui doctor``: check a setup and say, one line each, what is wrong and the fix.

Each check returns a ``Check(name, verdict, detail, fix)`` with verdict ``ok``,
``warn`` (works, but worth knowing) or ``fail`` (blocks work: the CLI exits 1).
The checks: the store is reachable (MongoDB version; embedded file and schema),
change streams or polling, the indexes the engine expects, registered job types and
pending types no live worker serves, Tesseract and its OCR languages, the output
directory is writable, the clock skew against the MongoDB server (leases are
timestamps written by one machine and judged by another), and input roots.

Nothing here prints a URI with its password: stores describe themselves redacted.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import tempfile
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from jobtui.engine.config import Settings
from jobtui.engine.registry import Registry
from jobtui.engine.store.base import Store, StoreError

OK, WARN, FAIL = "ok", "warn", "fail"
SKEW_WARN_S = 2.0  # more than this is worth fixing (NTP); more than lease/3 breaks leases
OCR_TYPES = ("pdf.transcribe", "pdf.markdown")


@dataclass
class Check:
    name: str
    verdict: str  # "ok" | "warn" | "fail"
    detail: str
    fix: str = ""

    def line(self) -> str:
        """``ok   store        sqlite:/x (schema 1)`` / ``FAIL tesseract   ... — fix``."""
        label = {OK: "ok", WARN: "warn", FAIL: "FAIL"}.get(self.verdict, self.verdict)
        text = f"{label:<4} {self.name:<12} {self.detail}"
        return f"{text} — {self.fix}" if self.fix and self.verdict != OK else text

    def as_dict(self) -> dict[str, str]:
        return asdict(self)


def default_languages() -> str:
    """The OCR languages PDF jobs use unless told otherwise (``pdf.transcribe``'s default)."""
    try:
        from jobtui.engine.processors.pdf import TranscribeParams
    except ImportError:  # PyMuPDF not installed: nothing will OCR
        return "deu+eng"
    return str(TranscribeParams.model_fields["languages"].default)


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
    from jobtui.engine.api import OperatorAPI

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
                f"other processes' jobs are seen within {settings.poll_interval:g}s",
            )
        )
        out.append(Check("clock", OK, "embedded store: one machine, one clock"))
    else:
        version = info.get("version") or "version unknown"
        rs = f", replica set {info['replica_set']}" if info.get("replica_set") else ""
        out.append(Check("store", OK, f"{store.description}, server {version}{rs}"))
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
    api = OperatorAPI(store, registry)
    unserved = await api.unserved_types()
    live = sum(1 for w in await api.workers() if w.alive)
    if unserved:
        parts = ", ".join(f"{t} ({n} pending)" for t, n in sorted(unserved.items()))
        unknown = [t for t in unserved if t not in registry]
        fix = "start a worker that serves them: jobtui worker --types " + " ".join(sorted(unserved))
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


async def _run(cmd: list[str], timeout: float = 10.0) -> tuple[int, str]:
    proc = await asyncio.create_subprocess_exec(
        *cmd, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT
    )
    try:
        out, _ = await asyncio.wait_for(proc.communicate(), timeout)
    except TimeoutError:
        proc.kill()
        await proc.wait()
        return -1, f"no answer within {timeout:g}s"
    return proc.returncode or 0, out.decode("utf-8", "replace")


def parse_langs(output: str) -> list[str]:
    """Languages from ``tesseract --list-langs`` (after its "List of available..." line)."""
    lines = [ln.strip() for ln in output.splitlines() if ln.strip()]
    for i, ln in enumerate(lines):
        if ln.lower().startswith("list of available languages"):
            return lines[i + 1 :]
    return lines


def _package(lang: str) -> str:
    return "tesseract-ocr-" + lang.lower().replace("_", "-")


async def tesseract_check(
    registry: Registry, languages: str | None = None, binary: str = "tesseract"
) -> Check:
    """Tesseract on PATH and every language OCR jobs ask for (default ``deu+eng``)."""
    wanted = [lang for lang in (languages or default_languages()).split("+") if lang]
    ocr = any(t in registry for t in OCR_TYPES)
    bad = FAIL if ocr else WARN  # nothing registered here OCRs: worth knowing, not blocking
    path = shutil.which(binary)
    if path is None:
        return Check(
            "tesseract",
            bad,
            f"{binary} not found on PATH (OCR of scanned pages)",
            "apt-get install tesseract-ocr " + " ".join(_package(x) for x in wanted),
        )
    code, out = await _run([path, "--list-langs"])
    if code != 0:
        return Check(
            "tesseract",
            bad,
            f"{path} --list-langs failed: {out.strip()[:200]}",
            "reinstall tesseract-ocr; check TESSDATA_PREFIX",
        )
    have = parse_langs(out)
    missing = [lang for lang in wanted if lang not in have]
    if missing:
        names = ", ".join(f"'{m}'" for m in missing)
        return Check(
            "tesseract",
            bad,
            f"language{'s' if len(missing) > 1 else ''} {names} missing "
            f"(installed: {', '.join(have) or 'none'})",
            "apt-get install "
            + " ".join(_package(m) for m in missing)
            + " (or put <lang>.traineddata into TESSDATA_PREFIX)",
        )
    _, version = await _run([path, "--version"])
    first = version.splitlines()[0].strip() if version.strip() else "tesseract"
    return Check("tesseract", OK, f"{first}; languages {', '.join(wanted)} present")


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
    tesseract: str = "tesseract",
) -> list[Check]:
    """Every check, in display order. Never raises for a broken setup: says so."""
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
    checks.append(await tesseract_check(registry.select(settings.types), languages, tesseract))
    checks.append(output_check(settings.output_dir))
    checks.append(input_roots_check(list(settings.input_roots)))
    return checks


def worst(checks: list[Check]) -> str:
    verdicts = {c.verdict for c in checks}
    return FAIL if FAIL in verdicts else WARN if WARN in verdicts else OK


def report(checks: list[Check]) -> dict[str, Any]:
    return {"verdict": worst(checks), "checks": [c.as_dict() for c in checks]}
