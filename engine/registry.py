"""The registry: job type name -> handler, its parameters model and its options.

Only registered code ever runs (invariant 9): the database names a job type, never
an import path. Handlers register with the ``@registry.handler`` decorator, or from
other packages through the ``jobtui.handlers`` entry-point group, whose entries are
functions ``register(registry)`` called at start. The built-in types arrive the same
way (this package's own entry points), so the core names no job type: what a type
needs from it is declared on its ``JobType`` (the files it takes from a folder, the
modules its CPU worker processes preload and their warm-up, its doctor checks, its
timeout and retry policy).

A source checkout that is not installed (or installed from another checkout, as a
git worktree is) has no metadata with its current entry points: when the imported
``jobtui`` sits in a source tree (its ``engine`` folder's parent holds the
``pyproject.toml`` of the project named ``jobtui``), that file's
``[project.entry-points."jobtui.handlers"]`` table is used instead of the installed
``jobtui`` distribution's. Other distributions' entry points load as usual (found by
``jobtui.engine.entrypoints``, not importlib.metadata: a tenth of the time).
"""

from __future__ import annotations

import fnmatch
import functools
import logging
import os
import random
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, ConfigDict

from jobtui.engine import entrypoints
from jobtui.engine.attempts import is_async_handler

if TYPE_CHECKING:
    from jobtui.engine.checks import DoctorCheck
    from jobtui.engine.context import JobContext

log = logging.getLogger(__name__)

ENTRY_POINT_GROUP = "jobtui.handlers"
DISTRIBUTION = "jobtui"
SNIFF_BYTES = 512  # how much of a file's head ``FileTypes.sniff`` sees

Handler = Callable[["JobContext", Any], Awaitable[dict[str, Any] | None]]


class NoParams(BaseModel):
    """Default parameters model: accepts any parameters, validates nothing."""

    model_config = ConfigDict(extra="allow", defer_build=True)


#: Seconds an attempt may run unless its type says otherwise: a handler stuck for ever
#: (a hung network call, a lock) ends ``TIMEOUT`` instead of holding a slot for good.
DEFAULT_TIMEOUT = 3600.0


@dataclass(frozen=True)
class FileTypes:
    """The files a job type takes when a folder (or a file) is enqueued.

    ``extensions``: lower-case with the dot (``frozenset({".tif", ".tiff"})``); a name matches
    in any case. ``sniff``: optional, called with the first ``SNIFF_BYTES`` bytes of
    a file whose extension matched no type; True if this type takes it. ``path_param``:
    the parameter that receives the file's path. ``auto``: a folder enqueued without a
    job type sends matching files here (several types may take ``.tif`` when named,
    but only one should be the automatic choice for it).
    """

    extensions: frozenset[str]
    sniff: Callable[[bytes], bool] | None = None
    path_param: str = "path"
    auto: bool = True

    def by_name(self, path: str) -> bool:
        return os.path.splitext(path)[1].lower() in self.extensions

    def by_content(self, head: bytes) -> bool:
        if self.sniff is None or not head:
            return False
        try:
            return bool(self.sniff(head))
        except Exception:  # noqa: BLE001 - a plug-in's broken sniffer must not stop a scan
            log.exception("file sniffer failed")
            return False


@dataclass(frozen=True)
class JobType:
    """A registered job type and the options the worker applies to it.

    ``concurrency`` caps running jobs of this type per engine process (None: only the
    engine's global limit). ``timeout`` is seconds per attempt: ``DEFAULT_TIMEOUT``
    (an hour) unless the type says otherwise; None for no limit at all.
    Retries wait ``backoff_base * 2**(attempt-1)`` seconds, capped at ``backoff_max``,
    with full jitter so many failing jobs do not retry in lockstep.

    ``files``: which files it takes from an enqueued folder (None: none from folders;
    a file named with an explicit ``--type`` is still taken). ``worker_preload``:
    modules the CPU worker processes import once, in the fork server they start from
    (heavy libraries: paid once, not per process). ``worker_warm``: a module-level
    function run once in each new CPU worker process. ``checks``: its ``jobtui doctor``
    checks (``jobtui.engine.checks``).
    """

    name: str
    handler: Handler
    params_model: type[BaseModel] = NoParams
    max_attempts: int = 3
    timeout: float | None = DEFAULT_TIMEOUT
    concurrency: int | None = None
    backoff_base: float = 1.0
    backoff_max: float = 300.0
    description: str = ""
    files: FileTypes | None = None
    worker_preload: tuple[str, ...] = ()
    worker_warm: Callable[[], None] | None = None
    checks: tuple[DoctorCheck, ...] = ()

    def accepts(self, path: str, head: bytes | None = None) -> bool:
        """Whether this type takes ``path`` when it is named explicitly: by extension,
        else by its content's head. A type that declares no files takes any file."""
        if self.files is None:
            return True
        return self.files.by_name(path) or (head is not None and self.files.by_content(head))

    @functools.cached_property
    def is_async(self) -> bool:
        """Whether the handler is awaited (not run in a thread): asked once per type,
        not once per job."""
        return is_async_handler(self.handler)

    @property
    def path_param(self) -> str:
        return self.files.path_param if self.files else "path"

    def backoff(self, attempt: int, rng: random.Random | None = None) -> float:
        cap = min(self.backoff_max, self.backoff_base * (2 ** max(attempt - 1, 0)))
        return (rng or random).uniform(cap / 2, cap)


class Registry:
    def __init__(self) -> None:
        self._types: dict[str, JobType] = {}
        self._unavailable: dict[str, str] = {}  # plug-in -> why, and how to get its types

    def unavailable(self, plugin: str, hint: str) -> None:
        """A plug-in that registers nothing here (a missing optional extra) says so and
        how to get its types; ``jobtui doctor`` prints it (``hints``)."""
        self._unavailable[plugin] = hint

    def hints(self) -> dict[str, str]:
        """``{plug-in: hint}`` of the plug-ins whose types are not available here."""
        return dict(self._unavailable)

    def add(self, job_type: JobType) -> None:
        if job_type.name in self._types:
            # Registered twice (two plug-ins, or one loaded twice): the last one wins,
            # but silently replacing a handler would hide the mistake.
            log.warning("job type %s registered again; the later one wins", job_type.name)
        files = job_type.files
        if files is not None and files.auto:
            for other in self._types.values():
                if other.name == job_type.name or other.files is None or not other.files.auto:
                    continue
                both = files.extensions & other.files.extensions
                if both:
                    log.warning(
                        "%s and %s both take %s automatically; %s, registered first, keeps them",
                        other.name,
                        job_type.name,
                        ", ".join(sorted(both)),
                        other.name,
                    )
        self._types[job_type.name] = job_type

    def handler(
        self,
        name: str,
        *,
        params: type[BaseModel] = NoParams,
        max_attempts: int = 3,
        timeout: float | None = DEFAULT_TIMEOUT,
        concurrency: int | None = None,
        backoff_base: float = 1.0,
        backoff_max: float = 300.0,
        files: FileTypes | None = None,
        worker_preload: Iterable[str] = (),
        worker_warm: Callable[[], None] | None = None,
        checks: Iterable[DoctorCheck] = (),
    ) -> Callable[[Handler], Handler]:
        """Decorator: ``@registry.handler("doc.count", params=CountParams, files=...)``."""

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
                    files=files,
                    worker_preload=tuple(worker_preload),
                    worker_warm=worker_warm,
                    checks=tuple(checks),
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

    def type_for_file(self, path: str, head: bytes | None = None) -> JobType | None:
        """The type a file goes to when a folder is enqueued without a job type: the
        first automatic type (in registration order) whose extensions match, else the
        first whose sniffer takes ``head`` (not tried when ``head`` is None)."""
        auto = [jt for jt in self._types.values() if jt.files is not None and jt.files.auto]
        for jt in auto:
            assert jt.files is not None
            if jt.files.by_name(path):
                return jt
        if head:
            for jt in auto:
                assert jt.files is not None
                if jt.files.by_content(head):
                    return jt
        return None

    @property
    def sniffs(self) -> bool:
        """Whether any automatic type looks at contents (else a file's head is not read)."""
        return any(
            jt.files is not None and jt.files.auto and jt.files.sniff is not None
            for jt in self._types.values()
        )

    def worker_preload(self) -> tuple[str, ...]:
        """The modules every CPU worker process should import, in registration order."""
        return tuple(dict.fromkeys(m for jt in self._types.values() for m in jt.worker_preload))

    def worker_warm(self) -> tuple[Callable[[], None], ...]:
        """The distinct warm-up functions, each run once in a new CPU worker process."""
        return tuple(dict.fromkeys(jt.worker_warm for jt in self._types.values() if jt.worker_warm))

    def checks(self) -> list[DoctorCheck]:
        """The distinct doctor checks the types declare (a shared one runs once)."""
        return list(dict.fromkeys(c for jt in self.types() for c in jt.checks))

    def select(self, patterns: Iterable[str] | None) -> Registry:
        """A registry with only the types matching any glob (``image.*``); all when None."""
        pats = list(patterns or [])
        out = Registry()
        out._unavailable = dict(self._unavailable)
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
        for ep in _entry_points(group):
            try:
                ep.load()(self)
                loaded.append(ep.name)
            except Exception:
                log.exception("handler plug-in %s failed to load", ep.name)
        return loaded


def source_tree() -> Path | None:
    """The checkout the imported ``jobtui`` comes from, if it is one (not an install)."""
    import jobtui.engine

    root = Path(jobtui.engine.__file__).resolve().parent.parent
    project = _project_table(root)
    return root if project is not None and project.get("name") == DISTRIBUTION else None


@functools.lru_cache(maxsize=8)
def _project_table(root: Path) -> dict[str, Any] | None:
    """``root/pyproject.toml``'s ``[project]`` table, read once per checkout (None: no
    readable file, as beside an installed package)."""
    try:
        text = (root / "pyproject.toml").read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError):
        return None
    import tomllib  # only in a checkout

    try:
        return dict(tomllib.loads(text).get("project", {}))
    except tomllib.TOMLDecodeError:
        return None


def _source_entry_points(root: Path, group: str) -> list[entrypoints.Entry]:
    table = (_project_table(root) or {}).get("entry-points", {}).get(group, {})
    return [entrypoints.Entry(name, value, group, DISTRIBUTION) for name, value in table.items()]


def entry_points(group: str) -> list[Any]:
    """The group's entry points of every installed distribution, read by
    ``jobtui.engine.entrypoints`` (importlib.metadata where it cannot)."""
    found = entrypoints.find(group)
    if found is None:
        from importlib.metadata import entry_points as metadata_entry_points

        return list(metadata_entry_points(group=group))
    return found


def _entry_points(group: str) -> list[Any]:
    """The group's entry points; this project's own from its source tree when it runs
    from one (see the module's docstring)."""
    found = entry_points(group)
    root = source_tree()
    if root is None:
        return found
    others = [ep for ep in found if _dist_name(ep) != DISTRIBUTION]
    return _source_entry_points(root, group) + others


def _dist_name(ep: Any) -> str | None:
    name = getattr(ep, "dist_name", None)  # entrypoints.Entry: normalised already
    if name is None:
        dist = getattr(ep, "dist", None)  # importlib.metadata.EntryPoint
        name = None if dist is None else str(dist.metadata["Name"])
    return None if name is None else entrypoints.normalise(name)


def default_registry() -> Registry:
    """A registry with every type from the ``jobtui.handlers`` entry points: the
    built-in ones (this package's own entry points) and every installed plug-in."""
    reg = Registry()
    reg.load_entry_points()
    return reg
