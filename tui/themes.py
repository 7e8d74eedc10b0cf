"""Themes as data files, and the operator's theme choice that persists between runs.

Every ``*.yaml`` / ``*.yml`` / ``*.toml`` file in the bundled ``themes/`` folder (and in
``<config dir>/themes/`` for the operator's own) holds the fields of a Textual
``Theme``. Each file is validated; a broken one is reported (the app shows one
notification for all of them) and skipped, never a crash.

The chosen theme lives in ``<config dir>/console.json``; the config dir is
platformdirs' user config dir, or ``$JOBTUI_CONFIG_DIR`` (tests point it at a tmp dir).
"""

from __future__ import annotations

import json
import os
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from platformdirs import user_config_dir
from pydantic import BaseModel, ConfigDict, ValidationError, field_validator
from textual.color import Color, ColorParseError
from textual.theme import Theme

DEFAULT_THEME = "jobtui-dark"
FALLBACK_THEME = "textual-dark"  # built into Textual; used when our files are all broken
THEME_SUFFIXES = (".yaml", ".yml", ".toml")


def config_dir() -> Path:
    env = os.environ.get("JOBTUI_CONFIG_DIR")
    return Path(env) if env else Path(user_config_dir("jobtui", appauthor=False))


def bundled_themes_dir() -> Path:
    env = os.environ.get("JOBTUI_THEMES_DIR")
    if env:
        return Path(env)
    import jobtui.themes  # themes/ in a checkout, installed as this package

    return Path(jobtui.themes.__file__).resolve().parent


class ThemeFile(BaseModel):
    """The schema of one theme file (the fields of ``textual.theme.Theme``)."""

    model_config = ConfigDict(extra="forbid")

    name: str
    primary: str
    secondary: str | None = None
    warning: str | None = None
    error: str | None = None
    success: str | None = None
    accent: str | None = None
    foreground: str | None = None
    background: str | None = None
    surface: str | None = None
    panel: str | None = None
    boost: str | None = None
    dark: bool = True
    luminosity_spread: float = 0.15
    text_alpha: float = 0.95
    variables: dict[str, str] = {}

    @field_validator(
        "primary",
        "secondary",
        "warning",
        "error",
        "success",
        "accent",
        "foreground",
        "background",
        "surface",
        "panel",
        "boost",
    )
    @classmethod
    def _is_colour(cls, value: str | None) -> str | None:
        if value is not None:
            try:
                Color.parse(value)
            except ColorParseError as exc:
                raise ValueError(f"not a colour: {value!r}") from exc
        return value

    def to_theme(self) -> Theme:
        return Theme(**self.model_dump())


@dataclass
class ThemeLoad:
    themes: list[Theme] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)  # "file: reason", one per broken file


def _read(path: Path) -> Any:
    text = path.read_text(encoding="utf-8")
    if path.suffix == ".toml":
        return tomllib.loads(text)
    return yaml.safe_load(text)


def load_theme_file(path: Path) -> Theme:
    """One file -> a Theme; raises ValueError with a short reason when broken."""
    try:
        data = _read(path)
    except (OSError, UnicodeDecodeError, yaml.YAMLError, tomllib.TOMLDecodeError) as exc:
        raise ValueError(f"unreadable ({type(exc).__name__})") from exc
    if not isinstance(data, dict):
        raise ValueError("must hold a mapping of theme fields")  # noqa: TRY004 - one error type
    try:
        return ThemeFile.model_validate(data).to_theme()
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"]) or "file"
        raise ValueError(f"{where}: {first['msg']}") from None


def load_themes(folders: list[Path] | None = None) -> ThemeLoad:
    """Every theme file of the folders (bundled, then the user's); later names win."""
    if folders is None:
        folders = [bundled_themes_dir(), config_dir() / "themes"]
    out = ThemeLoad()
    by_name: dict[str, Theme] = {}
    for folder in folders:
        if not folder.is_dir():
            continue
        for path in sorted(folder.iterdir()):
            if path.suffix not in THEME_SUFFIXES:
                continue
            try:
                theme = load_theme_file(path)
            except ValueError as exc:
                out.errors.append(f"{path.name}: {exc}")
                continue
            by_name[theme.name] = theme
    out.themes = list(by_name.values())
    return out


def _prefs_path() -> Path:
    return config_dir() / "console.json"


def load_theme_choice() -> str | None:
    try:
        data = json.loads(_prefs_path().read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    theme = data.get("theme") if isinstance(data, dict) else None
    return theme if isinstance(theme, str) else None


def save_theme_choice(name: str) -> None:
    """Remember the theme; a read-only config dir only costs the memory, not the app."""
    path = _prefs_path()
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        data: dict[str, Any] = {}
        try:
            loaded = json.loads(path.read_text(encoding="utf-8"))
            data = loaded if isinstance(loaded, dict) else {}
        except (OSError, ValueError):
            pass
        data["theme"] = name
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps(data, indent=2) + "\n", encoding="utf-8")
        tmp.replace(path)
    except OSError:
        pass
