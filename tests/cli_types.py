"""Job types for the CLI tests, served in-process (``cli.default_registry`` patched).

``test.copy`` writes ``<stem>-<sha12>.txt`` (the file's text, upper-cased) into the
output folder and names it in its result, as real processors do; it fails with
``OUTPUT_ERROR`` when the folder cannot be written, and with ``FLAKY`` while
``FAILING`` holds the file's name. ``test.secret`` takes a password.
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from jobtui.engine.context import JobContext
from jobtui.engine.errors import JobFailed
from jobtui.engine.outputs import output_base
from jobtui.engine.registry import FileTypes, Registry, default_registry

FAILING: set[str] = set()  # file names whose test.copy jobs fail (FLAKY)


class CopyParams(BaseModel):
    model_config = ConfigDict(extra="forbid")
    path: str
    sha256: str | None = None
    upper: bool = True
    pages: int = Field(1, ge=1)


async def copy(ctx: JobContext, p: CopyParams) -> dict[str, Any]:
    data = Path(p.path).read_bytes()
    if Path(p.path).name in FAILING:
        raise JobFailed("FLAKY", f"{p.path} failed on purpose")
    sha = hashlib.sha256(data).hexdigest()
    out = Path(ctx.output_dir).absolute()
    target = out / f"{output_base(p.path)}-{sha[:12]}.txt"
    try:
        out.mkdir(parents=True, exist_ok=True)
        target.write_bytes(data.upper() if p.upper else data)
    except OSError as exc:
        raise JobFailed("OUTPUT_ERROR", f"cannot write {target}: {exc.strerror}") from None
    await ctx.progress(100.0, "copy", "1/1 pages")
    return {"text_path": str(target), "pages": p.pages}


class SecretParams(BaseModel):
    model_config = ConfigDict(extra="allow")
    password: str = Field("", json_schema_extra={"secret": True})


async def secret(ctx: JobContext, p: SecretParams) -> dict[str, Any]:
    ctx.log("about to fail")
    raise RuntimeError("broken on purpose")


def registry() -> Registry:
    reg = default_registry()
    reg.handler("test.copy", params=CopyParams, files=FileTypes(frozenset({".txt"})))(copy)
    reg.handler("test.secret", params=SecretParams, max_attempts=1)(secret)
    return reg
