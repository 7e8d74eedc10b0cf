"""Live tables updated by keyed diff (Dolphie's way): no clear-and-refill, no flicker.

``KeyedTable.sync(rows)`` takes the wanted rows as ``(key, cells)`` in order and, inside
one ``batch_update()``, removes vanished keys, adds new keys with ``add_row(key=...)``
and calls ``update_cell`` only where a value changed. The cursor stays on its row key.

Columns follow the table's width (``jobtui.tui.widgets.columns``): on a resize, or when
the content's needs change (a longer error code), the shown columns and their widths
are laid out again, and ``LayoutChanged`` tells the screen (whose cells may depend on
a column's width, like progress bars).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, ClassVar

from rich.segment import Segment
from rich.style import Style
from rich.text import Text
from textual.binding import Binding, BindingType
from textual.message import Message
from textual.strip import Strip
from textual.widgets import DataTable
from textual.widgets.data_table import RowDoesNotExist

from jobtui.tui.widgets.columns import Column, layout

Cells = tuple[Any, ...]
CELL_CACHE_LIMIT = 64  # rendered variants kept per row (cursor, hover, width, style)


def _same(a: Any, b: Any) -> bool:
    if a is b:
        return True
    if isinstance(a, Text) and isinstance(b, Text):
        return a.plain == b.plain and a.spans == b.spans and a.style == b.style
    return bool(a == b)


class KeyedTable(DataTable[Any]):
    """A DataTable whose rows are kept in step with a keyed list of rows."""

    class LayoutChanged(Message):
        """The shown columns or their widths changed."""

    def __init__(self, columns: Sequence[Column | tuple[str, str, int]], **kwargs: Any) -> None:
        super().__init__(cursor_type="row", zebra_stripes=False, **kwargs)
        self._column_spec = [c if isinstance(c, Column) else Column(*c) for c in columns]
        self.widths: dict[str, int] = {}  # the shown columns' widths, in order
        self._needs: dict[str, int] = {}
        self._wants: dict[str, int] = {}
        self._cells: dict[str, Cells] = {}
        self._order: list[str] = []
        self.updates = 0  # cells written by the last sync (tests and the benchmark read it)
        # Rendered cells that outlive DataTable's own cache: DataTable keys its cache on
        # a counter that every update_cell bumps, so one changed duration re-rendered
        # every visible cell through Rich (most of a refresh's paint time). Here a cell
        # is re-rendered only when its value object, place, width or style changed.
        self._rendered: dict[Any, dict[tuple[Any, ...], tuple[Any, Any]]] = {}
        self._lines: dict[Any, tuple[tuple[Any, ...], tuple[Any, ...], Strip]] = {}

    def on_mount(self) -> None:
        self.relayout()

    def on_resize(self) -> None:
        self.relayout()

    @property
    def available_width(self) -> int:
        """Cells for the columns: the width less border, padding and a scrollbar."""
        if not self.size.width:
            return 10_000
        return self.size.width - self.styles.gutter.width - self.styles.scrollbar_size_vertical

    def column_width(self, key: str) -> int:
        """The width of a shown column, 0 when it is not shown."""
        return self.widths.get(key, 0)

    def set_content(self, needs: dict[str, int], wants: dict[str, int]) -> None:
        """What the content needs (``fit`` minimums) and wants (growing columns' caps)."""
        if needs != self._needs or wants != self._wants:
            self._needs, self._wants = dict(needs), dict(wants)
            self.relayout()

    def relayout(self) -> None:
        widths = layout(self._column_spec, self.available_width, self._needs, self._wants)
        if widths == self.widths:
            return
        self.widths = widths
        selected = self.selected_key
        by_key = {c.key: c for c in self._column_spec}
        with self.app.batch_update():
            self.clear(columns=True)
            for key, width in widths.items():
                self.add_column(by_key[key].label, key=key, width=width)
            for key in self._order:
                self.add_row(*self._shown(self._cells[key]), key=key)
            self._rendered.clear()
            self._lines.clear()
            if selected is not None and selected in self._cells:
                self.move_cursor(row=self._order.index(selected), animate=False)
        self.post_message(self.LayoutChanged())

    def _shown(self, cells: Cells) -> Cells:
        keys = [c.key for c in self._column_spec]
        return tuple(cell for key, cell in zip(keys, cells, strict=True) if key in self.widths)

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

    def _render_cell(
        self,
        row_index: int,
        column_index: int,
        base_style: Style,
        width: int,
        cursor: bool = False,
        hover: bool = False,
    ) -> Any:
        if row_index < 0 or column_index < 0:  # header and label cells: DataTable's way
            return super()._render_cell(row_index, column_index, base_style, width, cursor, hover)
        row_key = self._row_locations.get_key(row_index)
        column_key = self._column_locations.get_key(column_index)
        if row_key is None or column_key is None:
            return super()._render_cell(row_index, column_index, base_style, width, cursor, hover)
        value = self._data[row_key][column_key]
        key = (
            column_key,
            row_index,
            base_style,
            width,
            cursor,
            hover,
            self._show_hover_cursor,
            self._pseudo_class_state,
        )
        row_cache = self._rendered.setdefault(row_key.value, {})
        hit = row_cache.get(key)
        if hit is not None and hit[0] is value:
            return hit[1]
        lines = self._render_text_cell(
            value, row_key, row_index, column_index, base_style, width, cursor, hover
        )
        if lines is None:
            lines = super()._render_cell(row_index, column_index, base_style, width, cursor, hover)
        if len(row_cache) >= CELL_CACHE_LIMIT:
            row_cache.clear()
        row_cache[key] = (value, lines)
        return lines

    def _render_text_cell(
        self,
        value: Any,
        row_key: Any,
        row_index: int,
        column_index: int,
        base_style: Style,
        width: int,
        cursor: bool,
        hover: bool,
    ) -> list[list[Segment]] | None:
        """A one-line ``Text`` cell drawn straight to segments, the same ones DataTable
        gets from ``Styled(Padding(text))`` through Rich's console (7x faster here); None
        for anything else (multi-line, justified, tabs, rows taller than one line)."""
        if (
            not isinstance(value, Text)
            or value.justify is not None
            or value.overflow is not None
            or "\n" in value.plain
            or "\t" in value.plain
            or self.rows[row_key].height != 1
        ):
            return None
        pad = self.cell_padding
        if width < 2 * pad:
            return None
        console = self.app.console
        component_style, post_style = self._get_styles_to_render_cell(
            False,
            False,
            row_index < self.fixed_rows or column_index < self.fixed_columns,
            hover,
            cursor,
            self.show_cursor,
            self._show_hover_cursor,
            self.cursor_foreground_priority == "css",
            self.cursor_background_priority == "css",
        )
        pre_style = base_style + Style.from_meta({"row": row_index, "column": column_index})
        if value.spans or not value.style:
            body = list(value.render(console, end=""))
        else:  # Text.render leaves a span-less text's own style to its caller
            body = [Segment(value.plain, console.get_style(value.style, default=Style.null()))]
        line = [
            Segment(" " * pad),
            *Segment.adjust_line_length(body, width - 2 * pad),
            Segment(" " * pad),
        ]
        return [list(Segment.apply_style(line, pre_style + component_style, post_style))]

    def _render_line(self, y: int, x1: int, x2: int, base_style: Style) -> Strip:
        """A line whose row's cell values (by identity), place, cursor and style are as
        when it was last drawn is not drawn again; DataTable would, after any update."""
        try:
            row_key, line_in_row = self._get_offsets(y)
        except LookupError:
            return super()._render_line(y, x1, x2, base_style)
        if row_key is self._header_row_key:
            values = tuple(column.label for column in self.ordered_columns)
        elif row_key in self._data:
            values = tuple(self._data[row_key].values())
        else:
            return super()._render_line(y, x1, x2, base_style)
        key = (
            y,
            line_in_row,
            x1,
            x2,
            self.size.width,
            tuple(column.get_render_width(self) for column in self.ordered_columns),
            self.cursor_coordinate,
            self.hover_coordinate,
            base_style,
            self.cursor_type,
            self.show_cursor,
            self._show_hover_cursor,
            self._pseudo_class_state,
        )
        hit = self._lines.get(row_key.value)
        if (
            hit is not None
            and hit[0] == key
            and len(hit[1]) == len(values)
            and all(a is b for a, b in zip(hit[1], values, strict=True))
        ):
            return hit[2]
        strip = super()._render_line(y, x1, x2, base_style)
        self._lines[row_key.value] = (key, values, strip)
        return strip

    def _drop_dead_renders(self) -> None:
        """DataTable's caches are keyed on its update counter, so after an update every
        entry in them is dead until evicted (thousands of segment lists that only the
        cyclic GC walks); drop them at once. Our per-row cache survives."""
        self._cell_render_cache.clear()
        self._row_render_cache.clear()
        self._row_renderable_cache.clear()
        self._line_cache.clear()

    def _clear_caches(self) -> None:
        super()._clear_caches()
        self._rendered.clear()
        self._lines.clear()

    def notify_style_update(self) -> None:
        self._rendered.clear()
        self._lines.clear()
        super().notify_style_update()

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
        column_keys = [c.key for c in self._column_spec]
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
                    self.add_row(*self._shown(cells), key=key)
                    self.updates += len(cells)
                else:
                    for column, before, after in zip(column_keys, old, cells, strict=True):
                        if column in self.widths and not _same(before, after):
                            self.update_cell(key, column, after)
                            self.updates += 1
                self._cells[key] = cells
            self._order = wanted
            for key in set(self._rendered) - set(wanted):
                del self._rendered[key]
            for key in set(self._lines) - set(wanted) - {None}:
                del self._lines[key]
            if self.updates:
                self._drop_dead_renders()
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

    class Resized(Message):
        """The table's size changed: the page of jobs may hold more or fewer rows."""

    def on_resize(self) -> None:
        super().on_resize()
        self.post_message(self.Resized())

    class PageRequest(Message):
        def __init__(self, step: int) -> None:
            super().__init__()
            self.step = step

    def action_page(self, step: int) -> None:
        self.post_message(self.PageRequest(step))
