"""The enqueue dialog: path(s), job type (automatic by default), recursive, force,
OCR languages.

The path field accepts whatever a terminal pastes or a person types (quotes,
backslash escapes, ``file://`` URLs, ``~``, several paths): it is read with
``jobtui.engine.paths.parse_dropped_paths``. Before the operator confirms, the dialog
counts the files the paths hold, per job type, with the engine's own walk
(``jobtui.engine.api.preview_paths``) in a thread, never on the event loop. The default job type is
"auto": each file goes to the type that declared its kind (the console names none).
The fields scroll and the count and buttons stay in view, so it fits 80×24.
"""

from __future__ import annotations

import os
import shlex
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import ClassVar

from textual import work
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.css.query import NoMatches
from textual.screen import ModalScreen
from textual.timer import Timer
from textual.widgets import Button, Checkbox, Input, Label, Select
from textual.worker import get_current_worker

from jobtui.engine.api import SKIP_REASONS as REASONS
from jobtui.engine.api import PathPreview, preview_paths, type_taking
from jobtui.engine.paths import parse_dropped_paths
from jobtui.engine.registry import Registry

AUTO = "*auto*"  # the job type choice "each file to the type that takes its kind"
AUTO_LABEL = "auto (by file type)"
DEFAULT_LANGUAGES = "deu+eng"
OCR_LANGUAGES_PARAM = "languages"  # Tesseract languages, where a type's parameters take them


@dataclass
class EnqueueRequest:
    paths: list[str]
    job_type: str | None  # None: each file to the type that declared its kind
    recursive: bool
    languages: str
    force: bool
    found: int
    by_type: dict[str, int] = field(default_factory=dict)
    output_dir: str | None = None  # None: each worker's own output folder

    def batch_name(self) -> str:
        """The folder's (or file's) name; several paths: the first one's, plus a count."""
        names = [os.path.basename(p.rstrip("/")) or p for p in self.paths]
        return names[0] if len(names) == 1 else f"{names[0]} +{len(names) - 1}"

    def parameters(self, registry: Registry) -> dict[str, str]:
        """Options for the handlers: languages for the types whose parameters take them
        (in auto mode the engine gives each type only what its model declares)."""
        types = [self.job_type] if self.job_type else list(self.by_type)
        if self.languages and any(takes_languages(registry, t) for t in types):
            return {OCR_LANGUAGES_PARAM: self.languages}
        return {}


def takes_languages(registry: Registry, job_type: str) -> bool:
    jt = registry.get(job_type)
    return jt is not None and OCR_LANGUAGES_PARAM in jt.params_model.model_fields


ScanResult = PathPreview  # files per type (before content dedupe), skipped, missing


def enqueue_target(path: str, registry: Registry) -> str | None:
    """Why ``path`` cannot be enqueued (None: it can: a folder, or a file some job type
    takes by its name). A paste names such a path to open the dialog."""
    p = Path(path)
    try:
        if p.is_dir():
            return None
        if not p.exists():
            return "no such file or folder"
        if not p.is_file():
            return "not a regular file or folder"
    except OSError as exc:
        return exc.strerror or "unreadable"
    try:
        if type_taking(path, registry) is not None:
            return None
    except OSError as exc:
        return exc.strerror or "unreadable"
    return "no job type takes this kind of file"


def paths_text(paths: Sequence[str]) -> str:
    """How paths look in the path field (parsed back by parse_dropped_paths)."""
    return " ".join(
        p if p and " " not in p and "'" not in p and "\\" not in p else shlex.quote(p)
        for p in paths
    )


def quick_scan(
    paths: Sequence[str], job_type: str | None, recursive: bool, registry: Registry
) -> ScanResult:
    """What enqueueing would take, by the engine's own walk (blocking; run in a thread)."""
    return preview_paths(paths, job_type, recursive, registry=registry)


def describe_scan(scan: ScanResult) -> str:
    """``Found 5 files: 3 pdf.transcribe, 2 image.ocr; skipped 1 no job type takes it
    (notes.txt); not found: /x``."""
    n = scan.files
    text = f"Found {n} file{'s' if n != 1 else ''}"
    if scan.by_type:
        text += ": " + ", ".join(f"{c} {t}" for t, c in sorted(scan.by_type.items()))
    skipped = {r: c for r, c in scan.skipped.items() if r != "missing"}
    if skipped:
        parts = []
        for reason, count in sorted(skipped.items()):
            names = [os.path.basename(p) for p in scan.examples.get(reason, [])[:2]]
            example = f" ({', '.join(names)}{', …' if count > len(names) else ''})" if names else ""
            parts.append(f"{count} {REASONS.get(reason, reason)}{example}")
        text += "; skipped " + ", ".join(parts)
    if scan.missing:
        text += "; not found: " + ", ".join(scan.missing)
    return text


class EnqueueScreen(ModalScreen[EnqueueRequest | None]):
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding(
            "escape", "cancel", "Cancel", id="enqueue-cancel", tooltip="Close without enqueueing"
        ),
    ]

    def __init__(
        self, paths: Sequence[str], registry: Registry, default_output: str | None = None
    ) -> None:
        super().__init__(classes="dialog-screen")
        self.initial_paths = list(paths)
        self.registry = registry
        # where outputs go when the field stays empty (this console's engine), if known
        self.default_output = default_output
        self.job_types = registry.names()
        self.scan: ScanResult | None = None
        self._scan_timer: Timer | None = None

    def compose(self) -> ComposeResult:
        choices = [(AUTO_LABEL, AUTO)] + [(t, t) for t in self.job_types]
        with Vertical(classes="dialog", id="enqueue-dialog"):
            yield Label("Enqueue a folder or files", classes="dialog-title")
            with VerticalScroll(classes="dialog-body"):
                yield Label("Folder or files (paste or drop them here)", classes="field-label")
                yield Input(
                    paths_text(self.initial_paths),
                    placeholder="/path/to/folder",
                    id="enqueue-path",
                    compact=True,
                )
                yield Label("Job type", classes="field-label")
                yield Select[str](
                    choices, value=AUTO, allow_blank=False, id="enqueue-type", compact=True
                )
                with Horizontal(classes="row"):
                    yield Checkbox("Recursive", True, id="enqueue-recursive", compact=True)
                    yield Checkbox(
                        "Force (also files already done)", False, id="enqueue-force", compact=True
                    )
                yield Label("OCR languages (Tesseract, e.g. deu+eng)", classes="field-label")
                yield Input(DEFAULT_LANGUAGES, id="enqueue-languages", compact=True)
                yield Label("Output folder (empty: each worker's own)", classes="field-label")
                here = f"here: {self.default_output}" if self.default_output else "—"
                yield Input("", placeholder=here, id="enqueue-output", compact=True)
            yield Label("", id="enqueue-found")
            with Horizontal(classes="buttons"):
                yield Button("Enqueue", id="enqueue-ok", variant="primary", disabled=True)
                yield Button("Cancel", id="enqueue-cancel")

    def on_mount(self) -> None:
        self.query_one("#enqueue-path", Input).focus()
        self.rescan()

    # -- the path --------------------------------------------------------------

    @property
    def paths(self) -> list[str]:
        return parse_dropped_paths(self.query_one("#enqueue-path", Input).value)

    def set_paths(self, paths: Sequence[str]) -> None:
        """A paste arrived while the dialog is open: it replaces the path."""
        try:
            field = self.query_one("#enqueue-path", Input)
        except NoMatches:  # not composed yet: compose will use these
            self.initial_paths = list(paths)
            return
        field.value = paths_text(paths)
        field.cursor_position = len(field.value)
        self.rescan()

    def on_input_changed(self, event: Input.Changed) -> None:
        if event.input.id == "enqueue-path":
            self.rescan(delay=0.25)  # while typing, scan once the keys pause

    def on_checkbox_changed(self, event: Checkbox.Changed) -> None:
        if event.checkbox.id == "enqueue-recursive":
            self.rescan()

    def on_select_changed(self, event: Select.Changed) -> None:
        self._languages_apply()
        self.rescan()

    def _languages_apply(self) -> None:
        if self.job_type is not None:
            types = [self.job_type]
        elif self.scan is not None:
            types = list(self.scan.by_type)
        else:
            types = self.job_types
        self.query_one("#enqueue-languages", Input).disabled = not any(
            takes_languages(self.registry, t) for t in types
        )

    def _scan_key(self) -> tuple[tuple[str, ...], str | None, bool]:
        return (
            tuple(self.paths),
            self.job_type,
            self.query_one("#enqueue-recursive", Checkbox).value,
        )

    @property
    def job_type(self) -> str | None:
        """The chosen type; None for auto (each file to the type of its kind)."""
        value = self.query_one("#enqueue-type", Select).value
        return value if isinstance(value, str) and value != AUTO else None

    def rescan(self, delay: float = 0.0) -> None:
        self.scan = None
        self._show_found()
        if self._scan_timer is not None:
            self._scan_timer.stop()
            self._scan_timer = None
        if delay:
            self._scan_timer = self.set_timer(delay, self.rescan)
            return
        key = self._scan_key()
        if key[0]:
            self._scan(key)

    @work(thread=True, exclusive=True, group="enqueue-scan")
    def _scan(self, key: tuple[tuple[str, ...], str | None, bool]) -> None:
        result = quick_scan(*key, self.registry)
        if not get_current_worker().is_cancelled:
            self.app.call_from_thread(self._scanned, key, result)

    def _scanned(self, key: tuple[tuple[str, ...], str | None, bool], result: ScanResult) -> None:
        if not (self.app.is_running and self.is_attached):
            return  # the dialog or the console closed while the scan ran
        try:
            current = self._scan_key()
        except NoMatches:  # closing: its fields are removed before it is detached
            return
        if key != current:
            return  # the fields changed meanwhile; their own scan will report
        self.scan = result
        self._languages_apply()
        self._show_found()

    def _show_found(self) -> None:
        label = self.query_one("#enqueue-found", Label)
        ok = self.query_one("#enqueue-ok", Button)
        if not self.paths:
            label.update("Type, paste or drop a folder or file path.")
            ok.disabled = True
            return
        if self.scan is None:
            label.update("Counting files…")
            ok.disabled = True
            return
        n = self.scan.files
        label.update(describe_scan(self.scan))
        label.set_class(n == 0, "-empty")
        ok.disabled = n == 0
        ok.label = f"Enqueue {n} file{'s' if n != 1 else ''}" if n else "Enqueue"
        # Button.label only repaints: without a new layout the button keeps the width of
        # "Enqueue" and shows "Enqueue 4" (seen in tmux at 80x24 by console_smoke.sh)
        ok.refresh(layout=True)

    # -- confirm / cancel -------------------------------------------------------

    def _request(self) -> EnqueueRequest | None:
        if self.scan is None or self.scan.files == 0:
            return None
        return EnqueueRequest(
            paths=self.paths,
            job_type=self.job_type,
            recursive=self.query_one("#enqueue-recursive", Checkbox).value,
            languages=self.query_one("#enqueue-languages", Input).value.strip(),
            force=self.query_one("#enqueue-force", Checkbox).value,
            found=self.scan.files,
            by_type=dict(self.scan.by_type),
            output_dir=self.output_dir,
        )

    @property
    def output_dir(self) -> str | None:
        """The folder typed or pasted (first path of it, ``~`` expanded), or None."""
        chosen = parse_dropped_paths(self.query_one("#enqueue-output", Input).value)
        return os.path.abspath(chosen[0]) if chosen else None

    def on_input_submitted(self, event: Input.Submitted) -> None:
        request = self._request()
        if request is not None:
            self.dismiss(request)

    def on_button_pressed(self, event: Button.Pressed) -> None:
        if event.button.id == "enqueue-ok":
            request = self._request()
            if request is not None:
                self.dismiss(request)
        else:
            self.dismiss(None)

    def action_cancel(self) -> None:
        self.dismiss(None)
