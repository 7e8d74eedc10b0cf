"""Configuration: one validated model, read from defaults < YAML file < environment <
command line.

``Settings`` is a plain pydantic model: code and tests build it explicitly and it reads
nothing from the environment. ``load_settings`` (what the CLI calls) layers the
sources on top of it: every field has an environment variable ``JOBTUI_<FIELD>``
(names in any case; nested: ``JOBTUI_COLLECTIONS__JOBS``; empty means unset),
``MONGODB_URI`` keeps working, and the YAML file (engine/config_file.py) is checked key
by key, so a misspelt key is an error that names it and the key it probably meant. A
URI's password is never printed: use ``Settings.safe_uri`` / ``redact_uri``.

The environment is read here (``_from_environment``) rather than through
pydantic-settings: its import alone cost ~0.1 s of every command's start (its source
providers pull in ``importlib.metadata``, ``email``, ``dotenv``...), for what is a
loop over ``os.environ`` and one ``model_validate``.
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator
from pydantic import model_validator as _model_validator

from jobtui.engine.errors import ConfigError
from jobtui.engine.uri import redact_uri, uri_database

log = logging.getLogger(__name__)
ENV_PREFIX = "JOBTUI_"
NESTED = "__"  # JOBTUI_COLLECTIONS__JOBS: one key of a mapping setting
# The URI's variables, the first set one wins (the seed's MONGODB_URI keeps working).
URI_VARIABLES = (ENV_PREFIX + "MONGODB_URI", "MONGODB_URI")
DEFAULT_DATABASE = "jobtui"


def default_store_path() -> Path:
    from platformdirs import user_data_dir  # ~10 ms; only when no store is named

    return Path(user_data_dir("jobtui", appauthor=False)) / "jobtui.db"


class Collections(BaseModel):
    model_config = ConfigDict(extra="forbid")

    jobs: str = "jobs"
    batches: str = "batches"
    logs: str = "job_logs"
    workers: str = "workers"


def _pairs(value: str) -> dict[str, str]:
    """``"pdf.transcribe=2,session=1"`` -> ``{"pdf.transcribe": "2", "session": "1"}``."""
    pairs = [p.partition("=") for p in _split_list(value, ", ")]
    if any(not sep or not k for k, sep, _ in pairs):
        raise ValueError("expected TYPE=N[,TYPE=N...]")
    return {k.strip(): n.strip() for k, _, n in pairs}


def _split_list(value: Any, seps: str) -> Any:
    """``"a:b"`` -> ``["a", "b"]`` for list settings given as one string (environment)."""
    if isinstance(value, str):
        for sep in seps[1:]:
            value = value.replace(sep, seps[0])
        return [v.strip() for v in value.split(seps[0]) if v.strip()]
    return value


class Settings(BaseModel):
    """Every option; see docs/configuration.md for the table of names."""

    model_config = ConfigDict(extra="forbid", validate_default=False)

    mongodb_uri: str | None = None
    # The database: this explicit name, else the URI's path, else ``mongodb_db_name``
    # (the seed's ``mongodb.db_name``), else "jobtui". Always a name once validated.
    database: str = ""
    mongodb_db_name: str | None = None
    collections: Collections = Field(default_factory=Collections)
    store: Path | None = None  # embedded SQLite file; default under the user's data dir
    concurrency: int = Field(4, ge=1, le=1024)
    # Per job type caps on top of ``concurrency`` (the seed's max_concurrent_per_type);
    # a type's own declared limit applies when it has no entry here.
    concurrency_per_type: dict[str, Annotated[int, Field(ge=1)]] = Field(default_factory=dict)
    # False: this process claims nothing (the seed's ``session_worker.active: false``);
    # the console then only watches and ``jobtui worker`` refuses to start.
    claim: bool = True
    poll_interval: float = Field(2.0, gt=0)
    # A dead worker's jobs are back within lease + watchdog interval (< 15 s); an
    # outage of the store shorter than the lease (minus a beat) re-runs nothing.
    lease_seconds: float = Field(12.0, gt=0)
    heartbeat_interval: float = Field(1.0, gt=0)  # one store write per worker per beat
    watchdog_interval: float = Field(2.0, gt=0)
    shutdown_grace: float = Field(30.0, ge=0)
    output_dir: Path = Path("jobtui-output")
    cpu_workers: int | None = Field(None, ge=1)
    # Added to the CPU worker processes' nice value: the engine's own process (its
    # event loop, the console) keeps the CPU it needs while they use the rest.
    cpu_niceness: int = Field(10, ge=0, le=19)
    # Address space each CPU worker process may use, in MiB (RLIMIT_AS): a runaway job
    # (a giant page rendered at 300 dpi) fails alone instead of exhausting the machine.
    # None: half the machine's memory; 0: no limit.
    cpu_memory_limit_mb: int | None = Field(None, ge=0)
    # Seconds the event loop may go without a turn before the job blocking it is logged.
    loop_blocked_after: float = Field(1.0, gt=0)
    # Job-type globs this engine serves (None: all); environment: comma-separated.
    types: list[str] | None = None
    # Workers read input only under these (empty: any path); environment: os.pathsep.
    input_roots: list[Path] = Field(default_factory=list)
    # Refuse input files with more than one hard link (one may live outside the roots).
    input_refuse_hard_links: bool = False
    webhook_secret: str | None = None  # signs webhooks that carry no secret of their own
    webhook_attempts: int = Field(5, ge=1, le=100)  # tries per webhook delivery
    webhook_timeout: float = Field(10.0, gt=0)  # seconds per attempt
    # Retention (engine/retention.py): days a finished job is kept; 0 keeps it forever.
    # None: the store's default: the embedded SQLite store keeps completed jobs 30 days,
    # failed and cancelled ones 90; a MongoDB store keeps everything (a shared database
    # holds other programs' history: deleting it is the operator's decision).
    retention_completed_days: float | None = Field(None, ge=0)
    retention_failed_days: float | None = Field(None, ge=0)
    retention_cancelled_days: float | None = Field(None, ge=0)  # None: as failed ones
    retention_logs_days: float | None = Field(None, ge=0)  # None/0: as long as their job
    retention_interval: float = Field(600.0, gt=0)  # seconds between sweeps (+/- 10 % jitter)
    # Logging (engine/logsetup.py). None: the command's own default (INFO for
    # ``worker``, WARNING for the rest, whose stdout/stderr is meant for people).
    log_level: Literal["debug", "info", "warning", "error", "critical"] | None = None
    log_format: Literal["text", "json"] = "text"
    # The seed's documents: a job whose job_type is empty, null or missing is of this type.
    legacy_job_type: str = Field("session", min_length=1)
    # A job left `processing` with no jobtui lease (by the seed's worker) is adopted by
    # the watchdog once it has not been updated for this many seconds.
    stall_timeout: float = Field(3600.0, gt=0)

    @field_validator("mongodb_uri", mode="before")
    @classmethod
    def _no_uri(cls, v: Any) -> Any:
        return None if isinstance(v, str) and v.strip().lower() in ("", "none") else v

    @field_validator("log_level", "log_format", mode="before")
    @classmethod
    def _lower(cls, v: Any) -> Any:
        return v.lower() if isinstance(v, str) else v

    @field_validator("types", mode="before")
    @classmethod
    def _types(cls, v: Any) -> Any:
        return _split_list(v, ", ")

    @field_validator("input_roots", mode="before")
    @classmethod
    def _roots(cls, v: Any) -> Any:
        return _split_list(v, os.pathsep)

    @field_validator("concurrency_per_type", mode="before")
    @classmethod
    def _per_type(cls, v: Any) -> Any:
        return _pairs(v) if isinstance(v, str) else v

    @_model_validator(mode="after")
    def _resolve_database(self) -> Settings:
        if not self.database:
            # Not through setattr: that would mark ``database`` as explicitly set.
            self.__dict__["database"] = self.database_source[0]
        return self

    @property
    def database_source(self) -> tuple[str, str]:
        """``(name, where it came from)`` as the rules above resolve it."""
        if self.database and "database" in self.model_fields_set:
            return self.database, "setting"
        from_uri = uri_database(self.mongodb_uri) if self.mongodb_uri else None
        if from_uri:
            return from_uri, "URI path"
        if self.mongodb_db_name:
            return self.mongodb_db_name, "mongodb.db_name"
        return DEFAULT_DATABASE, "default"

    @property
    def safe_uri(self) -> str:
        return redact_uri(self.mongodb_uri) if self.mongodb_uri else ""

    @property
    def cpu_memory_limit(self) -> int:
        """Bytes of address space per CPU worker process (0: no limit)."""
        if self.cpu_memory_limit_mb is not None:
            return self.cpu_memory_limit_mb << 20
        try:
            total = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
        except (ValueError, OSError, AttributeError):
            return 0
        return max(total // 2, 2 << 30)

    @property
    def store_path(self) -> Path:
        return self.store or default_store_path()


# Mapping settings whose keys may also come one variable each (``JOBTUI_<FIELD>__<KEY>``).
_MAPPINGS = ("collections", "concurrency_per_type")


def _from_environment(env: Mapping[str, str]) -> dict[str, Any]:
    """The settings the environment gives, by field name (values not yet validated).

    ``JOBTUI_<FIELD>`` in any case (the last spelling in ``env`` wins); an empty value
    is unset; ``collections`` is a JSON object, ``JOBTUI_COLLECTIONS__JOBS`` (or
    ``JOBTUI_CONCURRENCY_PER_TYPE__<TYPE>``, the type name lower-cased) sets one key of
    it; the list and mapping settings keep their one-string forms for the model's
    validators (``pdf.*,session``; ``pdf.transcribe=2``); ``JOBTUI_MONGODB_URI`` beats
    ``MONGODB_URI``. Other ``JOBTUI_`` variables are not settings: ignored here, and
    pointed out by ``_warn_misspelt_variables`` when close to one.
    """
    fields = Settings.model_fields
    out: dict[str, Any] = {}
    keys: dict[str, dict[str, str]] = {}  # field -> {key: value} from JOBTUI_FIELD__KEY
    uri: dict[str, str] = {}
    for name, value in env.items():
        if value == "":
            continue
        upper = name.upper()
        if upper in URI_VARIABLES:
            uri[upper] = value
            continue
        if not upper.startswith(ENV_PREFIX):
            continue
        field, nested, key = upper[len(ENV_PREFIX) :].lower().partition(NESTED)
        if field not in fields:
            continue
        if nested:
            if field in _MAPPINGS:
                keys.setdefault(field, {})[key] = value
        else:
            out[field] = value
    for name in URI_VARIABLES:
        if name in uri:
            out["mongodb_uri"] = uri[name]
            break
    if "collections" in out:
        try:
            out["collections"] = json.loads(out["collections"])
        except ValueError:
            raise ConfigError(
                "CONFIG_INVALID",
                f"invalid setting collections ({ENV_PREFIX}COLLECTIONS): expected a JSON "
                'object such as {"jobs": "event_jobs"}, or set '
                f"{ENV_PREFIX}COLLECTIONS{NESTED}JOBS (and ...BATCHES, ...LOGS, ...WORKERS)",
            ) from None
    for field, entries in keys.items():
        whole = out.get(field, {})
        if field == "concurrency_per_type" and isinstance(whole, str):
            try:
                whole = _pairs(whole)
            except ValueError:
                continue  # the model's validator says so, naming the setting
        out[field] = {**whole, **entries} if isinstance(whole, dict) else whole
    return out


def _layer(*sources: dict[str, Any]) -> dict[str, Any]:
    """The sources merged, later ones winning; mappings merged key by key (a YAML
    file's ``collections.jobs`` and ``JOBTUI_COLLECTIONS__BATCHES`` both apply)."""
    out: dict[str, Any] = {}
    for source in sources:
        for key, value in source.items():
            below = out.get(key)
            if isinstance(below, dict) and isinstance(value, dict):
                out[key] = _layer(below, value)
            else:
                out[key] = value
    return out


def load_settings(
    config_file: str | Path | None = None,
    overrides: dict[str, Any] | None = None,
    environ: Mapping[str, str] | None = None,
) -> Settings:
    """Build settings from a YAML file, the environment and CLI overrides (None = unset).

    Raises ``ConfigError`` (``CONFIG_INVALID`` / ``CONFIG_UNREADABLE``) with a message
    that names the setting and never shows a secret.
    """
    env = dict(os.environ if environ is None else environ)
    _warn_misspelt_variables(env)
    cfg = config_file or env.get(ENV_PREFIX + "CONFIG")
    if cfg:
        from jobtui.engine.config_file import read_config_file

        from_file = read_config_file(Path(cfg), env)
    else:
        from_file = {}
    init = {k: v for k, v in (overrides or {}).items() if v is not None}
    try:
        return Settings.model_validate(_layer(from_file, _from_environment(env), init))
    except ValidationError as exc:
        raise ConfigError("CONFIG_INVALID", _explain(exc)) from None


def _warn_misspelt_variables(env: dict[str, str]) -> None:
    """A ``JOBTUI_*`` variable that is no setting but close to one is probably a typo:
    say so (a warning, not an error: the environment is shared with other tools)."""
    known = [f.upper() for f in Settings.model_fields] + ["CONFIG"]
    known += [f"COLLECTIONS{NESTED}{c.upper()}" for c in Collections.model_fields]
    per_type = f"CONCURRENCY_PER_TYPE{NESTED}"  # then a job type's name: anything goes
    for name in env:
        upper = name.upper()
        rest = upper.removeprefix(ENV_PREFIX)
        if not upper.startswith(ENV_PREFIX) or rest in known or rest.startswith(per_type):
            continue
        from jobtui.engine.config_file import closest  # (difflib) only for unknown names

        guess = closest(rest, known, cutoff=0.85)  # on the names after the prefix
        if guess:
            log.warning(
                "environment variable %s is not a setting; did you mean %s%s?",
                name,
                ENV_PREFIX,
                guess,
            )


def _explain(exc: ValidationError) -> str:
    first = exc.errors()[0]
    loc = [str(p) for p in first["loc"]]
    more = f" (and {exc.error_count() - 1} more)" if exc.error_count() > 1 else ""
    where = f"jobtui.{'.'.join(loc)} in a config file, {ENV_PREFIX}{loc[0].upper()}"
    return f"invalid setting {'.'.join(loc)} ({where} or its option): {first['msg']}{more}"
