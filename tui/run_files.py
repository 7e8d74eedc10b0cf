"""One input file of ``jobtui run`` and what became of it: its job, whether it was
done earlier or retried, its own outputs, and how the summaries show it."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from jobtui.engine.api import waiting_for
from jobtui.engine.models import Job, JobStatus


@dataclass
class RunFile:
    """One input file of the run and what became of it."""

    path: str
    key: str
    job: Job | None = None
    earlier: bool = False  # completed before this run
    retried: bool = False  # failed or cancelled before; retried by this run
    outputs: dict[str, str] = field(default_factory=dict)
    output_error: str | None = None

    @property
    def ok(self) -> bool:
        return (
            self.job is not None
            and self.job.status is JobStatus.COMPLETED
            and self.output_error is None
        )

    @property
    def status(self) -> str:
        if self.job is None:
            return "missing"
        if self.job.status is JobStatus.COMPLETED:
            if self.output_error:
                return "output_missing"
            return "done_earlier" if self.earlier else "completed"
        return self.job.status.value

    def summary(self) -> dict[str, Any]:
        job = self.job
        out: dict[str, Any] = {"path": self.path, "status": self.status}
        if job is not None:
            out["job_id"] = job.job_id
            out["batch_id"] = job.batch_id
            if job.path and job.path != self.path:
                out["same_content_as"] = job.path
            if job.error and job.status is not JobStatus.COMPLETED:
                out["error_code"] = job.error.code
                out["error_message"] = job.error.message
            if job.status is JobStatus.PENDING:  # of a type no engine here serves
                out["waiting_for_type"] = job.job_type
        if self.retried:
            out["retried"] = True
        out["outputs"] = self.outputs
        if self.output_error:
            out["error_code"] = "OUTPUT_MISSING"
            out["error_message"] = self.output_error
        return out


def file_line(f: RunFile) -> str:
    status = f.status.replace("_", " ")
    line = f"{status:<12} {f.path}"
    job = f.job
    if f.output_error:
        line += f"  OUTPUT_MISSING: {f.output_error}"
    elif job is not None and job.status is JobStatus.PENDING:
        line += "  " + waiting_for(job.job_type)
    elif job is not None and job.error and job.status is not JobStatus.COMPLETED:
        line += f"  {job.error.code}: {job.error.message}"
    elif job is not None and job.path and job.path != f.path:
        line += f"  (same content as {job.path})"
    return line
