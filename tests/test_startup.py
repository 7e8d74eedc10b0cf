"""Start-up (issue 15): what the ``jobtui run`` start path imports, and the entry-point
reader that replaced importlib.metadata on it (``jobtui.engine.entrypoints``)."""

from __future__ import annotations

import importlib.metadata
import json
import sys
import zipfile
from pathlib import Path

import pytest

from jobtui.engine import entrypoints, registry
from tests.util import run_python

# Never needed before ``jobtui run`` claims its first job: each was on that path once
# (pydantic-settings and what it pulled in), or is a heavy library a job type uses
# only in its worker processes or when a command needs it.
NOT_ON_THE_START_PATH = (
    "pydantic_settings",
    "dotenv",
    "httpx",
    "yaml",
    "textual",
    "rich",
    "pymupdf",
    "PIL",
    "numpy",
    "pymongo",
    "faster_whisper",
    "av",
    "jobtui.engine.doctor",
)


def test_run_start_path_does_not_import_heavy_modules() -> None:
    """Importing the CLI and building the registry (what every command does before its
    work) leaves these out: an import moved back to a module's top fails here."""
    code = (
        "import json, sys\n"
        "import jobtui.tui.cli\n"
        "from jobtui.engine.registry import default_registry\n"
        "import jobtui.engine.worker, jobtui.engine.store.sqlite\n"
        "default_registry()\n"
        f"print(json.dumps([m for m in {list(NOT_ON_THE_START_PATH)!r} if m in sys.modules]))\n"
    )
    out = run_python(code)
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout) == []


@pytest.mark.parametrize("group", ["jobtui.handlers", "console_scripts", "pytest11"])
def test_entry_points_as_importlib_metadata_lists_them(group: str) -> None:
    """The installed environment's entry points, read both ways: same names, values,
    order and distributions."""
    ours = entrypoints.find(group)
    assert ours is not None
    theirs = list(importlib.metadata.entry_points(group=group))
    assert [(e.name, e.value, e.group) for e in ours] == [
        (e.name, e.value, e.group) for e in theirs
    ]
    assert [e.dist_name for e in ours] == [
        entrypoints.normalise(e.dist.metadata["Name"])  # type: ignore[union-attr]
        for e in theirs
    ]


def _dist(where: Path, folder: str, entry_points: str) -> None:
    info = where / folder
    info.mkdir(parents=True)
    name, _, version = folder.rpartition(".")[0].partition("-")
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n")
    (info / "entry_points.txt").write_text(entry_points)


def test_first_distribution_of_a_name_wins_and_sections_are_read_as_importlib_does(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    first, second = tmp_path / "first", tmp_path / "second"
    _dist(
        first,
        "Plug_In-2.0.dist-info",
        "# a comment\n[other]\nx = a:b\n\n[ jobtui.test ]\nnot = this:one\n"
        "[jobtui.test]\n  one =  plug.mod:register  \ntwo = plug.mod:obj.attr [extra]\n",
    )
    _dist(second, "plug.in-1.0.dist-info", "[jobtui.test]\nshadowed = old.mod:register\n")
    _dist(second, "another-1.0.egg-info", "[jobtui.test]\nthree = another:register\n")
    paths = [str(first), str(second)]
    ours = entrypoints.find("jobtui.test", paths)
    assert ours is not None
    assert [(e.name, e.value, e.dist_name) for e in ours] == [
        ("one", "plug.mod:register", "plug_in"),
        ("two", "plug.mod:obj.attr [extra]", "plug_in"),
        ("three", "another:register", "another"),
    ]
    monkeypatch.setattr(sys, "path", paths)
    theirs = importlib.metadata.entry_points(group="jobtui.test")
    assert [(e.name, e.value) for e in ours] == [(e.name, e.value) for e in theirs]


def test_an_entry_point_loads_module_and_attributes() -> None:
    entry = entrypoints.Entry("x", "jobtui.engine.registry : Registry.add [extra]", "g", "jobtui")
    assert entry.load() is registry.Registry.add
    assert entrypoints.Entry("m", "jobtui.engine.builtin", "g", "jobtui").load().__name__ == (
        "jobtui.engine.builtin"
    )


def test_a_zip_on_the_path_is_left_to_importlib_metadata(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    archive = tmp_path / "plugins.zip"
    with zipfile.ZipFile(archive, "w") as z:
        z.writestr("zipped-1.0.dist-info/METADATA", "Metadata-Version: 2.1\nName: zipped\n")
        z.writestr(
            "zipped-1.0.dist-info/entry_points.txt", "[jobtui.test]\nzipped = zipped:register\n"
        )
    assert entrypoints.find("jobtui.test", [str(archive)]) is None
    monkeypatch.setattr(sys, "path", [str(archive)])
    assert [e.name for e in registry.entry_points("jobtui.test")] == ["zipped"]


# -- the command line is built for the command it names (cli.build_parser) ----------

COMMAND_LINES = [
    ["--store", "q.db", "run", "a.pdf", "--json", "--concurrency", "3", "--log-level", "INFO"],
    ["run", "--type", "noop", "--param", "x=1", "b", "--drain", "--output", "out"],
    ["--mongodb-uri", "mongodb://h/db", "worker", "--types", "pdf.*", "--input-root", "/in"],
    ["enqueue", "dir", "--name", "n", "--force", "--store", "q.db"],
    ["jobs", "--status", "failed", "pending", "--limit", "3", "--json"],
    ["batches", "--limit", "2"],
    ["show", "abcdef", "--log-lines", "5"],
    ["retry", "--batch", "abcdef", "--status", "failed,cancelled"],
    ["cancel", "abcdef", "123456"],
    ["doctor", "--languages", "eng", "--json"],
    ["purge", "--older-than", "30d", "--yes", "--dry-run"],
    ["models", "list", "--json", "--log-format", "json"],
    ["--watch", "--store", "run"],  # the console; a store file named like a command
    [],
]


@pytest.mark.parametrize("argv", COMMAND_LINES, ids=lambda a: " ".join(a) or "console")
def test_the_parser_built_for_a_command_line_reads_it_as_the_whole_parser_does(
    argv: list[str],
) -> None:
    from jobtui.tui.cli import build_parser

    assert vars(build_parser(set(argv)).parse_args(argv)) == vars(build_parser().parse_args(argv))


def test_top_level_help_lists_every_command_however_the_parser_was_built() -> None:
    from jobtui.tui.cli import build_parser

    whole = build_parser().format_help()
    assert build_parser({"run"}).format_help() == whole
    for command in ("worker", "enqueue", "run", "jobs", "doctor", "purge", "models"):
        assert f"    {command}" in whole
