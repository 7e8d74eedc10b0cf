"""The main screen's keys. Each binding has an id and a tooltip: the help screen and
docs/console.md list them from here (``jobtui.tui.screens.help``)."""

from __future__ import annotations

from textual.binding import Binding, BindingType

# The footer shows these in this order and keeps to 80 columns; the keys with
# show=False are in the help (?) and the command palette (ctrl+p).
MAIN_BINDINGS: list[BindingType] = [
    Binding(
        "e",
        "enqueue",
        "Enqueue",
        id="enqueue",
        tooltip="Enqueue a folder or files (pasting or dropping a path does too)",
    ),
    Binding(
        "r",
        "retry_job",
        "Retry",
        id="retry-job",
        tooltip="Retry the selected failed or cancelled job",
    ),
    Binding(
        "c",
        "cancel_job",
        "Cancel",
        id="cancel-job",
        tooltip="Cancel the selected job (asks first)",
    ),
    Binding(
        "slash",
        "filter",
        "Filter",
        key_display="/",
        id="filter",
        tooltip="Filter jobs by text, status and type",
    ),
    Binding(
        "p",
        "pause",
        "Pause",
        id="pause",
        tooltip="Pause or resume claiming new jobs in this process",
    ),
    Binding("question_mark", "help", "Help", key_display="?", id="help", tooltip="Show every key"),
    Binding(
        "q", "quit", "Quit", id="quit", tooltip="Quit (asks what to do with jobs running here)"
    ),
    Binding(
        "w",
        "workers",
        "Workers",
        id="workers",
        tooltip="Show every worker: host, pid, types, running, last heartbeat",
    ),
    Binding(
        "enter",
        "detail",
        "Detail",
        id="detail",
        show=False,
        tooltip="Show the selected job: parameters, result, error, full log, outputs",
    ),
    Binding(
        "R",
        "retry_failed",
        "Retry failed",
        key_display="R",
        id="retry-failed",
        show=False,
        tooltip="Retry every failed job of the selected batch",
    ),
    Binding(
        "C",
        "cancel_batch",
        "Cancel batch",
        key_display="C",
        id="cancel-batch",
        show=False,
        tooltip="Cancel every unfinished job of the selected batch (asks first)",
    ),
    Binding(
        "W",
        "switch_claiming",
        "Claim on/off",
        key_display="W",
        id="switch-claiming",
        show=False,
        tooltip="Switch this console between claiming jobs and watch-only (asks first)",
    ),
    Binding(
        "escape",
        "clear_filter",
        "Clear filter",
        show=False,
        id="clear-filter",
        tooltip="Remove the job filter",
    ),
]
