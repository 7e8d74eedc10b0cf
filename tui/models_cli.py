"""``jobtui models``: the speech models of the audio plug-in (list, pull).

``jobtui models pull small`` downloads a model into the models folder ahead of a
batch (or on a machine with network access, to copy the folder to one without);
``jobtui models list`` shows what is there and which one jobs use. Both need the
``audio`` extra; without it they say how to install it.
"""

from __future__ import annotations

import argparse
import asyncio
import json
from pathlib import Path
from typing import Any

from jobtui.engine.errors import ConfigError, JobFailed

EXIT_OK = 0


def add_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("models", help="speech models for audio/video jobs: list, pull")
    verbs = p.add_subparsers(dest="models_command", metavar="ACTION", required=True)
    pull = verbs.add_parser("pull", help="download a model into the models folder")
    pull.add_argument("name", metavar="NAME", help="small (default), large-v3-turbo, tiny, ...")
    pull.add_argument("--models-dir", metavar="DIR", help="default: JOBTUI_AUDIO_MODELS_DIR")
    ls = verbs.add_parser("list", help="models in the models folder, and the one jobs use")
    ls.add_argument("--models-dir", metavar="DIR", help="default: JOBTUI_AUDIO_MODELS_DIR")
    ls.add_argument("--json", action="store_true", help="print one JSON object")


def _media_models() -> Any:
    from jobtui.engine.processors import media

    absent = media.missing()
    if absent:
        raise ConfigError(
            "MISSING_EXTRA",
            f"speech models need the audio extra ({', '.join(absent)} not installed): "
            + media.MISSING_EXTRA_HINT,
        )
    from jobtui.engine.processors.media import models

    return models


async def cmd_models(args: argparse.Namespace, settings: Any, registry: Any) -> int:
    models = _media_models()
    conf = models.ModelSettings.from_env()
    if args.models_dir:
        conf = models.ModelSettings(conf.model, Path(args.models_dir).expanduser(), conf.offline)
    if args.models_command == "pull":
        if conf.offline:
            raise ConfigError(
                "MODEL_UNAVAILABLE",
                "downloads are off (JOBTUI_AUDIO_OFFLINE or HF_HUB_OFFLINE is set); "
                "unset it for this command",
            )
        size = models.MODEL_SIZES_MB.get(args.name)
        about = f" (~{size} MB)" if size else ""
        print(f"downloading {args.name}{about} into {conf.models_dir / args.name} ...", flush=True)
        try:
            path = await asyncio.to_thread(models.resolve, args.name, conf)
        except JobFailed as exc:
            raise ConfigError(exc.code, exc.message) from None
        print(f"{args.name}: {path}")
        return EXIT_OK
    rows = []
    if conf.models_dir.is_dir():
        for d in sorted(conf.models_dir.iterdir()):
            if models.is_model_dir(d):
                mb = sum(f.stat().st_size for f in d.iterdir() if f.is_file()) // 1_000_000
                rows.append({"name": d.name, "path": str(d), "mb": mb})
    used = models.local_model(conf.model, conf.models_dir)
    if args.json:
        print(
            json.dumps(
                {
                    "models_dir": str(conf.models_dir),
                    "model": conf.model,
                    "model_path": str(used) if used else None,
                    "offline": conf.offline,
                    "models": rows,
                }
            )
        )
        return EXIT_OK
    print(f"models folder: {conf.models_dir}" + ("  (offline)" if conf.offline else ""))
    for r in rows:
        mark = "*" if used is not None and Path(r["path"]) == used else " "
        print(f"{mark} {r['name']:<20} {r['mb']:>6} MB")
    if used is None:
        print(f"jobs use '{conf.model}', which is not here: jobtui models pull {conf.model}")
    return EXIT_OK
