"""The help screen: every key of the console, from the bindings themselves."""

from __future__ import annotations

from typing import ClassVar

from rich.table import Table
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Static

EXTRA_KEYS = [
    ("tab / shift+tab", "Move between the batches table, the jobs table and the log"),
    ("up / down", "Select a batch or a job"),
    ("pageup / pagedown", "Previous / next page of jobs"),
    ("ctrl+p", "Command palette: every action and the theme switch"),
    ("paste / drop", "A folder or PDF path opens the enqueue dialog with it filled in"),
]


class HelpScreen(ModalScreen[None]):
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding(
            "escape,q,question_mark",
            "app.pop_screen",
            "Close",
            id="help-close",
            tooltip="Close the help",
        ),
    ]

    def __init__(self, bindings: list[Binding]) -> None:
        super().__init__(classes="dialog-screen")
        self.bindings_shown = bindings

    def compose(self) -> ComposeResult:
        table = Table(box=None, show_header=False, padding=(0, 2))
        table.add_column(style="bold")
        table.add_column()
        for b in self.bindings_shown:
            table.add_row(b.key_display or b.key, b.tooltip or b.description)
        for key, what in EXTRA_KEYS:
            table.add_row(key, what)
        with VerticalScroll(classes="dialog", id="help-dialog"):
            yield Static("Keys", classes="dialog-title")
            yield Static(table)
