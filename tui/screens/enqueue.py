"""The enqueue dialog: path(s), job type, recursive, OCR languages, force.

The path field accepts whatever a terminal pastes or a person types (quotes,
backslash escapes, ``file://`` URLs, ``~``, several paths): it is read with
``engine.paths.parse_dropped_paths``. Before the operator confirms, the dialog counts
the PDFs the paths hold with a quick scan in a thread, never on the event loop.
"""

from __future__ import annotations

import os
import shlex
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from textual import work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.screen import ModalScreen
from textual.widgets import Button, Checkbox, Input, Label, Select
from textual.worker import get_current_worker

from engine.paths import parse_dropped_paths

DEFAULT_JOB_TYPE = "pdf.transcribe"
DEFAULT_LANGUAGES = "deu+eng"
OCR_LANGUAGES_PARAM = "ocr_languages"
SCAN_LIMIT = 1_000_000


@dataclass
class EnqueueRequest:
    paths: list[str]
    job_type: str
    recursive: bool
    languages: str
    force: bool
    found: int

    def parameters(self) -> dict[str, str]:
        return {OCR_LANGUAGES_PARAM: self.languages} if self.languages else {}


@dataclass
class ScanResult:
    pdfs: int
    missing: list[str]
    truncated: bool = False


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
    return " ".join(p if p and " " not in p and "'" not in p and "\\" not in p else shlex.quote(p)
                    for p in paths)


def count_pdfs(paths: Sequence[str], recursive: bool, cancelled: object = None,
               limit: int = SCAN_LIMIT) -> ScanResult:
    """Count PDF files under the paths (blocking; run it in a thread)."""
    found = 0
    missing: list[str] = []
    stack: list[str] = []
    for path in paths:
        if os.path.isdir(path):
            stack.append(path)
        elif os.path.isfile(path):
            found += is_pdf_name(path)
        else:
            missing.append(path)
    while stack:
        if getattr(cancelled, "is_cancelled", False):
            break
        folder = stack.pop()
        try:
            with os.scandir(folder) as entries:
                for entry in entries:
                    try:
                        if entry.is_dir(follow_symlinks=False):
                            if recursive and not entry.name.startswith("."):
                                stack.append(entry.path)
                        elif is_pdf_name(entry.name) and entry.is_file():
                            found += 1
                    except OSError:
                        continue
                    if found >= limit:
                        return ScanResult(found, missing, truncated=True)
        except OSError:
            continue
    return ScanResult(found, missing)


class EnqueueScreen(ModalScreen[EnqueueRequest | None]):
    BINDINGS = [
        Binding("escape", "cancel", "Cancel", id="enqueue-cancel", tooltip="Close without enqueueing"),
    ]

    def __init__(self, paths: Sequence[str] = (), job_types: Sequence[str] = ()) -> None:
        super().__init__(classes="dialog-screen")
        self.initial_paths = list(paths)
        self.job_types = list(job_types) or [DEFAULT_JOB_TYPE]
        self.scan: ScanResult | None = None
        self.scanned_for: tuple[tuple[str, ...], bool] | None = None

    def compose(self) -> ComposeResult:
        default = DEFAULT_JOB_TYPE if DEFAULT_JOB_TYPE in self.job_types else self.job_types[0]
        with Vertical(classes="dialog", id="enqueue-dialog"):
            yield Label("Enqueue PDFs", classes="dialog-title")
            yield Label("Folder or PDF file (paste or drop it here)", classes="field-label")
            yield Input(paths_text(self.initial_paths), placeholder="/path/to/folder",
                        id="enqueue-path")
            yield Label("Job type", classes="field-label")
            yield Select[str]([(t, t) for t in self.job_types], value=default,
                              allow_blank=False, id="enqueue-type")
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
        field = self.query_one("#enqueue-path", Input)
        field.value = paths_text(paths)
        field.cursor_position = len(field.value)
        self.rescan()

    def on_input_changed(self, event: Input.Changed) -> None:
        if event.input.id == "enqueue-path":
            self.rescan()

    def on_checkbox_changed(self, event: Checkbox.Changed) -> None:
        if event.checkbox.id == "enqueue-recursive":
            self.rescan()

    def rescan(self) -> None:
        paths = self.paths
        recursive = self.query_one("#enqueue-recursive", Checkbox).value
        self.scan = None
        self._show_found()
        if paths:
            self._scan(tuple(paths), recursive)

    @work(thread=True, exclusive=True, group="enqueue-scan")
    def _scan(self, paths: tuple[str, ...], recursive: bool) -> None:
        result = count_pdfs(paths, recursive, cancelled=get_current_worker())
        if not get_current_worker().is_cancelled:
            self.app.call_from_thread(self._scanned, paths, recursive, result)

    def _scanned(self, paths: tuple[str, ...], recursive: bool, result: ScanResult) -> None:
        if (list(paths), recursive) != (self.paths, self.query_one("#enqueue-recursive", Checkbox).value):
            return  # the field changed meanwhile; its own scan will report
        self.scan = result
        self.scanned_for = (paths, recursive)
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
        more = "+" if self.scan.truncated else ""
        text = f"Found {self.scan.pdfs}{more} PDF{'s' if self.scan.pdfs != 1 else ''}"
        if self.scan.missing:
            text += f"; not found: {', '.join(self.scan.missing)}"
        label.update(text)
        label.set_class(self.scan.pdfs == 0, "-empty")
        ok.disabled = self.scan.pdfs == 0
        ok.label = f"Enqueue {self.scan.pdfs}{more} PDFs" if self.scan.pdfs else "Enqueue"

    # -- confirm / cancel -------------------------------------------------------

    def _request(self) -> EnqueueRequest | None:
        if self.scan is None or self.scan.pdfs == 0:
            return None
        value = self.query_one("#enqueue-type", Select).value
        return EnqueueRequest(
            paths=self.paths,
            job_type=value if isinstance(value, str) else self.job_types[0],
            recursive=self.query_one("#enqueue-recursive", Checkbox).value,
            languages=self.query_one("#enqueue-languages", Input).value.strip(),
            force=self.query_one("#enqueue-force", Checkbox).value,
            found=self.scan.pdfs,
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
