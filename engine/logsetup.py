"""Process logging for operators: one place sets level, format and destination.

``configure`` is called once by the CLI (``--log-level``, ``--log-format``, or
``JOBTUI_LOG_LEVEL`` / ``JOBTUI_LOG_FORMAT``). jobtui's own loggers (``jobtui.*``) log
at the chosen level; everything else (pymongo, httpx, asyncio) only from WARNING up,
so ``--log-level debug`` shows jobtui's detail, not every HTTP request. Python
``warnings`` are routed into logging (``py.warnings``), so a ``DeprecationWarning``
or ``ResourceWarning`` raised while the console runs reaches the console too
(``divert``) instead of scribbling over the screen or vanishing.

``--log-format json`` writes one JSON object per line: ``ts``, ``level``, ``logger``,
``message`` and any structured fields a record carries (the worker's per-job lines
carry ``job_id``, ``job_type``, ``path``, ``attempt``, ``duration_s``, ``outcome``).
"""

from __future__ import annotations

import json
import logging
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import IO, Any, Literal

LogFormat = Literal["text", "json"]
LEVELS = ("debug", "info", "warning", "error", "critical")
# Record attributes every LogRecord has: anything else was passed as ``extra=``.
_STANDARD = frozenset(vars(logging.LogRecord("", 0, "", 0, "", (), None))) | {
    "message",
    "asctime",
    "taskName",
}
_HANDLER_NAME = "jobtui"


class JsonFormatter(logging.Formatter):
    """One JSON object per line; ``extra=`` fields become keys of their own."""

    def format(self, record: logging.LogRecord) -> str:
        out: dict[str, Any] = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        for key, value in vars(record).items():
            if key not in _STANDARD and not key.startswith("_"):
                out[key] = value
        if record.exc_info:
            out["exc"] = self.formatException(record.exc_info)
        return json.dumps(out, default=str)


TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


def _level(name: str) -> int:
    value = logging.getLevelName(name.upper())
    if not isinstance(value, int):
        raise ValueError(f"unknown log level {name!r}; one of {', '.join(LEVELS)}")
    return value


def make_formatter(fmt: LogFormat) -> logging.Formatter:
    return JsonFormatter() if fmt == "json" else logging.Formatter(TEXT_FORMAT)


class _StderrHandler(logging.StreamHandler):  # type: ignore[type-arg]
    """Writes to whatever ``sys.stderr`` is at the time of the record, not the object it
    was when logging was set up (tests and full-screen apps replace it)."""

    @property
    def stream(self) -> IO[str]:
        return sys.stderr

    @stream.setter
    def stream(self, value: IO[str]) -> None:
        pass


_format: LogFormat = "text"  # what configure() chose; status() follows it


def status(text: str) -> None:
    """A line for the operator on stderr (which store, which worker, stopping...):
    ``jobtui: text``, or with ``--log-format json`` a JSON line like every other, so a
    log shipper reading stderr sees only JSON. Shown whatever the log level."""
    if _format == "json":
        rec = logging.LogRecord("jobtui", logging.INFO, __file__, 0, text, None, None)
        rec.event = "status"
        print(JsonFormatter().format(rec), file=sys.stderr, flush=True)
    else:
        print(f"jobtui: {text}", file=sys.stderr, flush=True)


def configure(
    level: str = "warning", fmt: LogFormat = "text", stream: IO[str] | None = None
) -> None:
    """Send log records to ``stream`` (default: the current stderr) in ``fmt``; idempotent."""
    global _format
    _format = fmt
    root = logging.getLogger()
    for h in [h for h in root.handlers if h.get_name() == _HANDLER_NAME]:
        root.removeHandler(h)
    handler: logging.Handler = (
        logging.StreamHandler(stream) if stream is not None else _StderrHandler()
    )
    handler.set_name(_HANDLER_NAME)
    handler.setFormatter(make_formatter(fmt))
    root.addHandler(handler)
    root.setLevel(logging.WARNING)  # third-party libraries: warnings and errors only
    lvl = _level(level)
    logging.getLogger("jobtui").setLevel(lvl)
    if lvl < logging.WARNING:
        root.setLevel(lvl)  # lets jobtui's INFO/DEBUG records through the root handler
        for noisy in ("httpx", "httpcore", "pymongo", "asyncio", "aiosqlite", "markdown_it"):
            logging.getLogger(noisy).setLevel(logging.WARNING)
    logging.captureWarnings(True)


class CallbackHandler(logging.Handler):
    """Hands each record's formatted text and level to ``sink`` (e.g. the console's
    notifications). A failing sink must never break the code that logged."""

    def __init__(self, sink: Callable[[logging.LogRecord, str], None], level: int) -> None:
        super().__init__(level)
        self.sink = sink
        self.setFormatter(logging.Formatter("%(name)s: %(message)s"))

    def emit(self, record: logging.LogRecord) -> None:
        try:
            self.sink(record, self.format(record))
        except Exception:  # noqa: BLE001 - logging must not raise into its caller
            self.handleError(record)


@contextmanager
def divert(
    sink: Callable[[logging.LogRecord, str], None], level: int = logging.WARNING
) -> Iterator[None]:
    """While the block runs, records of ``level`` and up go to ``sink`` instead of the
    terminal (a full-screen app owns it). Python warnings are captured too."""
    root = logging.getLogger()
    ours = [h for h in root.handlers if h.get_name() == _HANDLER_NAME]
    for h in ours:
        root.removeHandler(h)
    handler = CallbackHandler(sink, level)
    root.addHandler(handler)
    logging.captureWarnings(True)
    try:
        yield
    finally:
        root.removeHandler(handler)
        for h in ours:
            root.addHandler(h)
