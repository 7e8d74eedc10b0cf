"""Every paste or drop gets visible feedback: the enqueue dialog with what was found
(counted per job type), and a notification naming what was not taken, and why."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from textual import events
from textual.widgets import Input

from jobtui.engine.api import OperatorAPI
from jobtui.engine.registry import default_registry
from jobtui.engine.store.sqlite import SQLiteStore
from jobtui.tui import app as app_module
from jobtui.tui.app import JobtuiApp
from jobtui.tui.screens.dialogs import ConfirmScreen
from jobtui.tui.screens.enqueue import EnqueueScreen
from jobtui.tui.screens.main import MainScreen
from tests.test_console_data import make_pdfs, until

SIZE = (80, 24)


pytestmark = pytest.mark.usefixtures("console_config_dir")


@pytest.fixture
def store(sqlite_store: SQLiteStore) -> SQLiteStore:
    return sqlite_store


class Recording(JobtuiApp):
    """The console, keeping every notification it shows."""

    CSS_PATH = str(Path(app_module.__file__).parent / "app.tcss")

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.said: list[tuple[str, str]] = []

    def notify(self, message: str, *args: Any, **kwargs: Any) -> None:  # type: ignore[override]
        self.said.append((message, kwargs.get("severity", "information")))
        super().notify(message, *args, **kwargs)


def console(store: SQLiteStore) -> Recording:
    return Recording(api=OperatorAPI(store, default_registry()), refresh_interval=30)


def said(app: Recording, text: str, severity: str | None = None) -> bool:
    return any(text in m and (severity is None or s == severity) for m, s in app.said)


async def test_a_path_that_does_not_exist_is_named_with_the_reason(store: SQLiteStore) -> None:
    app = console(store)
    async with app.run_test(size=SIZE) as pilot:
        app.post_message(events.Paste("'/no/such folder' "))
        await until(lambda: said(app, "/no/such folder: no such file or folder", "error"))
        await pilot.pause()
        assert isinstance(app.screen, MainScreen)  # nothing to enqueue: no dialog


async def test_a_file_no_type_takes_is_named_with_the_reason(
    store: SQLiteStore, tmp_path: Path
) -> None:
    notes = tmp_path / "notes.txt"
    notes.write_text("not a document any type declares")
    app = console(store)
    async with app.run_test(size=SIZE):
        app.post_message(events.Paste(str(notes)))
        await until(lambda: said(app, f"{notes}: no job type takes this kind of file", "error"))


async def test_found_and_not_found_in_one_drop(store: SQLiteStore, tmp_path: Path) -> None:
    folder = tmp_path / "scans"
    make_pdfs(folder, 2)
    (folder / "readme.txt").write_text("x")
    app = console(store)
    async with app.run_test(size=SIZE) as pilot:
        app.post_message(events.Paste(f"{folder}\n/gone/away.pdf\n"))
        # The dialog, once composed (with more job types, e.g. the audio extra's, its
        # type list takes longer to mount than the screen takes to be pushed).
        await until(
            lambda: isinstance(app.screen, EnqueueScreen) and app.screen.query("#enqueue-path"),
            what="dialog",
        )
        screen = app.screen
        assert isinstance(screen, EnqueueScreen)
        await until(lambda: screen.query("#enqueue-path"), what="dialog composed")
        assert screen.paths == [str(folder)]
        await until(lambda: said(app, "Not taken: /gone/away.pdf: no such file or folder"))

        def counted() -> bool:
            text = str(screen.query_one("#enqueue-found").render())
            return "Found 2 files: 2 pdf.transcribe" in text and "readme.txt" in text

        await until(counted, what="per-type count and the skipped file named")
        # Textual's Select trips over an app that exits before its overlay is mounted
        await until(lambda: screen.query_one("#enqueue-type").query("SelectOverlay"))
        await pilot.pause()


async def test_text_that_names_no_path_is_answered_too(store: SQLiteStore) -> None:
    app = console(store)
    async with app.run_test(size=SIZE) as pilot:
        app.post_message(events.Paste("hello there"))
        await until(lambda: said(app, "names no folder or file: hello there"))
        # into a field, text is just text: it goes there, unremarked
        await pilot.press("slash")
        assert isinstance(app.focused, Input)
        app.post_message(events.Paste("invoice"))
        await pilot.pause()
        assert app.focused.value == "invoice"
        assert not said(app, "invoice")


async def test_a_drop_while_a_question_is_open_is_refused_visibly(
    store: SQLiteStore, tmp_path: Path
) -> None:
    folder = tmp_path / "in"
    make_pdfs(folder, 1)
    app = console(store)
    async with app.run_test(size=SIZE) as pilot:
        app.push_screen(ConfirmScreen("Cancel everything?"))
        await pilot.pause()
        app.post_message(events.Paste(str(folder)))
        await until(lambda: said(app, "A question is open"))
        assert isinstance(app.screen, ConfirmScreen)  # not answered, not bypassed
