"""Configuration: defaults < YAML file < environment < command line.

The YAML file may use our own keys or the seed's (``session_worker.max_concurrent``,
``session_worker.poll_interval_sec``, ``mongodb.uri``), so an existing
``config.yaml`` keeps working. A URI's password is never printed: use
``Settings.safe_uri`` / ``redact_uri``.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Literal

from platformdirs import user_data_dir
from pydantic import BaseModel, Field, ValidationError

from jobtui.engine.errors import ConfigError
from jobtui.engine.uri import redact_uri

ENV_PREFIX = "JOBTUI_"


def default_store_path() -> Path:
    return Path(user_data_dir("jobtui", appauthor=False)) / "jobtui.db"


class Collections(BaseModel):
    jobs: str = "jobs"
    batches: str = "batches"
    logs: str = "job_logs"
    workers: str = "workers"


class Settings(BaseModel):
    """Every option. Environment: ``MONGODB_URI`` and ``JOBTUI_<FIELD>`` (upper case)."""

    mongodb_uri: str | None = None
    database: str = "jobtui"
    collections: Collections = Field(default_factory=Collections)
    store: Path | None = None  # embedded SQLite file; default under the user's data dir
    concurrency: int = Field(4, ge=1, le=1024)
    poll_interval: float = Field(2.0, gt=0)
    lease_seconds: float = Field(30.0, gt=0)
    heartbeat_interval: float = Field(1.0, gt=0)
    watchdog_interval: float = Field(5.0, gt=0)
    shutdown_grace: float = Field(30.0, ge=0)
    output_dir: Path = Path("jobtui-output")
    cpu_workers: int | None = Field(None, ge=1)
    # Added to the CPU worker processes' nice value: the engine's own process (its
    # event loop, the console) keeps the CPU it needs while they use the rest.
    cpu_niceness: int = Field(10, ge=0, le=19)
    types: list[str] | None = None  # job-type globs this engine serves (None: all)
    input_roots: list[Path] = Field(default_factory=list)  # empty: workers may read any path
    webhook_secret: str | None = None  # HMAC key for webhooks that carry no secret of their own
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

    @property
    def safe_uri(self) -> str:
        return redact_uri(self.mongodb_uri) if self.mongodb_uri else ""

    @property
    def store_path(self) -> Path:
        return self.store or default_store_path()


_ENV_FIELDS = {
    "database": "DATABASE",
    "store": "STORE",
    "concurrency": "CONCURRENCY",
    "poll_interval": "POLL_INTERVAL",
    "lease_seconds": "LEASE_SECONDS",
    "output_dir": "OUTPUT_DIR",
    "cpu_workers": "CPU_WORKERS",
    "cpu_niceness": "CPU_NICENESS",
    "webhook_secret": "WEBHOOK_SECRET",
    "retention_completed_days": "RETENTION_COMPLETED_DAYS",
    "retention_failed_days": "RETENTION_FAILED_DAYS",
    "retention_cancelled_days": "RETENTION_CANCELLED_DAYS",
    "retention_logs_days": "RETENTION_LOGS_DAYS",
    "log_level": "LOG_LEVEL",
    "log_format": "LOG_FORMAT",
    "legacy_job_type": "LEGACY_JOB_TYPE",
    "stall_timeout": "STALL_TIMEOUT",
}


def _from_yaml(path: Path) -> dict[str, Any]:
    import yaml  # only with a config file: ~25 ms of every command's start otherwise

    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except OSError as exc:
        raise ConfigError(
            "CONFIG_UNREADABLE", f"cannot read config file {path}: {exc.strerror}"
        ) from exc
    except yaml.YAMLError as exc:
        raise ConfigError("CONFIG_INVALID", f"config file {path} is not valid YAML: {exc}") from exc
    if not isinstance(data, dict):
        raise ConfigError("CONFIG_INVALID", f"config file {path} must hold a mapping")
    out: dict[str, Any] = dict(data.get("jobtui") or {})
    seed = data.get("session_worker") or {}
    if "max_concurrent" in seed:
        out.setdefault("concurrency", seed["max_concurrent"])
    if "poll_interval_sec" in seed:
        out.setdefault("poll_interval", seed["poll_interval_sec"])
    mongo = data.get("mongodb") or {}
    if mongo.get("uri"):
        out.setdefault("mongodb_uri", os.path.expandvars(str(mongo["uri"])))
    if mongo.get("database"):
        out.setdefault("database", mongo["database"])
    return out


def load_settings(
    config_file: str | Path | None = None,
    overrides: dict[str, Any] | None = None,
    environ: dict[str, str] | None = None,
) -> Settings:
    """Build settings from a YAML file, the environment and CLI overrides (None = unset)."""
    env = os.environ if environ is None else environ
    values: dict[str, Any] = {}
    cfg = config_file or env.get(ENV_PREFIX + "CONFIG")
    if cfg:
        values.update(_from_yaml(Path(cfg)))
    if env.get("MONGODB_URI"):
        values["mongodb_uri"] = env["MONGODB_URI"]
    for field_name, suffix in _ENV_FIELDS.items():
        if env.get(ENV_PREFIX + suffix):
            values[field_name] = env[ENV_PREFIX + suffix]
    if env.get(ENV_PREFIX + "INPUT_ROOTS"):  # a list, like PATH: os.pathsep between roots
        values["input_roots"] = [r for r in env[ENV_PREFIX + "INPUT_ROOTS"].split(os.pathsep) if r]
    values.update({k: v for k, v in (overrides or {}).items() if v is not None})
    if values.get("mongodb_uri") in ("", "none"):
        values["mongodb_uri"] = None
    try:
        return Settings.model_validate(values)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"])
        raise ConfigError("CONFIG_INVALID", f"invalid setting {where}: {first['msg']}") from None
