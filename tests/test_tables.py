"""KeyedTable draws exactly what Textual's DataTable draws, while caching its cells
and lines: after cell updates, cursor moves, new pages and a theme change."""

from __future__ import annotations

from typing import Any

from rich.text import Text
from textual.app import App, ComposeResult
from textual.geometry import Region
from textual.strip import Strip
from textual.widgets import DataTable

from jobtui.tui.widgets.tables import KeyedTable

COLUMNS = [("Status", "status", 12), ("File", "file", 10), ("Progress", "progress", 14)]


def row(i: int, status: str = "running", pct: int = 40) -> tuple[str, tuple[Any, ...]]:
    bar = Text.assemble(("█" * (pct // 10), "green"), ("░" * (10 - pct // 10), "grey50"))
    return (
        f"k{i}",
        (
            Text(f"▶ {status}", style="bold red"),
            f"a-rather-long-name-{i}.pdf",  # wider than its column: cropped
            bar,
        ),
    )


class Pair(App[None]):
    CSS = "DataTable { height: 9; }"

    def compose(self) -> ComposeResult:
        yield KeyedTable(COLUMNS, id="keyed")
        yield DataTable(id="plain", cursor_type="row")

    def on_mount(self) -> None:
        plain = self.query_one("#plain", DataTable)
        for label, key, width in COLUMNS:
            plain.add_column(label, key=key, width=width)


def lines(table: DataTable[Any]) -> list[Strip]:
    region = Region(0, 0, table.size.width, table.size.height)
    return [strip.simplify() for strip in table.render_lines(region)]


def plain_sync(table: DataTable[Any], rows: list[tuple[str, tuple[Any, ...]]]) -> None:
    table.clear()
    for key, cells in rows:
        table.add_row(*(Text(c) if isinstance(c, str) else c for c in cells), key=key)


async def test_keyed_table_draws_what_datatable_draws_through_updates() -> None:
    app = Pair()
    async with app.run_test(size=(60, 20)) as pilot:
        keyed = app.query_one("#keyed", KeyedTable)
        plain = app.query_one("#plain", DataTable)
        rows = [row(i) for i in range(5)]
        keyed.sync(rows)
        plain_sync(plain, rows)
        app.set_focus(None)  # :focus styles one of them otherwise
        await pilot.pause()
        first = lines(keyed)
        assert first == lines(plain)
        assert "a-rather-" in first[1].text and "▶ running" in first[1].text

        # one cell changes: that line changes, the others come from the cache unchanged
        rows[2] = row(2, status="completed", pct=100)
        keyed.sync(rows)
        plain_sync(plain, rows)
        assert keyed.updates == 2
        after = lines(keyed)
        assert after == lines(plain)
        assert "completed" in after[3].text and "completed" not in first[3].text
        assert after[1] == first[1]

        # the cursor moves: highlight follows it as DataTable draws it
        keyed.move_cursor(row=3)
        plain.move_cursor(row=3)
        await pilot.pause()
        assert lines(keyed) == lines(plain)
        assert lines(keyed)[4] != after[4]

        # a new page: every row replaced
        page2 = [row(i, status="pending", pct=0) for i in range(10, 14)]
        keyed.sync(page2)
        plain_sync(plain, page2)
        plain.move_cursor(row=keyed.cursor_row)
        await pilot.pause()
        assert lines(keyed) == lines(plain)
        assert "a-rather-long-name-10"[:9] in lines(keyed)[1].text

        # a theme change recolours: the caches do not serve old colours
        before_theme = lines(keyed)
        app.theme = "textual-light" if app.theme != "textual-light" else "textual-dark"
        await pilot.pause()
        assert lines(keyed) == lines(plain)
        assert lines(keyed) != before_theme
