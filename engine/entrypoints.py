"""Installed distributions' entry points, read from their ``*.dist-info`` folders.

``importlib.metadata.entry_points(group=...)`` builds a distribution object for every
installed distribution (~180 in a development environment) and parses each one's
``entry_points.txt`` to answer one group; with reading the distributions' names from
their ``METADATA`` that was ~25 ms of every ``jobtui`` command's start (60 M
instructions, more than importing all the handler modules). ``find`` reads the same
files, and parses only those that mention the group.

It follows importlib.metadata's rules: ``sys.path`` in order, a folder's entries in
listing order, ``*.dist-info`` and ``*.egg-info`` folders by their normalised name,
the first distribution of a name wins, ``entry_points.txt`` read as its ``Sectioned``
parser reads it. Where those rules cannot be followed from folder listings (a zip
file or an egg on ``sys.path``, a meta-path finder that finds distributions itself)
it returns None and the caller asks importlib.metadata.
"""

from __future__ import annotations

import functools
import os
import re
import sys
from collections.abc import Iterable
from dataclasses import dataclass
from importlib import import_module
from importlib.machinery import PathFinder
from typing import Any

_NORMALISE = re.compile(r"[-_.]+")
_INFO_SUFFIXES = (".dist-info", ".egg-info")
# importlib.metadata.EntryPoint.pattern: module, optional :attr.attr, optional [extras]
_VALUE = re.compile(r"(?P<module>[\w.]+)\s*(:\s*(?P<attr>[\w.]+)\s*)?((?P<extras>\[.*\])\s*)?$")


def normalise(name: str) -> str:
    """A distribution's name as importlib.metadata compares them (``Jobtui-Foo`` ->
    ``jobtui_foo``)."""
    return _NORMALISE.sub("-", name).lower().replace("-", "_")


@dataclass(frozen=True)
class Entry:
    """One entry point, ``name = value`` in ``group``, of the distribution
    ``dist_name`` (normalised)."""

    name: str
    value: str
    group: str
    dist_name: str

    def load(self) -> Any:
        """The object ``value`` names, imported as ``EntryPoint.load`` does."""
        match = _VALUE.match(self.value)
        if match is None:
            raise ValueError(f"entry point {self.name!r}: cannot read {self.value!r}")
        attrs = filter(None, (match.group("attr") or "").split("."))
        return functools.reduce(getattr, attrs, import_module(match.group("module")))


def find(group: str, path: Iterable[str] | None = None) -> list[Entry] | None:
    """Every entry point of ``group`` of the distributions on ``path`` (default
    ``sys.path``), as ``importlib.metadata.entry_points(group=group)`` lists them;
    None when only importlib.metadata can say (see the module's docstring)."""
    if any(f is not PathFinder and hasattr(f, "find_distributions") for f in sys.meta_path):
        return None
    key = group.encode()
    seen: set[str] = set()
    found: list[Entry] = []
    for folder in sys.path if path is None else path:
        root = folder or "."
        if root.lower().endswith(".egg") or os.path.isfile(root):
            return None  # an egg's EGG-INFO, a zip's members: importlib.metadata's job
        try:
            children = os.listdir(root)
        except OSError:
            continue  # importlib.metadata, too, finds nothing in a folder it cannot list
        for child in children:
            low = child.lower()
            if not low.endswith(_INFO_SUFFIXES):
                continue
            dist = normalise(low.rpartition(".")[0].partition("-")[0])
            if dist in seen:
                continue  # an earlier distribution of that name shadows this one
            seen.add(dist)
            try:
                with open(os.path.join(root, child, "entry_points.txt"), "rb") as f:
                    data = f.read()  # bytes: most files never need decoding
            except OSError:
                continue
            if key in data:
                found.extend(_parse(data.decode("utf-8", "replace"), group, dist))
    return found


def _parse(text: str, group: str, dist: str) -> list[Entry]:
    """The ``group`` section of an ``entry_points.txt`` (importlib.metadata's
    ``Sectioned``: stripped lines, ``#`` comments, ``[section]``, ``name = value``)."""
    out = []
    section = None
    for line in map(str.strip, text.splitlines()):
        if not line or line.startswith("#"):
            continue
        if line.startswith("[") and line.endswith("]"):
            section = line.strip("[]")
        elif section == group:
            name, _, value = line.partition("=")
            out.append(Entry(name.strip(), value.strip(), group, dist))
    return out
