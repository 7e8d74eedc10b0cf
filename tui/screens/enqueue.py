"""The enqueue dialog: path(s), job type, recursive, OCR languages, force.

The path field accepts whatever a terminal pastes or a person types (quotes,
backslash escapes, ``file://`` URLs, ``~``, several paths): it is read with
``jobtui.engine.paths.parse_dropped_paths``. Before the operator confirms, the dialog counts
the files the paths hold with the engine's own walk (``scan_paths``) in a thread, never on the event loop.
"""

from __future__ import annotations

import os
import shlex
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar

from textual import work
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, Vertical
from textual.css.query import NoMatches
from textual.screen import ModalScreen
from textual.timer import Timer
from textual.widgets import Button, Checkbox, Input, Label, Select
from textual.worker import get_current_worker

from jobtui.engine.enqueue import REASONS, scan_paths
from jobtui.engine.paths import parse_dropped_paths
from jobtui.engine.registry import Registry

DEFAULT_JOB_TYPE = "pdf.transcribe"
DEFAULT_LANGUAGES = "deu+eng"
OCR_LANGUAGES_PARAM = "languages"  # the PDF handlers' Tesseract languages parameter


@dataclass
class EnqueueRequest:
    paths: list[str]
    job_type: str
    recursive: bool
    languages: str
    force: bool
    found: int

    def batch_name(self) -> str:
        """The folder's (or file's) name; several paths: the first one's, plus a count."""
        names = [os.path.basename(p.rstrip("/")) or p for p in self.paths]
        return names[0] if len(names) == 1 else f"{names[0]} +{len(names) - 1}"

    def parameters(self, registry: Registry) -> dict[str, str]:
        """Options for the handler; languages only for types whose parameters take them."""
        return (
            {OCR_LANGUAGES_PARAM: self.languages}
            if self.languages and takes_languages(registry, self.job_type)
            else {}
        )


def takes_languages(registry: Registry, job_type: str) -> bool:
    jt = registry.get(job_type)
    return jt is not None and OCR_LANGUAGES_PARAM in jt.params_model.model_fields


@dataclass
class ScanResult:
    files: int  # what would be enqueued (before content dedupe)
    missing: list[str]
    skipped: dict[str, int]


def is_pdf_name(name: str) -> bool:
    return name.lower().endswith(".pdf")


def is_enqueue_target(path: str) -> bool:
    """An existing folder or PDF file: what a paste must name to open the dialog."""
    p = Path(path)
    try:
        return p.is_dir() or (p.is_file() and is_pdf_name(p.name))
    except OSError:
        return False


def paths_text(paths: Sequence[str]) -> str:
    """How paths look in the path field (parsed back by parse_dropped_paths)."""
    return " ".join(
        p if p and " " not in p and "'" not in p and "\\" not in p else shlex.quote(p)
        for p in paths
    )


def quick_scan(
    paths: Sequence[str], job_type: str, recursive: bool, registry: Registry
) -> ScanResult:
    """What enqueueing would take, by the engine's own walk (blocking; run in a thread)."""
    scan = scan_paths(paths, job_type, recursive, registry=registry)
    return ScanResult(
        files=len(scan.files), missing=scan.examples.get("missing", []), skipped=dict(scan.skipped)
    )


class EnqueueScreen(ModalScreen[EnqueueRequest | None]):
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding(
            "escape", "cancel", "Cancel", id="enqueue-cancel", tooltip="Close without enqueueing"
        ),
    ]

    def __init__(self, paths: Sequence[str], registry: Registry) -> None:
        super().__init__(classes="dialog-screen")
        self.initial_paths = list(paths)
        self.registry = registry
        self.job_types = registry.names() or [DEFAULT_JOB_TYPE]
        self.scan: ScanResult | None = None
        self._scan_timer: Timer | None = None

    def compose(self) -> ComposeResult:
        default = DEFAULT_JOB_TYPE if DEFAULT_JOB_TYPE in self.job_types else self.job_types[0]
        with Vertical(classes="dialog", id="enqueue-dialog"):
            yield Label("Enqueue a folder or files", classes="dialog-title")
            yield Label("Folder or PDF file (paste or drop it here)", classes="field-label")
            yield Input(
                paths_text(self.initial_paths), placeholder="/path/to/folder", id="enqueue-path"
            )
            yield Label("Job type", classes="field-label")
            yield Select[str](
                [(t, t) for t in self.job_types],
                value=default,
                allow_blank=False,
                id="enqueue-type",
            )
            with Horizontal(classes="row"):
                yield Checkbox("Recursive", True, id="enqueue-recursive")
                yield Checkbox("Force (also already done files)", False, id="enqueue-force")
            yield Label("OCR languages (Tesseract, e.g. deu+eng)", classes="field-label")
            yield Input(DEFAULT_LANGUAGES, id="enqueue-languages")
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
        self.query_one("#enqueue-languages", Input).disabled = not takes_languages(
            self.registry, self.job_type
        )
        self.rescan()

    def _scan_key(self) -> tuple[tuple[str, ...], str, bool]:
        return (
            tuple(self.paths),
            self.job_type,
            self.query_one("#enqueue-recursive", Checkbox).value,
        )

    @property
    def job_type(self) -> str:
        value = self.query_one("#enqueue-type", Select).value
        return value if isinstance(value, str) else self.job_types[0]

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
    def _scan(self, key: tuple[tuple[str, ...], str, bool]) -> None:
        result = quick_scan(*key, self.registry)
        if not get_current_worker().is_cancelled:
            self.app.call_from_thread(self._scanned, key, result)

    def _scanned(self, key: tuple[tuple[str, ...], str, bool], result: ScanResult) -> None:
        if key != self._scan_key():
            return  # the fields changed meanwhile; their own scan will report
        self.scan = result
        self._show_found()

    def _show_found(self) -> None:
        label = self.query_one("#enqueue-found", Label)
        ok = self.query_one("#enqueue-ok", Button)
        if not self.paths:
            label.update("Type, paste or drop a folder or PDF path.")
            ok.disabled = True
            return
        if self.scan is None:
            label.update("Counting PDFs…")
            ok.disabled = True
            return
        n = self.scan.files
        noun = "PDF" if self.job_type.startswith("pdf.") else "file"
        text = f"Found {n} {noun}{'s' if n != 1 else ''}"
        skipped = {r: c for r, c in self.scan.skipped.items() if r != "missing"}
        if skipped:
            text += (
                " (skipped "
                + ", ".join(f"{c} {REASONS.get(r, r)}" for r, c in sorted(skipped.items()))
                + ")"
            )
        if self.scan.missing:
            text += f"; not found: {', '.join(self.scan.missing)}"
        label.update(text)
        label.set_class(n == 0, "-empty")
        ok.disabled = n == 0
        ok.label = f"Enqueue {n} {noun}{'s' if n != 1 else ''}" if n else "Enqueue"

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
        )

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
