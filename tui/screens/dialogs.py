"""Small modal dialogs: confirm (with "No" focused), quit with running jobs, filter."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, ClassVar

from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Button, Input, Label, Select

from jobtui.engine.models import JobStatus

if TYPE_CHECKING:
    from jobtui.tui.app import ConsoleSnapshot


class ConfirmScreen(ModalScreen[bool]):
    """Asks yes or no; "No" has the focus so a stray enter changes nothing."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("y", "answer(True)", "Yes", id="confirm-yes", tooltip="Confirm the action"),
        Binding(
            "n,escape", "answer(False)", "No", id="confirm-no", tooltip="Keep things as they are"
        ),
    ]

    def __init__(
        self, question: str, yes: str = "Yes", no: str = "No", *, explain: str = ""
    ) -> None:
        super().__init__(classes="dialog-screen")
        self.question = question
        self.yes = yes
        self.no = no
        self.explain = explain  # what will happen, said before the operator chooses

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog", id="confirm-dialog"):
            with VerticalScroll(classes="dialog-body"):
                yield Label(self.question, id="question")
                if self.explain:
                    yield Label(self.explain, id="explain")
            with Horizontal(classes="buttons"):
                yield Button(self.yes, id="yes", variant="error")
                yield Button(self.no, id="no", variant="primary")

    def on_mount(self) -> None:
        self.query_one("#no", Button).focus()

    def on_button_pressed(self, event: Button.Pressed) -> None:
        self.dismiss(event.button.id == "yes")

    def action_answer(self, yes: bool) -> None:
        self.dismiss(yes)


class QuitScreen(ModalScreen[str]):
    """Jobs run in this process: finish them, hand them back, or stay.

    No new job starts here while it is open (``EngineControl.request_quit``); the
    count follows the jobs still running (every refresh calls ``show_snapshot``).
    Once none runs, there is nothing to finish or hand back: the choice is "Quit"
    (the ``finish`` answer, which then waits for nothing) or "Don't quit"."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape", "choose('stay')", "Stay", id="quit-stay", tooltip="Do not quit"),
    ]

    def __init__(self, running: int, grace: float) -> None:
        super().__init__(classes="dialog-screen")
        self.running = running
        self.grace = grace

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog", id="quit-dialog"):
            with VerticalScroll(classes="dialog-body"):
                yield Label(self._question(), id="question")
                yield Label(
                    "No new job starts here while you choose. "
                    f"Finish: wait up to {self.grace:.0f}s for them, then hand back the rest. "
                    "Hand back: they go back to the queue now (pending, the attempt not "
                    "counted) and start again from the beginning on any worker.",
                    id="explain",
                )
            with Horizontal(classes="buttons"):
                yield Button(f"Finish them (≤{self.grace:.0f}s)", id="finish", variant="primary")
                yield Button("Hand them back", id="handback", variant="warning")
                yield Button("Don't quit", id="stay")

    def _question(self) -> str:
        if not self.running:  # they ended while the question was open
            return "No job runs in this process any more: quitting loses nothing."
        return f"{self.running} job(s) are running in this process. Before quitting:"

    def on_mount(self) -> None:
        self.query_one("#stay", Button).focus()

    def show_snapshot(self, snap: ConsoleSnapshot) -> None:
        running = snap.status.running_here
        if running is not None and running != self.running:
            self.running = running
            self.query_one("#question", Label).update(self._question())
            if not running:
                self.query_one("#explain", Label).update(
                    "Nothing is left to finish or hand back; no new job starts here "
                    "while you choose."
                )
                self.query_one("#finish", Button).label = "Quit"
                self.query_one("#handback", Button).display = False

    def on_button_pressed(self, event: Button.Pressed) -> None:
        self.dismiss(event.button.id or "stay")

    def action_choose(self, choice: str) -> None:
        self.dismiss(choice)


@dataclass
class FilterSpec:
    text: str = ""
    status: JobStatus | None = None
    job_type: str | None = None

    @property
    def active(self) -> bool:
        return bool(self.text or self.status or self.job_type)

    def describe(self) -> str:
        parts = []
        if self.text:
            parts.append(f'"{self.text}"')
        if self.status:
            parts.append(f"status={self.status.value}")
        if self.job_type:
            parts.append(f"type={self.job_type}")
        return " ".join(parts)


class FilterScreen(ModalScreen[FilterSpec | None]):
    """Filter jobs by text (id, path, error code), status and job type."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding(
            "escape", "cancel", "Cancel", id="filter-cancel", tooltip="Keep the current filter"
        ),
    ]

    def __init__(self, current: FilterSpec, job_types: list[str]) -> None:
        super().__init__(classes="dialog-screen")
        self.current = current
        self.job_types = job_types

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog", id="filter-dialog"):
            yield Label("Filter jobs", classes="dialog-title")
            yield Input(
                self.current.text, placeholder="text in id, path or error code", id="filter-text"
            )
            yield Select[JobStatus](
                [(s.value, s) for s in JobStatus],
                prompt="any status",
                value=self.current.status or Select.NULL,
                id="filter-status",
            )
            yield Select[str](
                [(t, t) for t in self.job_types],
                prompt="any type",
                value=self.current.job_type or Select.NULL,
                id="filter-type",
            )
            with Horizontal(classes="buttons"):
                yield Button("Apply", id="apply", variant="primary")
                yield Button("Clear", id="clear")

    def on_mount(self) -> None:
        self.query_one("#filter-text", Input).focus()

    def _spec(self) -> FilterSpec:
        status = self.query_one("#filter-status", Select).value
        job_type = self.query_one("#filter-type", Select).value
        return FilterSpec(
            text=self.query_one("#filter-text", Input).value.strip(),
            status=status if isinstance(status, JobStatus) else None,
            job_type=job_type if isinstance(job_type, str) else None,
        )

    def on_input_submitted(self, event: Input.Submitted) -> None:
        self.dismiss(self._spec())

    def on_button_pressed(self, event: Button.Pressed) -> None:
        self.dismiss(FilterSpec() if event.button.id == "clear" else self._spec())

    def action_cancel(self) -> None:
        self.dismiss(None)
