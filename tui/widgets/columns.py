"""Column layout for the console's tables: which columns show, and how wide, at a width.

Every column has a preferred width, a minimum, a priority and a share of spare room.
When the table is too narrow, columns are narrowed towards their minimum, least
important first (highest ``priority``), and only then dropped in the same order; a
column of priority 0 is never dropped. A minimum may follow the content (``fit``):
the status and the error code are never cut. Spare room on a wide terminal goes to
the columns that ``grow`` (names, messages), up to what their content needs.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

PADDING = 2  # DataTable pads each cell by one on either side


@dataclass(frozen=True)
class Column:
    label: str
    key: str
    width: int  # preferred width (cells, without padding)
    min_width: int | None = None  # narrowest it may be (None: the preferred width)
    priority: int = 0  # 0: always shown; higher: narrowed and dropped earlier
    grow: int = 0  # share of spare room on wide terminals
    fit: bool = False  # never narrower than its widest cell (status, error code)

    def least(self, need: int) -> int:
        least = self.width if self.min_width is None else self.min_width
        if self.fit:
            least = max(least, need)
        return max(least, len(self.label) if self.priority == 0 else 1)


def layout(
    columns: Sequence[Column],
    available: int,
    needs: Mapping[str, int] | None = None,
    wants: Mapping[str, int] | None = None,
) -> dict[str, int]:
    """The shown columns' widths (in column order) that fit ``available`` cells.

    ``needs``: per column key, the width its content must have (``fit`` columns: the
    status, the error code); ``wants``: the width of its widest content, which caps
    how far a growing column grows. If even the minimums of the never-dropped columns
    do not fit, they keep their minimums and the table scrolls sideways.
    """
    needs = needs or {}
    wants = wants or {}
    widths = {c.key: max(c.width, c.least(needs.get(c.key, 0))) for c in columns}
    by_key = {c.key: c for c in columns}

    def total() -> int:
        return sum(w + PADDING for w in widths.values())

    least_first = sorted(columns, key=lambda c: -c.priority)  # stable: later ones first
    for c in least_first:  # narrow, least important first
        over = total() - available
        if over <= 0:
            break
        floor = c.least(needs.get(c.key, 0))
        widths[c.key] -= min(over, widths[c.key] - floor)
    for c in least_first:  # then drop, in the same order
        if total() <= available:
            break
        if c.priority > 0:
            del widths[c.key]
    spare = available - total()
    growing = [by_key[k] for k in widths if by_key[k].grow]
    while spare > 0 and growing:
        shares = sum(c.grow for c in growing)
        given = 0
        for c in growing:
            want = wants.get(c.key)
            room = spare * c.grow // shares or 1
            if want is not None:
                room = min(room, max(0, want - widths[c.key]))
            room = min(room, spare - given)
            widths[c.key] += room
            given += room
        growing = [c for c in growing if c.key not in wants or widths[c.key] < wants[c.key]]
        if given == 0:
            break
        spare -= given
    return {c.key: widths[c.key] for c in columns if c.key in widths}
