"""Job parameters before a job exists: checked, normalised for dedupe, shown safely.

* ``check_parameters`` validates what an operator typed against the job type's
  model *before* any job is written, so a misspelt ``--param`` is one clear error
  (``INVALID_PARAMETERS``, naming the key and the closest valid one) instead of a
  batch in which every job fails.
* ``normalised_parameters`` is what decides dedupe: the parameters as the model reads
  them, with every value equal to its default left out. ``languages=deu+eng`` (the
  console, which fills in the default) and no ``languages`` (the CLI) are then one
  job, and keys written before normalisation existed stay the same when nothing
  but defaults was given.
"""

from __future__ import annotations

import difflib
from collections.abc import Sequence
from typing import Any

from pydantic import BaseModel, ValidationError

from jobtui.engine.errors import ConfigError
from jobtui.engine.redact import is_secret_key

#: parameters the enqueue fills in per file; never part of what the operator chose
PER_FILE_KEYS = ("path", "sha256")


def path_param(job_type: Any) -> str:
    """The parameter that carries a job's input path (``path`` unless the type's file
    declaration names another one)."""
    files = getattr(job_type, "files", None)
    return str(getattr(files, "path_param", None) or "path")


def normalised_parameters(
    model: type[BaseModel] | None, parameters: dict[str, Any]
) -> dict[str, Any]:
    """The operator's choices in canonical form: validated by ``model`` (types
    coerced, ``dpi="300"`` is ``300``), defaults left out, per-file keys dropped.
    Parameters the model refuses are kept as given (the job will fail visibly)."""
    raw = {k: v for k, v in parameters.items() if k not in PER_FILE_KEYS}
    if model is None:
        return raw
    probe = dict(parameters)
    fields = model.model_fields
    for key in PER_FILE_KEYS:
        # Required per-file fields get a stand-in: they are dropped again below.
        if key in fields and key not in probe and fields[key].is_required():
            probe[key] = "x"
    try:
        dumped = model.model_validate(probe).model_dump(mode="json", exclude_defaults=True)
    except ValidationError:
        return raw
    return {k: v for k, v in dumped.items() if k not in PER_FILE_KEYS}


def check_parameters(job_type: Any, parameters: dict[str, Any]) -> None:
    """Raise ``ConfigError("INVALID_PARAMETERS")`` when ``parameters`` cannot be a
    job of ``job_type`` (a ``JobType``): an unknown key (for models that forbid
    extras) or a bad value. The per-file path is filled in with a stand-in."""
    model: type[BaseModel] = job_type.params_model
    probe = dict(parameters)
    fields = model.model_fields
    for key in (path_param(job_type), *PER_FILE_KEYS):
        if key in fields and key not in probe and fields[key].is_required():
            probe[key] = "input.file" if key != "sha256" else "0" * 64
    try:
        model.model_validate(probe)
    except ValidationError as exc:
        raise ConfigError(
            "INVALID_PARAMETERS",
            f"{job_type.name}: " + "; ".join(_explain(e, fields) for e in exc.errors()),
        ) from None


def _explain(error: Any, fields: dict[str, Any]) -> str:
    key = ".".join(str(p) for p in error.get("loc", ())) or "parameters"
    if error.get("type") == "extra_forbidden":
        known = sorted(k for k in fields if k not in PER_FILE_KEYS)
        close = difflib.get_close_matches(key, known, n=1)
        hint = f"; did you mean {close[0]!r}?" if close else ""
        return f"unknown parameter {key!r}{hint} (known: {', '.join(known)})"
    value = "" if is_secret_key(key) else f" = {error.get('input')!r}"
    return f"parameter {key!r}{value}: {error.get('msg', 'invalid')}"


def check_parameters_for(types: Sequence[Any], parameters: dict[str, Any]) -> None:
    """``check_parameters`` for a batch whose files may go to any of ``types`` (a
    folder enqueued without a job type): each key goes to the types that declare it,
    so a key is an error only when none of them declares it (and none takes extra
    keys), or when a type that declares it refuses its value."""
    if not parameters or not types:
        return
    if len(types) == 1:
        check_parameters(types[0], parameters)
        return
    declared = {k for jt in types for k in jt.params_model.model_fields}
    takes_any = any(jt.params_model.model_config.get("extra") == "allow" for jt in types)
    unknown = sorted(k for k in parameters if k not in declared)
    if unknown and not takes_any:
        known = sorted(declared - set(PER_FILE_KEYS))
        parts = []
        for key in unknown:
            close = difflib.get_close_matches(key, known, n=1)
            parts.append(f"{key!r}" + (f" (did you mean {close[0]!r}?)" if close else ""))
        names = ", ".join(jt.name for jt in types)
        raise ConfigError(
            "INVALID_PARAMETERS",
            f"unknown parameter {', '.join(parts)}: no job type a file may go to "
            f"({names}) takes it (known: {', '.join(known)})",
        )
    for jt in types:
        mine = {k: v for k, v in parameters.items() if k in jt.params_model.model_fields}
        if mine:
            check_parameters(jt, mine)
