"""``jobtui jobs``, ``batches``, ``show``, ``retry`` and ``cancel``: read and steer.

Ids are printed in their short form (``SHORT_ID`` characters) and accepted as any
unique prefix of at least ``MIN_ID_PREFIX`` characters; ``--json`` keeps whole ids.
"""

from __future__ import annotations

import argparse
import json
from typing import Any

from jobtui.engine.api import MIN_ID_PREFIX, OperatorAPI, output_paths, short_id, waiting_for
from jobtui.engine.config import Settings
from jobtui.engine.errors import ConfigError
from jobtui.engine.models import BatchSummary, Job, JobFilter, JobStatus
from jobtui.engine.registry import Registry
from jobtui.tui.cli_common import EXIT_JOB_FAILED, EXIT_OK, table, with_api

MESSAGE_WIDTH = 60
LOG_TAIL = 20
SHOWN_FAILURES = 20
ID_HELP = f"an id, or a unique prefix of at least {MIN_ID_PREFIX} characters"


def add_parsers(sub: Any, store_options: Any) -> None:
    statuses = [s.value for s in JobStatus]
    p = sub.add_parser("jobs", help="list jobs, with a header and each job's message")
    p.add_argument("--status", nargs="+", choices=statuses)
    p.add_argument("--type", nargs="+", dest="job_type")
    p.add_argument("--batch", metavar="BATCH_ID", help=f"only this batch ({ID_HELP})")
    p.add_argument("--limit", type=int, default=0, help="at most this many (default all)")
    p.add_argument("--json", action="store_true", help="print one JSON array")
    store_options(p)

    p = sub.add_parser("batches", help="list batches: name, created, counts, status")
    p.add_argument("--limit", type=int, default=50, help="the newest this many (default 50)")
    p.add_argument("--json", action="store_true", help="print one JSON array")
    store_options(p)

    p = sub.add_parser("show", help="one job (parameters, result, error, log) or one batch")
    p.add_argument("id", metavar="ID", help=f"job or batch ({ID_HELP})")
    p.add_argument("--log-lines", type=int, default=LOG_TAIL, help="log lines (default 20)")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    store_options(p)

    p = sub.add_parser("retry", help="retry failed or cancelled jobs")
    p.add_argument("job_ids", nargs="*", metavar="JOB_ID", help=ID_HELP)
    p.add_argument("--batch", metavar="BATCH_ID", help="the batch's jobs in --status")
    p.add_argument(
        "--status",
        default="failed",
        metavar="S[,S]",
        help="with --batch: failed, cancelled or both as cancelled,failed (default failed)",
    )
    store_options(p)

    p = sub.add_parser("cancel", help="cancel pending or running jobs")
    p.add_argument("job_ids", nargs="*", metavar="JOB_ID", help=ID_HELP)
    p.add_argument("--batch", metavar="BATCH_ID", help="every unfinished job of this batch")
    store_options(p)


async def _batch_id(api: OperatorAPI, given: str | None) -> str | None:
    if given is None:
        return None
    return (await api.resolve_id(given, kinds=("batch",))).id


def _message(job: Job, unserved: dict[str, int]) -> str:
    if job.error and job.status is not JobStatus.COMPLETED:
        text = f"{job.error.code}: {job.error.message}"
    elif job.status is JobStatus.PENDING and job.job_type in unserved:
        text = waiting_for(job.job_type)
    elif job.progress and job.status is JobStatus.PROCESSING:
        text = " ".join(p for p in (job.progress.step, job.progress.message) if p)
    elif job.cancel_requested and not job.status.terminal:
        text = "cancel requested"
    else:
        text = ""
    return text if len(text) <= MESSAGE_WIDTH else text[: MESSAGE_WIDTH - 1] + "…"


async def cmd_jobs(args: argparse.Namespace, settings: Settings, registry: Registry) -> int:
    async def body(api: OperatorAPI) -> int:
        flt = JobFilter(
            status=[JobStatus(s) for s in args.status] if args.status else None,
            job_type=args.job_type,
            batch_id=await _batch_id(api, args.batch),
        )
        if args.limit:
            jobs = (await api.list_jobs(flt, limit=args.limit)).jobs
        else:
            jobs = await api.all_jobs(flt)
        if args.json:
            print(json.dumps([j.summary() for j in jobs], default=str))
            return EXIT_OK
        unserved = await api.unserved_types()
        rows = [
            [
                short_id(j.job_id),
                j.status.value,
                j.job_type,
                f"{j.progress.percent:.0f}%" if j.progress and not j.status.terminal else "",
                f"{j.attempts}/{j.max_attempts}",
                _message(j, unserved),
                j.path or "",
            ]
            for j in jobs
        ]
        header = ["ID", "STATUS", "TYPE", "PROGRESS", "TRIES", "MESSAGE", "PATH"]
        for line in table(rows, header):
            print(line)
        if not jobs:
            print("(no jobs match)")
        return EXIT_OK

    return await with_api(settings, registry, body, announce_it=not args.json)


def _counts(b: BatchSummary) -> str:
    order = ["completed", "failed", "cancelled", "processing", "pending"]
    return ", ".join(f"{b.counts[s]} {s}" for s in order if b.counts.get(s))


def _batch_json(b: BatchSummary) -> dict[str, Any]:
    return {
        "batch_id": b.batch.batch_id,
        "name": b.batch.name,
        "created_at": b.batch.created_at.isoformat(),
        "total": b.total,
        "counts": b.counts,
        "status": b.status,
    }


async def cmd_batches(args: argparse.Namespace, settings: Settings, registry: Registry) -> int:
    async def body(api: OperatorAPI) -> int:
        batches = await api.batches(limit=args.limit)
        if args.json:
            print(json.dumps([_batch_json(b) for b in batches]))
            return EXIT_OK
        rows = [
            [
                short_id(b.batch.batch_id),
                b.batch.name,
                b.batch.created_at.astimezone().strftime("%Y-%m-%d %H:%M"),
                str(b.total),
                b.status,
                _counts(b),
            ]
            for b in batches
        ]
        for line in table(rows, ["ID", "NAME", "CREATED", "JOBS", "STATUS", "COUNTS"]):
            print(line)
        if not batches:
            print("(no batches)")
        return EXIT_OK

    return await with_api(settings, registry, body, announce_it=not args.json)


async def cmd_show(args: argparse.Namespace, settings: Settings, registry: Registry) -> int:
    async def body(api: OperatorAPI) -> int:
        match = await api.resolve_id(args.id)
        if match.kind == "batch":
            return await _show_batch(api, match.id, args.json)
        return await _show_job(api, match.id, args.json, args.log_lines)

    return await with_api(settings, registry, body, announce_it=not args.json)


def _when(value: Any) -> str:
    return value.astimezone().strftime("%Y-%m-%d %H:%M:%S") if value else "-"


def _block(title: str, value: Any) -> list[str]:
    text = json.dumps(value, indent=2, ensure_ascii=False, default=str)
    return [f"{title}:", *("  " + ln for ln in text.splitlines())]


async def _show_job(api: OperatorAPI, job_id: str, as_json: bool, log_lines: int) -> int:
    detail = await api.job_detail(job_id, log_limit=max(log_lines, 0))
    if detail is None:  # deleted between the lookup and now
        raise ConfigError("ID_NOT_FOUND", f"no job with id {job_id!r}")
    job, logs = detail.job, detail.logs
    params = api.shown_parameters(job)
    results = api.shown(job.results) if job.results is not None else None
    error = api.shown(job.error.model_dump()) if job.error else None
    outputs = output_paths(job.results) if job.status is JobStatus.COMPLETED else {}
    log = [f"{e.ts.astimezone().strftime('%H:%M:%S')} {e.level:<7} {e.message}" for e in logs]
    if as_json:
        doc = {
            **job.summary(),
            "parameters": params,
            "results": results,
            "error": error,
            "outputs": outputs,
            "log": log,
        }
        print(json.dumps(doc, default=str))
        return EXIT_OK
    lines = [
        f"job        {job.job_id}",
        f"type       {job.job_type}",
        f"status     {job.status.value} (attempt {job.attempts} of {job.max_attempts})",
        f"batch      {short_id(job.batch_id) or '-'}",
        f"created    {_when(job.created_at)}",
        f"started    {_when(job.started_at)}",
        f"finished   {_when(job.completed_at)}",
    ]
    if job.worker_id:
        lines.append(f"worker     {job.worker_id}")
    if job.progress and not job.status.terminal:
        bits = [f"{job.progress.percent:.0f}%", job.progress.step, job.progress.message]
        lines.append("progress   " + " ".join(b for b in bits if b))
    lines += _block("parameters", params)
    if error:
        lines.append(f"error      {error.get('code')}: {error.get('message', '')}")
        tb = (error.get("details") or {}).get("traceback")
        if tb:
            lines += ["traceback:", *("  " + ln for ln in str(tb).rstrip().splitlines())]
    if results is not None:
        lines += _block("result", results)
    if outputs:
        lines += ["outputs:", *(f"  {p}" for p in outputs.values())]
    if log_lines > 0:
        lines.append(f"log (last {len(log)} lines):" if log else "log: (empty)")
        lines += ["  " + ln for ln in log]
    print("\n".join(lines))
    return EXIT_OK


async def _show_batch(api: OperatorAPI, batch_id: str, as_json: bool) -> int:
    b = await api.batch(batch_id)
    if b is None:
        raise ConfigError("ID_NOT_FOUND", f"no batch with id {batch_id!r}")
    failed = (
        await api.list_jobs(
            JobFilter(batch_id=batch_id, status=[JobStatus.FAILED, JobStatus.CANCELLED]),
            limit=SHOWN_FAILURES,
        )
    ).jobs
    if as_json:
        doc = _batch_json(b)
        doc["failures"] = [j.summary() for j in failed]
        print(json.dumps(doc, default=str))
        return EXIT_OK
    short = short_id(batch_id)
    lines = [
        f"batch      {batch_id}",
        f"name       {b.batch.name}",
        f"created    {_when(b.batch.created_at)}",
        f"status     {b.status}",
        f"jobs       {b.total} ({_counts(b) or 'none'})",
        f"started    {_when(b.first_started_at)}",
        f"finished   {_when(b.last_completed_at) if b.finished else '-'}",
    ]
    if failed:
        n = b.counts.get("failed", 0) + b.counts.get("cancelled", 0)
        lines.append(f"failures ({len(failed)} of {n} shown):")
        for j in failed:
            err = f"{j.error.code}: {j.error.message}" if j.error else j.status.value
            lines.append(f"  {short_id(j.job_id)}  {j.path or '-'}  {err}")
        lines.append(
            f"retry them: jobtui retry --batch {short} --status cancelled,failed; "
            f"details: jobtui show JOB_ID"
        )
    print("\n".join(lines))
    return EXIT_OK


def _statuses(text: str) -> list[JobStatus]:
    out: list[JobStatus] = []
    for part in (p.strip() for p in text.split(",") if p.strip()):
        try:
            status = JobStatus(part)
        except ValueError:
            status = None
        if status is None or status not in (JobStatus.FAILED, JobStatus.CANCELLED):
            raise ConfigError(
                "USAGE",
                f"--status takes failed and/or cancelled (as cancelled,failed), not {part!r}",
            )
        out.append(status)
    return out


async def cmd_steer(args: argparse.Namespace, settings: Settings, registry: Registry) -> int:
    if not args.job_ids and not args.batch:
        raise ConfigError("USAGE", f"{args.command}: give JOB_IDs or --batch BATCH_ID")
    retry = args.command == "retry"
    statuses = _statuses(args.status) if retry else []

    async def body(api: OperatorAPI) -> int:
        # Every id is resolved before anything changes: one bad id changes nothing.
        job_ids = [(await api.resolve_id(j, kinds=("job",))).id for j in args.job_ids]
        batch_id = await _batch_id(api, args.batch)
        n = 0
        for job_id in job_ids:
            n += await (api.retry_job(job_id) if retry else api.cancel_job(job_id))
        if batch_id:
            n += await (
                api.retry_batch(batch_id, statuses) if retry else api.cancel_batch(batch_id)
            )
        verb = "retried" if retry else "cancelled (or asked to stop)"
        print(f"{n} job(s) {verb}")
        return EXIT_OK if n else EXIT_JOB_FAILED

    return await with_api(settings, registry, body)
