"""Live tables updated by keyed diff (Dolphie's way): no clear-and-refill, no flicker.

``KeyedTable.sync(rows)`` takes the wanted rows as ``(key, cells)`` in order and, inside
one ``batch_update()``, removes vanished keys, adds new keys with ``add_row(key=...)``
and calls ``update_cell`` only where a value changed. The cursor stays on its row key.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, ClassVar

from rich.text import Text
from textual.binding import Binding, BindingType
from textual.message import Message
from textual.widgets import DataTable
from textual.widgets.data_table import RowDoesNotExist

Cells = tuple[Any, ...]


def _same(a: Any, b: Any) -> bool:
    if a is b:
        return True
    if isinstance(a, Text) and isinstance(b, Text):
        return a.plain == b.plain and a.spans == b.spans and a.style == b.style
    return bool(a == b)


class KeyedTable(DataTable[Any]):
    """A DataTable whose rows are kept in step with a keyed list of rows."""

    def __init__(self, columns: Sequence[tuple[str, str, int | None]], **kwargs: Any) -> None:
        super().__init__(cursor_type="row", zebra_stripes=False, **kwargs)
        self._column_spec = list(columns)
        self._cells: dict[str, Cells] = {}
        self._order: list[str] = []
        self.updates = 0  # cells written by the last sync (tests and the benchmark read it)

    def on_mount(self) -> None:
        for label, key, width in self._column_spec:
            self.add_column(label, key=key, width=width)

    @property
    def selected_key(self) -> str | None:
        if not self._order or self.cursor_row < 0 or self.cursor_row >= len(self._order):
            return None
        return self._order[self.cursor_row]

    def select_key(self, key: str) -> bool:
        try:
            index = self.get_row_index(key)
        except RowDoesNotExist:
            return False
        self.move_cursor(row=index)
        return True

    def forget(self) -> None:
        """Drop every row (used when a theme change must recolour every cell)."""
        self.clear()
        self._cells.clear()
        self._order.clear()

    def sync(self, rows: Sequence[tuple[str, Cells]]) -> None:
        # Plain strings become Text once here: DataTable would parse them as markup on
        # every paint.
        rows = [
            (key, tuple(Text(c) if isinstance(c, str) else c for c in cells)) for key, cells in rows
        ]
        wanted = [key for key, _ in rows]
        selected = self.selected_key
        column_keys = [key for _, key, _ in self._column_spec]
        self.updates = 0
        with self.app.batch_update():
            gone = set(self._order) - set(wanted)
            if gone and len(gone) == len(self._order):
                self.clear()  # a new page or scope: one reset, not a relayout per row
                self._cells.clear()
            else:
                for key in gone:
                    self.remove_row(key)
                    del self._cells[key]
            kept = [k for k in self._order if k not in gone]
            new_keys = [k for k in wanted if k not in self._cells]
            # Rows only ever append in DataTable; when the order changed otherwise
            # (a new job at the top of a newest-first page), rebuild once.
            if kept != [k for k in wanted if k in self._cells] or (
                new_keys and wanted[: len(kept)] != kept
            ):
                self.clear()
                self._cells.clear()
                kept = []
            for key, cells in rows:
                old = self._cells.get(key)
                if old is None:
                    self.add_row(*cells, key=key)
                    self.updates += len(cells)
                else:
                    for column, before, after in zip(column_keys, old, cells, strict=True):
                        if not _same(before, after):
                            self.update_cell(key, column, after)
                            self.updates += 1
                self._cells[key] = cells
            self._order = wanted
            if selected is not None and selected in self._cells:
                index = wanted.index(selected)
                if index != self.cursor_row:
                    self.move_cursor(row=index, animate=False)


class JobsTable(KeyedTable):
    """The jobs table; page keys ask for the next or previous page of jobs."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding(
            "pagedown",
            "page(1)",
            "Next page",
            id="jobs-next-page",
            show=False,
            tooltip="Show the next page of jobs",
        ),
        Binding(
            "pageup",
            "page(-1)",
            "Prev page",
            id="jobs-prev-page",
            show=False,
            tooltip="Show the previous page of jobs",
        ),
    ]

    class PageRequest(Message):
        def __init__(self, step: int) -> None:
            super().__init__()
            self.step = step

    def action_page(self, step: int) -> None:
        self.post_message(self.PageRequest(step))
