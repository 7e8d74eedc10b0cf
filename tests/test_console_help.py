"""The help screen lists every key by screen, from the bindings; the docs' console
page lists the same keys (generated from the same list, compared here)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from rich.console import Console
from textual.binding import Binding
from textual.widgets import Static

from jobtui.engine.api import OperatorAPI
from jobtui.engine.registry import default_registry
from jobtui.engine.store.sqlite import SQLiteStore
from jobtui.tui.app import JobtuiApp
from jobtui.tui.screens.help import HelpScreen, key_reference, key_text, keys_markdown
from jobtui.tui.screens.main import MainScreen

DOCS = Path(__file__).resolve().parents[1] / "docs" / "console.md"


def test_docs_console_page_lists_exactly_the_keys_of_the_bindings() -> None:
    text = DOCS.read_text(encoding="utf-8")
    found = re.search(r"<!-- keys:start -->\n(.*?)<!-- keys:end -->", text, re.S)
    assert found, "docs/console.md lost its <!-- keys:start/end --> markers"
    assert found.group(1) == keys_markdown(), (
        "docs/console.md's keys differ from the bindings: paste the output of "
        "`python -m jobtui.tui.screens.help` between the markers"
    )


def test_every_binding_of_the_main_screen_is_in_the_reference() -> None:
    listed = dict(key_reference())["Main screen"]
    keys = {k for k, _ in listed}
    for b in MainScreen.BINDINGS:
        assert isinstance(b, Binding)
        assert key_text(b) in keys, b
        assert b.tooltip, f"binding {b.key} has no tooltip to show in the help"


async def test_help_screen_shows_every_key_by_screen(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("JOBTUI_CONFIG_DIR", str(tmp_path / "config"))
    store = SQLiteStore(tmp_path / "jobs.db")
    await store.open()
    try:
        app = JobtuiApp(api=OperatorAPI(store, default_registry()), refresh_interval=30)
        async with app.run_test(size=(120, 40)) as pilot:
            await pilot.press("question_mark")
            screen = app.screen
            assert isinstance(screen, HelpScreen)
            console = Console(record=True, width=200)
            for static in screen.query(Static):
                console.print(static.content)
            shown = console.export_text()
            for title, keys in key_reference():
                assert title in shown
                for key, what in keys:
                    assert key in shown and what.split()[0] in shown, (title, key)
            await pilot.press("escape")
            assert isinstance(app.screen, MainScreen)
    finally:
        await store.close()
