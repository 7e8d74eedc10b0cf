"""Secret parameters are never shown: one redaction for the console, the CLI and logs.

A parameter is secret when the job type's params model marks its field
(``Field(json_schema_extra={"secret": True})``, or a ``SecretStr`` type) or when its
key is named like a secret (``password``, ``token``, ``secret``, ``api_key``...) at any
depth: a type that forgot to mark a field still does not leak a key named ``password``.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from pydantic import BaseModel, SecretBytes, SecretStr

REDACTED = "••••••"

# Key names that are secret whatever the model says. Matched on the key's word parts
# (``db_password``, ``accessToken``, ``client-secret``), so ``max_tokens`` or
# ``author`` stay visible; the longer words also inside one word (``mypassword``).
_SECRET_PARTS = frozenset(
    {
        "password",
        "passwd",
        "passphrase",
        "pwd",
        "token",
        "secret",
        "auth",
        "authorization",
        "cookie",
    }
)
_SECRET_PAIRS = frozenset({("api", "key"), ("private", "key"), ("access", "key")})
_SECRET_INSIDE = re.compile(r"password|passwd|passphrase|secret|apikey|credential", re.I)
_WORD = re.compile(r"[A-Z]?[a-z0-9]+|[A-Z]+(?![a-z])")


def is_secret_key(key: str) -> bool:
    """Whether a key's name alone marks its value secret."""
    if _SECRET_INSIDE.search(key):
        return True
    parts = [w.lower() for w in _WORD.findall(key)]
    if any(p in _SECRET_PARTS for p in parts):
        return True
    return any(pair in _SECRET_PAIRS for pair in zip(parts, parts[1:], strict=False))


def secret_fields(model: type[BaseModel] | None) -> frozenset[str]:
    """The fields a params model marks secret (``json_schema_extra={"secret": True}``
    or a ``SecretStr``/``SecretBytes`` annotation)."""
    if model is None:
        return frozenset()
    names = set()
    for name, info in model.model_fields.items():
        extra = info.json_schema_extra
        if isinstance(extra, Mapping) and extra.get("secret"):
            names.add(name)
            if info.alias:
                names.add(info.alias)
        elif info.annotation in (SecretStr, SecretBytes, SecretStr | None, SecretBytes | None):
            names.add(name)
    return frozenset(names)


def redact(value: Any, secret: frozenset[str] | set[str] = frozenset()) -> Any:
    """A copy of ``value`` with every secret value replaced by ``REDACTED``.

    ``secret`` names the top-level keys the params model marks; key names that look
    secret are redacted at every depth. An empty or None secret stays as it is (it
    tells the operator that no password was given, and gives nothing away).
    """
    return _redact(value, secret, top=True)


def _redact(value: Any, secret: frozenset[str] | set[str], *, top: bool) -> Any:
    if isinstance(value, Mapping):
        out: dict[Any, Any] = {}
        for key, item in value.items():
            name = str(key)
            if ((top and name in secret) or is_secret_key(name)) and item not in (None, ""):
                out[key] = REDACTED
            else:
                out[key] = _redact(item, secret, top=False)
        return out
    if isinstance(value, list | tuple):
        return [_redact(item, secret, top=False) for item in value]
    return value


def redact_parameters(parameters: Mapping[str, Any] | None, model: type[BaseModel] | None) -> Any:
    """A job's parameters as they may be shown, given its type's params model."""
    return redact(dict(parameters or {}), secret_fields(model))
