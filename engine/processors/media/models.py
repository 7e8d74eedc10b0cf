"""Which speech model a job uses, where it lives, and how it gets there.

The model setting is a local folder (a CTranslate2 Whisper model: ``model.bin``,
``config.json``, ``tokenizer.json`` ...) or a model name (``small``, the default;
``large-v3-turbo`` for quality) looked up in the models folder. A name not there is
downloaded once, into the models folder, by ``jobtui models pull NAME`` or by the first
job that needs it (logged, and shown as the job's step) — unless the offline switch
is on: then a missing model fails the job at once with ``MODEL_UNAVAILABLE`` and a
message that says how to get it, so a batch never stalls on a silent download.

Settings come from the environment (``JOBTUI_AUDIO_MODEL``, ``JOBTUI_AUDIO_MODELS_DIR``,
``JOBTUI_AUDIO_OFFLINE``; ``HF_HUB_OFFLINE=1`` counts as offline too) or from a job's
``model`` parameter; this module never imports faster-whisper until a download.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from platformdirs import user_data_dir

from jobtui.engine.errors import JobFailed
from jobtui.engine.processors.media.decode import ErrorCode

DEFAULT_MODEL = "small"
COMPUTE_TYPE = "int8"  # on a CPU: ~1/3 the memory of float32 at the same accuracy
# Approximate download sizes of the converted models (float16 weights on disk).
MODEL_SIZES_MB = {
    "tiny": 75,
    "base": 145,
    "small": 484,
    "medium": 1530,
    "large-v3": 3090,
    "large-v3-turbo": 1620,
}
MODEL_FILES = ("model.bin", "config.json")
_TRUE = {"1", "true", "yes", "on"}


@dataclass(frozen=True)
class ModelSettings:
    model: str = DEFAULT_MODEL
    models_dir: Path = Path(user_data_dir("jobtui", appauthor=False)) / "models"
    offline: bool = False

    @classmethod
    def from_env(cls, environ: dict[str, str] | None = None) -> ModelSettings:
        env = os.environ if environ is None else environ
        base = cls()
        offline = any(
            env.get(k, "").strip().lower() in _TRUE
            for k in ("JOBTUI_AUDIO_OFFLINE", "HF_HUB_OFFLINE")
        )
        folder = env.get("JOBTUI_AUDIO_MODELS_DIR")
        return cls(
            model=env.get("JOBTUI_AUDIO_MODEL") or base.model,
            models_dir=Path(folder).expanduser() if folder else base.models_dir,
            offline=offline,
        )


def is_model_dir(path: Path) -> bool:
    return all((path / name).is_file() for name in MODEL_FILES)


def looks_like_path(model: str) -> bool:
    return (
        os.sep in model
        or model.startswith((".", "~"))
        or (os.altsep is not None and os.altsep in model)
    )


def local_model(model: str, models_dir: Path) -> Path | None:
    """The folder holding ``model`` (a path, or a name in ``models_dir``), if it is there."""
    path = Path(model).expanduser()
    if looks_like_path(model) or path.is_absolute():
        return path if is_model_dir(path) else None
    named = models_dir / model
    return named if is_model_dir(named) else None


def how_to_get(model: str, settings: ModelSettings) -> str:
    if looks_like_path(model):
        return (
            f"put a CTranslate2 Whisper model (model.bin, config.json, tokenizer.json) in "
            f"{model}, or set JOBTUI_AUDIO_MODEL to a model name"
        )
    return (
        f"run 'jobtui models pull {model}' (on a machine with network access; then copy "
        f"{settings.models_dir / model} here), or set JOBTUI_AUDIO_MODEL to a local model folder"
    )


def unavailable(model: str, settings: ModelSettings, why: str) -> JobFailed:
    return JobFailed(
        ErrorCode.MODEL_UNAVAILABLE,
        f"speech model '{model}' {why}; {how_to_get(model, settings)}",
        {"model": model, "models_dir": str(settings.models_dir)},
    )


def pull(model: str, models_dir: Path) -> Path:
    """Download ``model`` (a name faster-whisper knows, or a Hub id) into
    ``models_dir/<model>``; a model already there is not fetched again."""
    import warnings

    from faster_whisper.utils import download_model

    target = models_dir / model.replace("/", "--")
    if is_model_dir(target):
        return target
    target.mkdir(parents=True, exist_ok=True)
    with warnings.catch_warnings():  # huggingface_hub's deprecation chatter about symlinks
        warnings.simplefilter("ignore")
        download_model(model, output_dir=str(target))
    if not is_model_dir(target):
        raise OSError(f"the download of {model} left no model in {target}")
    return target


def resolve(model: str, settings: ModelSettings, *, download: bool = True) -> Path:
    """The local folder of ``model``; downloads it unless offline (or ``download``
    is False). Anything else is ``JobFailed(MODEL_UNAVAILABLE)``."""
    found = local_model(model, settings.models_dir)
    if found is not None:
        return found
    if looks_like_path(model) or Path(model).expanduser().is_absolute():
        raise unavailable(model, settings, f"is not a model folder ({', '.join(MODEL_FILES)})")
    if settings.offline:
        raise unavailable(
            model, settings, f"is not in {settings.models_dir} and downloads are off (offline)"
        )
    if not download:
        raise unavailable(model, settings, f"is not in {settings.models_dir}")
    try:
        return pull(model, settings.models_dir)
    except Exception as exc:  # noqa: BLE001 - network, disk, unknown name: all say the same
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise unavailable(model, settings, f"could not be downloaded ({first[:200]})") from None
