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


class StatusLine(Widget):
    """Renders a ``StatusInfo``; the main screen calls ``show`` after every refresh.

    A plain widget rather than a ``Static``: ``Static.update`` asks for a new layout
    of the whole screen each time, this one repaints its own line, and only when the
    text changed.
    """

    DEFAULT_CSS = "StatusLine { height: 1; }"

    def __init__(self, text: str = "", **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._text = Text(text, no_wrap=True, overflow="ellipsis")

    def render(self) -> Text:
        return self._text

    def show(self, info: StatusInfo, variables: Mapping[str, str]) -> None:
        text = render_status(info, variables)
        if text != self._text:
            self._text = text
            self.refresh()
        self.set_class(not info.connected, "-disconnected")


def render_status(info: StatusInfo, variables: Mapping[str, str]) -> Text:
    sep = (" │ ", colour(variables, "foreground-darken-2"))
    text = Text(no_wrap=True, overflow="ellipsis")
    if info.connected:
        text.append("● ", style=colour(variables, "success"))
        text.append(info.store)
        text.append(" connected")
    else:
        text.append("✖ ", style=colour(variables, "error"))
        text.append(info.store)
        since = f" since {clock(info.disconnected_since)}" if info.disconnected_since else ""
        text.append(f" DISCONNECTED{since}, retrying", style=f"bold {colour(variables, 'error')}")
        if info.error:
            text.append(f" ({info.error})")
    text.append(*sep)
    text.append(f"workers {info.live_workers} live")
    text.append(*sep)
    here = f" ({info.running_here} here)" if info.running_here is not None else ""
    text.append(f"running {info.running_total}{here}")
    text.append(*sep)
    rate = f"{info.throughput:.2f} jobs/s" if info.throughput is not None else "— jobs/s"
    text.append(rate)
    text.append(*sep)
    text.append(f"queue {info.queue_depth}")
    if info.running_here is None:
        text.append(*sep)
        text.append("watch only", style=colour(variables, "warning"))
    elif info.paused:
        text.append(*sep)
        text.append("claiming PAUSED", style=f"bold {colour(variables, 'warning')}")
    if info.unserved:
        text.append(*sep)
        names = ", ".join(f"{t}×{n}" for t, n in sorted(info.unserved.items()))
        text.append(f"⚠ unserved {names}", style=colour(variables, "warning"))
    return text
