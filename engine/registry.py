"""The registry: job type name -> handler, its parameters model and its options.

Only registered code ever runs (invariant 9): the database names a job type, never
an import path. Handlers register with the ``@registry.handler`` decorator, or from
other packages through the ``jobtui.handlers`` entry-point group, whose entries are
functions ``register(registry)`` called at start.
"""

from __future__ import annotations

import fnmatch
import logging
import random
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, replace
from importlib.metadata import entry_points
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, ConfigDict

if TYPE_CHECKING:
    from jobtui.engine.context import JobContext

log = logging.getLogger(__name__)

ENTRY_POINT_GROUP = "jobtui.handlers"

Handler = Callable[["JobContext", Any], Awaitable[dict[str, Any] | None]]


class NoParams(BaseModel):
    """Default parameters model: accepts any parameters, validates nothing."""

    model_config = ConfigDict(extra="allow")


@dataclass(frozen=True)
class JobType:
    """A registered job type and the options the worker applies to it.

    ``concurrency`` caps running jobs of this type per engine process (None: only the
    engine's global limit). ``timeout`` is seconds per attempt (None: no limit).
    Retries wait ``backoff_base * 2**(attempt-1)`` seconds, capped at ``backoff_max``,
    with full jitter so many failing jobs do not retry in lockstep.
    """

    name: str
    handler: Handler
    params_model: type[BaseModel] = NoParams
    max_attempts: int = 3
    timeout: float | None = None
    concurrency: int | None = None
    backoff_base: float = 1.0
    backoff_max: float = 300.0
    description: str = ""

    def backoff(self, attempt: int, rng: random.Random | None = None) -> float:
        cap = min(self.backoff_max, self.backoff_base * (2 ** max(attempt - 1, 0)))
        return (rng or random).uniform(cap / 2, cap)


class Registry:
    def __init__(self) -> None:
        self._types: dict[str, JobType] = {}

    def add(self, job_type: JobType) -> None:
        self._types[job_type.name] = job_type

    def handler(
        self,
        name: str,
        *,
        params: type[BaseModel] = NoParams,
        max_attempts: int = 3,
        timeout: float | None = None,
        concurrency: int | None = None,
        backoff_base: float = 1.0,
        backoff_max: float = 300.0,
    ) -> Callable[[Handler], Handler]:
        """Decorator: ``@registry.handler("pdf.transcribe", params=TranscribeParams)``."""

        def decorate(fn: Handler) -> Handler:
            self.add(
                JobType(
                    name=name,
                    handler=fn,
                    params_model=params,
                    max_attempts=max_attempts,
                    timeout=timeout,
                    concurrency=concurrency,
                    backoff_base=backoff_base,
                    backoff_max=backoff_max,
                    description=((fn.__doc__ or "").strip().splitlines() or [""])[0],
                )
            )
            return fn

        return decorate

    def get(self, name: str) -> JobType | None:
        return self._types.get(name)

    def __contains__(self, name: object) -> bool:
        return name in self._types

    def names(self) -> list[str]:
        return sorted(self._types)

    def types(self) -> list[JobType]:
        return [self._types[n] for n in self.names()]

    def select(self, patterns: Iterable[str] | None) -> Registry:
        """A registry with only the types matching any glob (``pdf.*``); all when None."""
        pats = list(patterns or [])
        out = Registry()
        for jt in self._types.values():
            if not pats or any(fnmatch.fnmatchcase(jt.name, p) for p in pats):
                out.add(jt)
        return out

    def override(self, name: str, **options: Any) -> None:
        """Change options of a registered type (configuration, tests)."""
        self._types[name] = replace(self._types[name], **options)

    def load_entry_points(self, group: str = ENTRY_POINT_GROUP) -> list[str]:
        """Call every ``register(registry)`` in the entry-point group; return their names.

        A plug-in that fails to load is logged and skipped: one broken package must
        not stop the engine from serving everything else.
        """
        loaded = []
        for ep in entry_points(group=group):
            try:
                ep.load()(self)
                loaded.append(ep.name)
            except Exception:
                log.exception("handler plug-in %s failed to load", ep.name)
        return loaded


def default_registry() -> Registry:
    """A registry with the built-in types and every installed plug-in."""
    reg = Registry()
    from jobtui.engine import builtin

    builtin.register(reg)
    from jobtui.engine.processors import pdf  # also when the package is not pip-installed

    pdf.register(reg)
    reg.load_entry_points()
    return reg
