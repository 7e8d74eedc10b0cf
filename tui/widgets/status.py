"""The one-line status at the top: store, connection, workers, running, throughput, queue."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from rich.text import Text
from textual.widget import Widget

from jobtui.tui.widgets.cells import clock, colour


@dataclass
class StatusInfo:
    store: str
    connected: bool
    error: str | None = None
    disconnected_since: datetime | None = None
    live_workers: int = 0
    running_total: int = 0
    running_here: int | None = None  # None: no engine in this process (watch only)
    throughput: float | None = None
    queue_depth: int = 0
    paused: bool = False
    unserved: dict[str, int] = field(default_factory=dict)
    # pending jobs of types this console's paused engine serves (and no other live one):
    # held by the pause, not unserved
    held: dict[str, int] = field(default_factory=dict)
    finishing: int | None = None  # quitting: jobs still being finished here
    output_dir: str | None = None  # where this console's engine writes outputs


class StatusLine(Widget):
    """Renders a ``StatusInfo``; the main screen calls ``show`` after every refresh.

    A plain widget rather than a ``Static``: ``Static.update`` asks for a new layout
    of the whole screen each time, this one repaints its own line, and only when the
    text changed. The line is fitted to the widget's width (``fit_status``): what
    matters least is shortened or dropped first; the connection state and the
    DISCONNECTED / WATCH-ONLY / PAUSED / FINISHING flags are never dropped.
    """

    DEFAULT_CSS = "StatusLine { height: 1; }"

    def __init__(self, text: str = "", **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._text = Text(text, no_wrap=True, overflow="ellipsis")
        self._parts: list[Part] | None = None
        self._fitted: tuple[int, Text] | None = None

    def render(self) -> Text:
        if self._parts is None:
            return self._text
        width = self.content_size.width or 10_000
        if self._fitted is None or self._fitted[0] != width:
            self._fitted = (width, fit_status(self._parts, width))
        return self._fitted[1]

    def show(self, info: StatusInfo, variables: Mapping[str, str]) -> None:
        parts = status_parts(info, variables)
        if parts != self._parts:
            self._parts = parts
            self._fitted = None
            self.refresh()
        self.set_class(not info.connected, "-disconnected")

    @property
    def plain(self) -> str:
        """The text as drawn at the current width (tests read it)."""
        return self.render().plain


@dataclass
class Part:
    """One piece of the status line: its forms, longest first, each with the priority
    of giving it up (shortening to the next form, or dropping the last one): the
    highest goes first; 0 is never given up."""

    forms: list[tuple[str, int]]
    style: str = ""


SEP = " │ "


def status_parts(info: StatusInfo, v: Mapping[str, str]) -> list[Part]:
    warn = f"bold {colour(v, 'warning')}"
    parts: list[Part] = []
    if info.connected:
        parts.append(
            Part([(f"● {info.store} connected", 7), ("● connected", 0)], colour(v, "success"))
        )
    else:
        since = f" since {clock(info.disconnected_since)}" if info.disconnected_since else ""
        why = f" ({info.error})" if info.error else ""
        parts.append(
            Part(
                [
                    (f"✖ {info.store} DISCONNECTED{since}, retrying{why}", 7),
                    (f"✖ DISCONNECTED{since}, retrying", 1),
                    ("✖ DISCONNECTED", 0),
                ],
                f"bold {colour(v, 'error')}",
            )
        )
    if info.finishing is not None:
        n = info.finishing
        parts.append(
            Part([(f"FINISHING {n} job(s): q hands them back now", 3), ("FINISHING", 0)], warn)
        )
    elif info.running_here is None:
        parts.append(Part([("WATCH-ONLY: claims nothing here", 6), ("WATCH-ONLY", 0)], warn))
    elif info.paused:
        held = sum(info.held.values())  # pending here only because of the pause
        forms = (
            [(f"claiming PAUSED, {held} held", 6), (f"PAUSED, {held} held", 5)]
            if held
            else [("claiming PAUSED", 6)]
        )
        parts.append(Part([*forms, ("PAUSED", 0)], warn))
    if info.unserved:
        names = ", ".join(f"{t}×{n}" for t, n in sorted(info.unserved.items()))
        count = sum(info.unserved.values())
        parts.append(
            Part([(f"⚠ unserved {names}", 3), (f"⚠ unserved {count}", 1)], colour(v, "warning"))
        )
    here = f" ({info.running_here} here)" if info.running_here is not None else ""
    running = f"running {info.running_total}"
    parts.append(Part([(running + here, 5), (running, 2)]))
    parts.append(Part([(f"queue {info.queue_depth}", 3)]))
    workers = f"workers {info.live_workers}"
    parts.append(Part([(workers + " live", 6), (workers, 4)]))
    rate = f"{info.throughput:.2f} jobs/s" if info.throughput is not None else "— jobs/s"
    parts.append(Part([(rate, 8)]))
    if info.output_dir:
        parts.append(Part([(f"out {info.output_dir}", 9)], colour(v, "foreground-muted")))
    return parts


def fit_status(parts: list[Part], width: int) -> Text:
    """The parts joined by separators in at most ``width`` cells: what is cheapest to
    give up (highest priority) is shortened to its next form, or dropped, until it fits."""
    chosen = [0] * len(parts)  # index into each part's forms
    shown = list(range(len(parts)))

    def length() -> int:
        visible = [parts[i].forms[chosen[i]][0] for i in shown]
        return sum(len(f) for f in visible) + len(SEP) * max(0, len(visible) - 1)

    while length() > width:
        givable = [i for i in shown if parts[i].forms[chosen[i]][1] > 0]
        if not givable:
            break
        i = max(givable, key=lambda i: (parts[i].forms[chosen[i]][1], i))
        if chosen[i] + 1 < len(parts[i].forms):
            chosen[i] += 1
        else:
            shown.remove(i)
    text = Text(no_wrap=True, overflow="ellipsis")
    for n, i in enumerate(shown):
        if n:
            text.append(SEP, style="dim")
        text.append(parts[i].forms[chosen[i]][0], style=parts[i].style)
    return text


def render_status(info: StatusInfo, variables: Mapping[str, str], width: int = 10_000) -> Text:
    return fit_status(status_parts(info, variables), width)
