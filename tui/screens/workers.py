"""Workers: every engine that heartbeats into the store (host, pid, types, running)."""

from __future__ import annotations

from typing import TYPE_CHECKING, ClassVar

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.screen import Screen
from textual.widgets import Footer, Static

from jobtui.engine.api import WORKER_ALIVE_S
from jobtui.tui.widgets.cells import age, colour
from jobtui.tui.widgets.tables import KeyedTable

if TYPE_CHECKING:
    from jobtui.tui.app import ConsoleSnapshot, JobtuiApp

COLUMNS = [
    ("Host", "host", 16),
    ("PID", "pid", 7),
    ("Worker", "worker", 34),
    ("Types", "types", 24),
    ("Running", "running", 7),
    ("Slots", "slots", 5),
    ("Heartbeat", "heartbeat", 10),
    ("State", "state", 7),
]


class WorkersScreen(Screen[None]):
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding(
            "escape,q,w", "app.pop_screen", "Back", id="workers-back", tooltip="Back to the jobs"
        ),
    ]

    def compose(self) -> ComposeResult:
        yield Static("Workers", id="workers-title")
        yield KeyedTable(COLUMNS, id="workers-table")
        yield Footer()

    def on_mount(self) -> None:
        app: JobtuiApp = self.app  # type: ignore[assignment]
        if app.snapshot is not None:
            self.show_snapshot(app.snapshot)

    def show_snapshot(self, snap: ConsoleSnapshot) -> None:
        app: JobtuiApp = self.app  # type: ignore[assignment]
        v = self.app.get_css_variables()
        now = app.now()
        mine = app.engine.worker_id if app.engine is not None else None
        rows: list[tuple[str, tuple[object, ...]]] = []
        live = 0
        for info in sorted(snap.workers, key=lambda w: (w.host, w.pid, w.worker_id)):
            alive = (now - info.heartbeat_at).total_seconds() <= WORKER_ALIVE_S
            live += alive
            here = info.worker_id == mine
            # This console's own row: its engine answers (its record trails by a beat,
            # and the quit question's hold is not a pause to show).
            mine_live = here and app.live_engine is not None
            paused = app.paused_by_operator if mine_live else info.paused
            state = ("paused" if paused else "alive") if alive else "gone"
            style = colour(v, "success" if state == "alive" else "warning" if alive else "error")
            rows.append(
                (
                    info.worker_id,
                    (
                        info.host,
                        str(info.pid),
                        info.worker_id + (" (this console)" if here else ""),
                        ", ".join(info.job_types) or "—",
                        str(info.running),
                        str(info.concurrency),
                        age(info.heartbeat_at, now),
                        Text(state, style=style),
                    ),
                )
            )
        self.query_one(KeyedTable).sync(rows)
        self.query_one("#workers-title", Static).update(
            f"Workers: {live} live, {len(snap.workers)} known (gone: no heartbeat for "
            f"{WORKER_ALIVE_S:.0f}s)"
        )
