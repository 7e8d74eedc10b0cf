"""The YAML config file: jobtui's own section, the seed's keys, and strict key checks.

The file may be the seed application's ``config.yaml``, which holds sections of its
own, so only these are read:

- ``jobtui:``: every setting by its name (docs/configuration.md); an unknown key is an
  error that names it and suggests the closest valid one.
- ``session_worker:`` (or ``generic_worker:``, the seed's planned rename): the seed's
  worker keys, all of which jobtui now owns, so an unknown key there is an error too:
  ``active`` -> ``claim``, ``max_concurrent`` -> ``concurrency``,
  ``poll_interval_sec`` -> ``poll_interval``, ``max_concurrent_per_type`` ->
  ``concurrency_per_type``.
- ``mongodb:``: ``uri`` -> ``mongodb_uri``, ``db_name`` (or ``database``) ->
  ``mongodb_db_name``. The application may keep keys of its own there: they are left
  alone, unless one looks like a misspelling of these (then it is an error).

Other top-level sections belong to the application, except one that looks like a
misspelling of the sections above. ``jobtui:`` keys beat the seed's when both are set.
``${VAR}`` and ``${VAR:-default}`` in these sections' strings are expanded; an unset
(or empty) ``VAR`` without a default is an error that names it, rather than a URI like
``${MONGODB_URI}`` reaching the driver. Every message is passed through
``redact_secrets`` (by ``ConfigError``), and YAML syntax errors name the line and column
but do not quote it: the line may hold a password.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from jobtui.engine.errors import ConfigError

SEED_WORKER_KEYS = {
    "active": "claim",
    "max_concurrent": "concurrency",
    "poll_interval_sec": "poll_interval",
    "max_concurrent_per_type": "concurrency_per_type",
}
MONGODB_KEYS = {"uri": "mongodb_uri", "db_name": "mongodb_db_name", "database": "mongodb_db_name"}
SECTIONS = ("jobtui", "session_worker", "generic_worker", "mongodb")
_VAR = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}")


def closest(key: str, valid: list[str] | tuple[str, ...], cutoff: float = 0.6) -> str | None:
    """The valid key ``key`` was most probably meant to be (difflib), if any is close."""
    found = difflib.get_close_matches(key, list(valid), n=1, cutoff=cutoff)
    return found[0] if found else None


def _unknown(path: Path, where: str, key: str, valid: list[str] | tuple[str, ...]) -> ConfigError:
    guess = closest(key, valid)
    hint = f"; did you mean {guess!r}?" if guess else f"; valid keys: {', '.join(sorted(valid))}"
    return ConfigError("CONFIG_INVALID", f"config file {path}: unknown key {where}{key!r}{hint}")


def _expand(value: Any, env: Mapping[str, str], path: Path, where: str) -> Any:
    if isinstance(value, dict):
        return {k: _expand(v, env, path, f"{where}.{k}") for k, v in value.items()}
    if isinstance(value, list):
        return [_expand(v, env, path, f"{where}[{i}]") for i, v in enumerate(value)]
    if not isinstance(value, str):
        return value

    def sub(m: re.Match[str]) -> str:
        name, default = m.group(1), m.group(2)
        if env.get(name):
            return env[name]
        if default is not None:
            return default
        raise ConfigError(
            "CONFIG_INVALID",
            f"config file {path}: {where} uses ${{{name}}}, but the environment variable "
            f"{name} is not set (set it, or write ${{{name}:-default}})",
        )

    return _VAR.sub(sub, value)


def _mapping(data: Any, path: Path, where: str) -> dict[str, Any]:
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError("CONFIG_INVALID", f"config file {path}: {where} must be a mapping")
    return {str(k): v for k, v in data.items()}


def _load_yaml(path: Path) -> dict[str, Any]:
    import yaml  # only with a config file: ~25 ms of every command's start otherwise

    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(
            "CONFIG_UNREADABLE", f"cannot read config file {path}: {exc.strerror}"
        ) from exc
    except UnicodeDecodeError:
        raise ConfigError("CONFIG_INVALID", f"config file {path} is not UTF-8 text") from None
    try:
        data = yaml.safe_load(text)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark
        at = f"line {mark.line + 1}, column {mark.column + 1}: " if mark else ""
        raise ConfigError(
            "CONFIG_INVALID", f"config file {path} is not valid YAML: {at}{exc.problem}"
        ) from None
    except yaml.YAMLError as exc:
        raise ConfigError(
            "CONFIG_INVALID", f"config file {path} is not valid YAML: {type(exc).__name__}"
        ) from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError("CONFIG_INVALID", f"config file {path} must hold a mapping")
    return {str(k): v for k, v in data.items()}


def read_config_file(path: Path, env: Mapping[str, str]) -> dict[str, Any]:
    """The settings ``path`` gives, by Settings field name (not yet validated)."""
    from jobtui.engine.config import Collections, Settings

    data = _load_yaml(path)
    for key in data:
        guess = closest(key, SECTIONS, cutoff=0.75)
        if key not in SECTIONS and guess:
            raise _unknown(path, "", key, SECTIONS)
    sections = {
        name: _expand(_mapping(data.get(name), path, name), env, path, name) for name in SECTIONS
    }

    out: dict[str, Any] = {}
    fields = list(Settings.model_fields)
    for key, value in sections["jobtui"].items():
        if key not in Settings.model_fields:
            raise _unknown(path, "jobtui.", key, fields)
        if key == "collections":
            for sub in _mapping(value, path, "jobtui.collections"):
                if sub not in Collections.model_fields:
                    raise _unknown(path, "jobtui.collections.", sub, list(Collections.model_fields))
        out[key] = value

    for name in ("session_worker", "generic_worker"):
        for key, value in sections[name].items():
            if key not in SEED_WORKER_KEYS:
                raise _unknown(path, f"{name}.", key, list(SEED_WORKER_KEYS))
            out.setdefault(SEED_WORKER_KEYS[key], value)

    for key, value in sections["mongodb"].items():
        if key in MONGODB_KEYS:
            if value not in (None, ""):
                out.setdefault(MONGODB_KEYS[key], str(value))
        elif closest(key, list(MONGODB_KEYS), cutoff=0.75):
            raise _unknown(path, "mongodb.", key, list(MONGODB_KEYS))
        # else: the application's own key (pool sizes, timeouts...): not ours to judge
    return out
