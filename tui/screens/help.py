"""The help screen: every key of the console, by screen, from the bindings themselves.

``key_reference()`` reads the ``BINDINGS`` of every screen and dialog (and the keys
Textual's widgets give them), so a new binding shows in the help without more code;
``keys_markdown()`` renders the same list for ``docs/console.md`` (a test compares
them). ``python -m jobtui.tui.screens.help`` prints that Markdown.
"""

from __future__ import annotations

from typing import ClassVar

from rich.table import Table
from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Static

# Keys that no binding of ours declares: Textual's widgets and the terminal give them.
MAIN_EXTRA = [
    ("tab / shift+tab", "Move between the batches table, the jobs table and the log"),
    ("up / down", "Select a batch or a job"),
    ("paste / drop", "A folder or files open the enqueue dialog; what is not taken is named"),
]
EVERYWHERE = [
    ("ctrl+p", "Command palette: every action of the screen, and the theme switch"),
    ("ctrl+q", "Quit (asks like q when jobs run here)"),
]
KEY_NAMES = {
    "question_mark": "?",
    "slash": "/",
    "escape": "esc",
    "pageup": "pageup",
    "pagedown": "pagedown",
}


def key_text(binding: Binding) -> str:
    if binding.key_display:
        return binding.key_display
    return ", ".join(KEY_NAMES.get(k.strip(), k.strip()) for k in binding.key.split(","))


def _keys(bindings: list[BindingType]) -> list[tuple[str, str]]:
    return [
        (key_text(b), b.tooltip or b.description)
        for b in bindings
        if isinstance(b, Binding) and not b.system
    ]


def key_reference() -> list[tuple[str, list[tuple[str, str]]]]:
    """Every key, by screen, in the order the screens are met."""
    from jobtui.tui.screens.detail import DetailScreen
    from jobtui.tui.screens.dialogs import ConfirmScreen, FilterScreen, QuitScreen
    from jobtui.tui.screens.enqueue import EnqueueScreen
    from jobtui.tui.screens.main import MainScreen
    from jobtui.tui.screens.workers import WorkersScreen
    from jobtui.tui.widgets.tables import JobsTable

    main = _keys(MainScreen.BINDINGS) + _keys(JobsTable.BINDINGS) + MAIN_EXTRA
    return [
        ("Main screen", main),
        ("Job detail", _keys(DetailScreen.BINDINGS)),
        ("Workers", _keys(WorkersScreen.BINDINGS)),
        ("Enqueue dialog", _keys(EnqueueScreen.BINDINGS)),
        ("Filter dialog", _keys(FilterScreen.BINDINGS)),
        ("Questions (cancel, claiming, quit while finishing)", _keys(ConfirmScreen.BINDINGS)),
        ("Quit with jobs running here", _keys(QuitScreen.BINDINGS)),
        ("Help", _keys(HelpScreen.BINDINGS)),
        ("Everywhere", EVERYWHERE),
    ]


def keys_markdown() -> str:
    """The key reference as the Markdown of ``docs/console.md``'s Keys section."""
    out: list[str] = []
    for title, keys in key_reference():
        out += [f"### {title}", "", "| Key | What it does |", "| --- | --- |"]
        out += [f"| `{key}` | {what.replace('|', '/')} |" for key, what in keys]
        out.append("")
    return "\n".join(out).rstrip() + "\n"


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

    def __init__(self) -> None:
        super().__init__(classes="dialog-screen")

    def compose(self) -> ComposeResult:
        with VerticalScroll(classes="dialog", id="help-dialog"):
            yield Static("Keys", classes="dialog-title")
            for title, keys in key_reference():
                table = Table(box=None, show_header=False, padding=(0, 1), expand=True)
                table.add_column(style="bold", no_wrap=True, min_width=10)
                table.add_column(ratio=1)
                for key, what in keys:
                    table.add_row(key, what)
                yield Static(Text(title, style="underline"), classes="help-section")
                yield Static(table)


if __name__ == "__main__":
    print(keys_markdown(), end="")
