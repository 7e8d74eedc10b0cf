"""Exceptions a handler raises to say how its job ends, and configuration errors.

A handler that raises ``JobFailed`` ends its job ``failed`` with that code at once
(bad input is not retried). Any other exception is retried with backoff until the
job type's ``max_attempts``, then ends ``failed`` with ``HANDLER_ERROR``.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Any


class ErrorCode(StrEnum):
    """Stable error codes. Operators and scripts match on these; never rename one."""

    HANDLER_ERROR = "HANDLER_ERROR"  # the handler raised an unexpected exception
    INVALID_PARAMETERS = "INVALID_PARAMETERS"  # parameters failed the handler's model
    TIMEOUT = "TIMEOUT"  # ran longer than its job type's timeout
    LEASE_EXPIRED = "LEASE_EXPIRED"  # its worker vanished too often
    WORKER_CRASHED = "WORKER_CRASHED"  # its worker (process) died on two attempts in a row
    CANCELLED = "CANCELLED"  # cancelled by an operator
    UNKNOWN_JOB_TYPE = "UNKNOWN_JOB_TYPE"  # used in reports; such jobs stay pending
    FILE_NOT_FOUND = "FILE_NOT_FOUND"
    FILE_UNREADABLE = "FILE_UNREADABLE"
    PDF_EMPTY = "PDF_EMPTY"
    NOT_A_PDF = "NOT_A_PDF"
    PDF_CORRUPT = "PDF_CORRUPT"
    PDF_ENCRYPTED = "PDF_ENCRYPTED"
    PATH_NOT_ALLOWED = "PATH_NOT_ALLOWED"
    OUTPUT_ERROR = "OUTPUT_ERROR"
    UNSUPPORTED_PARAMETER = "UNSUPPORTED_PARAMETER"  # a parameter jobtui cannot honour


class JobFailed(Exception):
    """End the job as failed with a stable ``code``; ``retryable`` asks for a retry."""

    def __init__(
        self,
        code: str,
        message: str,
        details: dict[str, Any] | None = None,
        *,
        retryable: bool = False,
    ) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.details = details
        self.retryable = retryable

    def __reduce__(self) -> tuple[Any, ...]:
        # Raised inside worker processes; must survive the trip back through pickle.
        return (_rebuild_job_failed, (self.code, self.message, self.details, self.retryable))


def _rebuild_job_failed(
    code: str, message: str, details: dict[str, Any] | None, retryable: bool
) -> JobFailed:
    return JobFailed(code, message, details, retryable=retryable)


class JobCancelled(Exception):
    """Raised inside a handler by ``ctx.check_cancelled()`` once an operator cancelled."""


class ConfigError(Exception):
    """Bad configuration or usage: the CLI prints ``code: message`` and exits 2.

    The message is redacted here, once for every caller: a config line or URI quoted
    in it never shows a password, token or secret."""

    def __init__(self, code: str, message: str) -> None:
        from jobtui.engine.uri import redact_secrets

        message = redact_secrets(message)
        super().__init__(message)
        self.code = code
        self.message = message
