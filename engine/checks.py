"""What a doctor check is: ``Check``, its verdicts, and the context a job type's
own checks receive.

``jobtui doctor`` runs the engine's checks (store, indexes, output, input roots) and
then every check the registered job types declare (``JobType.checks``): a processor
that needs an OCR engine, a GPU or a licence server says so itself, and the core names
none of them. A type's check is ``async def check(ctx: CheckContext) -> list[Check]``.

This module is light on purpose (no store, no processors): a plug-in imports it to
declare its checks without pulling in the engine.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from jobtui.engine.config import Settings
    from jobtui.engine.registry import Registry

OK, WARN, FAIL = "ok", "warn", "fail"


@dataclass
class Check:
    """One line of ``jobtui doctor``: ``verdict`` is ``ok``, ``warn`` (works, but worth
    knowing) or ``fail`` (blocks work: the CLI exits 1); ``fix`` says what to do."""

    name: str
    verdict: str  # "ok" | "warn" | "fail"
    detail: str
    fix: str = ""

    def line(self) -> str:
        """``ok   store        sqlite:/x (schema 1)`` / ``FAIL output       ... — fix``."""
        label = {OK: "ok", WARN: "warn", FAIL: "FAIL"}.get(self.verdict, self.verdict)
        text = f"{label:<4} {self.name:<12} {self.detail}"
        return f"{text} — {self.fix}" if self.fix and self.verdict != OK else text

    def as_dict(self) -> dict[str, str]:
        return asdict(self)


@dataclass(frozen=True)
class CheckContext:
    """What a job type's check gets: the settings, the job types this worker would
    serve (``settings.types`` applied), and the operator's options from the command
    line (e.g. ``languages`` from ``jobtui doctor --languages``; None when not given)."""

    settings: Settings
    registry: Registry
    options: Mapping[str, Any] = field(default_factory=dict)

    def option(self, name: str, default: Any = None) -> Any:
        value = self.options.get(name)
        return default if value is None else value


DoctorCheck = Callable[[CheckContext], Awaitable[list[Check]]]


async def run_command(cmd: list[str], timeout: float = 10.0) -> tuple[int, str]:
    """Run ``cmd``; its exit code and output (stdout and stderr), or -1 on a timeout."""
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
