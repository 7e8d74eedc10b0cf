"""The ``jobtui`` command: the console (no arguments) and the headless commands.

Exit codes: 0 success; 1 a job of ``run`` failed or was cancelled, or a command
found nothing to act on; 2 usage or configuration errors (printed as
``jobtui: CODE: message``, never a traceback).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import sys
import time
from collections.abc import Awaitable, Callable
from typing import Any

from jobtui.engine.config import Settings, load_settings
from jobtui.engine.errors import ConfigError
from jobtui.engine.logsetup import LEVELS as LOG_LEVELS
from jobtui.engine.logsetup import configure as configure_logging
from jobtui.engine.models import JobFilter, JobStatus
from jobtui.engine.registry import Registry, default_registry
from jobtui.engine.signals import ShutdownSignals, signal_name
from jobtui.engine.store.base import Store, StoreError
from jobtui.engine.store.factory import open_store, store_banner
from jobtui.tui import purge

EXIT_OK, EXIT_JOB_FAILED, EXIT_USAGE = 0, 1, 2


def _add_store_options(p: argparse.ArgumentParser, sub: bool = True) -> None:
    # Subcommands repeat the global options; SUPPRESS keeps a value given before the
    # command from being reset by the subcommand's default.
    g = p.add_argument_group("store", argument_default=argparse.SUPPRESS if sub else None)
    g.add_argument("--config", metavar="FILE", help="YAML config file (also JOBTUI_CONFIG)")
    g.add_argument(
        "--mongodb-uri",
        metavar="URI",
        help="MongoDB URI (also MONGODB_URI); without one the embedded SQLite store is used",
    )
    g.add_argument(
        "--database", help="MongoDB database name (default: the URI's path, else jobtui)"
    )
    g.add_argument("--jobs-collection", metavar="NAME", help="e.g. event_jobs")
    g.add_argument("--batches-collection", metavar="NAME", help="e.g. event_batches")
    g.add_argument("--store", metavar="PATH", help="embedded store file (also JOBTUI_STORE)")
    g = p.add_argument_group("logging", argument_default=argparse.SUPPRESS if sub else None)
    g.add_argument(
        "--log-level",
        type=str.lower,
        choices=LOG_LEVELS,
        help="debug, info, warning, error (also JOBTUI_LOG_LEVEL; "
        "default info for worker, warning otherwise)",
    )
    g.add_argument(
        "--log-format",
        type=str.lower,
        choices=("text", "json"),
        help="text or json (one object per line; also JOBTUI_LOG_FORMAT)",
    )


def _add_engine_options(p: argparse.ArgumentParser, sub: bool = True) -> None:
    g = p.add_argument_group("engine", argument_default=argparse.SUPPRESS if sub else None)
    g.add_argument("--concurrency", type=int, help="jobs at once in this process")
    g.add_argument("--output", metavar="DIR", help="output directory (default ./jobtui-output)")
    g.add_argument("--types", nargs="+", metavar="GLOB", help="job types to serve, e.g. 'pdf.*'")
    g.add_argument("--lease-seconds", type=float, help="lease length (default 30)")
    g.add_argument("--poll-interval", type=float, help="seconds between polls (default 2)")
    g.add_argument("--cpu-workers", type=int, help="CPU worker processes (default: cores)")
    g.add_argument(
        "--input-root",
        action="append",
        dest="input_roots",
        metavar="DIR",
        help="read job input only under DIR (repeatable; also JOBTUI_INPUT_ROOTS)",
    )


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="jobtui",
        description="Job engine and operator console for document pipelines. "
        "Without a command, opens the console.",
    )
    _add_store_options(parser, sub=False)
    _add_engine_options(parser, sub=False)
    parser.add_argument(
        "--watch",
        action="store_true",
        help="console only: watch, claim no job here (key W switches claiming on)",
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    p = sub.add_parser("worker", help="run the engine headless until SIGINT, SIGTERM or SIGHUP")
    _add_store_options(p)
    _add_engine_options(p)

    for name, hlp in (
        ("enqueue", "enqueue files and folders as one batch"),
        ("run", "enqueue as one batch, process it here to the end, summarise"),
    ):
        p = sub.add_parser(name, help=hlp)
        p.add_argument("paths", nargs="+", metavar="PATH")
        p.add_argument(
            "--type",
            default=None,
            help="job type for every file (default: each file under the type that takes "
            "its kind, e.g. .pdf -> pdf.transcribe; files no type takes are skipped)",
        )
        p.add_argument(
            "--param",
            action="append",
            default=[],
            metavar="KEY=VALUE",
            help="job parameter (JSON value or string), repeatable",
        )
        p.add_argument("--force", action="store_true", help="redo files already processed")
        p.add_argument("--no-recursive", action="store_true", help="do not descend into folders")
        p.add_argument("--name", help="batch name")
        p.add_argument("--json", action="store_true", help="print one JSON object")
        _add_store_options(p)
        if name == "run":
            _add_engine_options(p)

    p = sub.add_parser("jobs", help="list jobs")
    p.add_argument("--status", nargs="+", choices=[s.value for s in JobStatus])
    p.add_argument("--type", nargs="+", dest="job_type")
    p.add_argument("--batch")
    p.add_argument("--limit", type=int, default=0, help="at most this many (default all)")
    p.add_argument("--json", action="store_true", help="print one JSON array")
    _add_store_options(p)

    for name, verb in (
        ("retry", "retry failed or cancelled jobs"),
        ("cancel", "cancel pending or running jobs"),
    ):
        p = sub.add_parser(name, help=verb)
        p.add_argument("job_ids", nargs="*", metavar="JOB_ID")
        p.add_argument("--batch", help="every matching job of this batch")
        _add_store_options(p)

    p = sub.add_parser("doctor", help="check the setup; one line per check with the fix")
    p.add_argument(
        "--languages",
        metavar="LANGS",
        help="OCR languages to expect "
        "(tesseract's deu+eng form; default: pdf.transcribe's default)",
    )
    p.add_argument("--json", action="store_true", help="print one JSON object")
    _add_store_options(p)
    _add_engine_options(p)
    purge.add_parser(sub, _add_store_options)
    return parser


def settings_from_args(args: argparse.Namespace) -> Settings:
    def g(name: str) -> Any:
        return getattr(args, name, None)

    overrides: dict[str, Any] = {
        "mongodb_uri": g("mongodb_uri"),
        "database": g("database"),
        "store": g("store"),
        "concurrency": g("concurrency"),
        "output_dir": g("output"),
        "types": g("types"),
        "lease_seconds": g("lease_seconds"),
        "poll_interval": g("poll_interval"),
        "cpu_workers": g("cpu_workers"),
        "input_roots": g("input_roots"),
        "log_level": g("log_level"),
        "log_format": g("log_format"),
    }
    settings = load_settings(g("config"), overrides)
    if g("jobs_collection"):
        settings.collections.jobs = args.jobs_collection
    if g("batches_collection"):
        settings.collections.batches = args.batches_collection
    return settings


def _announce(settings: Settings, store: Store) -> None:
    print(f"jobtui: {store_banner(settings, store)}", file=sys.stderr)


def _parse_params(items: list[str]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for item in items:
        key, sep, raw = item.partition("=")
        if not sep or not key:
            raise ConfigError("USAGE", f"--param expects KEY=VALUE, got {item!r}")
        try:
            out[key] = json.loads(raw)
        except ValueError:
            out[key] = raw
    return out


def _progress_printer(quiet: bool) -> Callable[[int, int], None] | None:
    if quiet or not sys.stderr.isatty():
        return None
    last = [0.0]

    def show(done: int, total: int) -> None:
        now = time.monotonic()
        if now - last[0] > 0.1 or done == total:
            last[0] = now
            print(
                f"\rscanning {done}/{total} files",
                end="" if done < total else "\n",
                file=sys.stderr,
                flush=True,
            )

    return show


async def _with_store(
    settings: Settings, fn: Callable[[Store], Awaitable[int]], *, announce: bool = True
) -> int:
    store = await open_store(settings)
    if announce:
        _announce(settings, store)
    try:
        return await fn(store)
    finally:
        await store.close()


async def cmd_worker(args: argparse.Namespace, settings: Settings, registry: Registry) -> int:
    from jobtui.engine.worker import Engine

    async def body(store: Store) -> int:
        engine = Engine(store, registry, settings)
        stop = asyncio.Event()
        # SIGINT, SIGTERM (docker stop) and SIGHUP all stop gracefully; a second exits.
        with ShutdownSignals(lambda _sig: stop.set()):
            await engine.start()
            print(
                f"jobtui: worker {engine.worker_id} serving {', '.join(engine.registry.names())}",
                file=sys.stderr,
            )
            waits = [asyncio.create_task(stop.wait()), asyncio.create_task(engine.failed.wait())]
            await asyncio.wait(waits, return_when=asyncio.FIRST_COMPLETED)
            for w in waits:
                w.cancel()
            if engine.fatal is not None:  # e.g. STORE_REPLACED: nothing left to hand back
                await engine.stop(grace=0)
                raise engine.fatal
            print(
                f"jobtui: running jobs get {settings.shutdown_grace:.0f}s to finish, "
                "then go back to the queue",
                file=sys.stderr,
            )
            await engine.stop()
        return EXIT_OK

    return await _with_store(settings, body)


async def _enqueue(api: Any, args: argparse.Namespace) -> Any:
    missing = [p for p in args.paths if not os.path.exists(os.path.expanduser(p))]
    if missing:
        raise ConfigError("PATH_NOT_FOUND", f"no such file or folder: {', '.join(missing)}")
    report = await api.enqueue_paths(
        args.paths,
        job_type=args.type,
        parameters=_parse_params(args.param),
        force=args.force,
        recursive=not args.no_recursive,
        batch_name=args.name,
        on_progress=_progress_printer(args.json),
    )
    print(f"jobtui: {report.summary_line()}", file=sys.stderr)
    return report


async def cmd_enqueue(args: argparse.Namespace, settings: Settings, registry: Registry) -> int:
    from jobtui.engine.api import OperatorAPI

    async def body(store: Store) -> int:
        report = await _enqueue(OperatorAPI(store, registry), args)
        if args.json:
            print(
                json.dumps(
                    {
                        "batch_id": report.batch_id,
                        "job_ids": report.job_ids,
                        "duplicates": report.duplicates,
                        "skipped": report.skipped,
                    }
                )
            )
        elif report.batch_id:
            print(report.batch_id)
        return EXIT_OK

    return await _with_store(settings, body)


async def cmd_run(args: argparse.Namespace, settings: Settings, registry: Registry) -> int:
    from jobtui.engine.worker import Engine

    if args.type is not None and args.type not in registry:
        raise ConfigError(
            "UNKNOWN_JOB_TYPE",
            f"no handler for job type {args.type!r}; known: {', '.join(registry.names())}",
        )
    served = registry.select([args.type] if args.type else None)
    uses_workers = bool(served.worker_preload() or served.worker_warm())
    if uses_workers:
        from jobtui.engine.procpool import start_forkserver

        # Loads what the type's worker processes need (PyMuPDF ...) in the background
        # while the folder is scanned.
        start_forkserver(("jobtui.engine.procpool", *registry.worker_preload()))

    if (
        getattr(args, "concurrency", None) is None
        and "concurrency" not in settings.model_fields_set
    ):
        # A batch run wants every core busy: while one job waits on the store or
        # writes its files, another's pages are in the process pool.
        settings.concurrency = max(
            settings.concurrency, 4 * (settings.cpu_workers or os.cpu_count() or 1)
        )

    async def body(store: Store) -> int:
        engine = Engine(store, registry, settings)
        start = time.monotonic()
        # Start the CPU worker processes while the folder is scanned, and the engine
        # before enqueueing: jobs are written as files are hashed, largest first, so
        # the first documents run while the rest of the folder is still hashed.
        warming = asyncio.create_task(engine.pool().warm()) if uses_workers else None

        async def work() -> Any:
            report = await _enqueue(engine.api, args)
            if warming is not None:
                await warming
            if report.batch_id:
                await engine.wait_batch(report.batch_id)
            return report

        # SIGINT, SIGTERM (timeout, docker stop) and SIGHUP (a closed terminal) end the
        # run the same way: its running jobs go back to the queue, no attempt burned.
        work_task: asyncio.Task[Any] | None = None
        with ShutdownSignals(lambda _sig: work_task and work_task.cancel()) as signals:
            await engine.start()
            work_task = asyncio.create_task(work())
            try:
                report = await work_task
            except asyncio.CancelledError:
                if signals.received is None or not work_task.cancelled():
                    raise
            finally:
                await engine.stop(grace=0)
            if signals.received is not None and work_task.cancelled():
                print(
                    f"jobtui: {signal_name(signals.received)}: stopped; "
                    "running jobs went back to the queue",
                    file=sys.stderr,
                )
                return signals.exit_code or EXIT_JOB_FAILED
        jobs = (
            await engine.api.all_jobs(JobFilter(batch_id=report.batch_id))
            if report.batch_id
            else []
        )
        counts: dict[str, int] = {}
        for job in jobs:
            counts[job.status.value] = counts.get(job.status.value, 0) + 1
        elapsed = round(time.monotonic() - start, 3)
        if args.json:
            print(
                json.dumps(
                    {
                        "batch_id": report.batch_id,
                        "total": len(jobs),
                        "counts": counts,
                        "elapsed_s": elapsed,
                        "jobs": [j.summary() for j in jobs],
                        "duplicates": report.duplicates,
                        "skipped": report.skipped,
                    },
                    default=str,
                )
            )
        else:
            for job in jobs:
                err = f"  {job.error.code}: {job.error.message}" if job.error else ""
                print(f"{job.status.value:<10} {job.path or job.job_id}{err}")
            parts = ", ".join(f"{n} {s}" for s, n in sorted(counts.items()))
            if report.batch_id:
                print(f"batch {report.batch_id}: {len(jobs)} jobs ({parts}) in {elapsed:.2f}s")
            else:
                print(
                    "nothing new to do"
                    + (" (--force redoes files already processed)" if report.duplicates else "")
                )
        ok = all(j.status is JobStatus.COMPLETED for j in jobs)
        return EXIT_OK if ok else EXIT_JOB_FAILED

    return await _with_store(settings, body)


async def cmd_jobs(args: argparse.Namespace, settings: Settings, registry: Registry) -> int:
    from jobtui.engine.api import OperatorAPI

    async def body(store: Store) -> int:
        api = OperatorAPI(store, registry)
        flt = JobFilter(
            status=[JobStatus(s) for s in args.status] if args.status else None,
            job_type=args.job_type,
            batch_id=args.batch,
        )
        if args.limit:
            jobs = (await api.list_jobs(flt, limit=args.limit)).jobs
        else:
            jobs = await api.all_jobs(flt)
        if args.json:
            print(json.dumps([j.summary() for j in jobs], default=str))
            return EXIT_OK
        for j in jobs:
            pct = f"{j.progress.percent:5.1f}%" if j.progress else "      "
            err = j.error.code if j.error else ""
            print(
                f"{j.job_id}  {j.status.value:<10} {j.job_type:<16} {pct} "
                f"{j.attempts}/{j.max_attempts}  {err:<18} {j.path or ''}"
            )
        return EXIT_OK

    return await _with_store(settings, body, announce=not args.json)


async def cmd_steer(args: argparse.Namespace, settings: Settings, registry: Registry) -> int:
    from jobtui.engine.api import OperatorAPI

    if not args.job_ids and not args.batch:
        raise ConfigError("USAGE", f"{args.command}: give JOB_IDs or --batch BATCH_ID")

    async def body(store: Store) -> int:
        api = OperatorAPI(store, registry)
        n = 0
        for job_id in args.job_ids:
            n += await (
                api.retry_job(job_id) if args.command == "retry" else api.cancel_job(job_id)
            )
        if args.batch:
            n += await (
                api.retry_failed(args.batch)
                if args.command == "retry"
                else api.cancel_batch(args.batch)
            )
        verb = "retried" if args.command == "retry" else "cancelled (or asked to stop)"
        print(f"{n} job(s) {verb}")
        return EXIT_OK if n else EXIT_JOB_FAILED

    return await _with_store(settings, body)


async def cmd_doctor(args: argparse.Namespace, settings: Settings, registry: Registry) -> int:
    from jobtui.engine.doctor import FAIL, report, run_checks

    checks = await run_checks(settings, registry, languages=args.languages)
    if args.json:
        print(json.dumps(report(checks)))
    else:
        for check in checks:
            print(check.line())
    return EXIT_JOB_FAILED if any(c.verdict == FAIL for c in checks) else EXIT_OK


COMMANDS = {
    "doctor": cmd_doctor,
    "worker": cmd_worker,
    "enqueue": cmd_enqueue,
    "run": cmd_run,
    "jobs": cmd_jobs,
    "retry": cmd_steer,
    "cancel": cmd_steer,
    "purge": purge.cmd_purge,
}


async def _main(args: argparse.Namespace) -> int:
    settings = settings_from_args(args)
    configure_logging(
        settings.log_level or ("info" if args.command == "worker" else "warning"),
        settings.log_format,
    )
    registry = default_registry()
    if args.command is None:
        from jobtui.tui.console import run_console

        watch = bool(getattr(args, "watch", False)) or not settings.claim
        return await run_console(settings, watch=watch, registry=registry)
    return await COMMANDS[args.command](args, settings, registry)


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return asyncio.run(_main(args))
    except (ConfigError, StoreError) as exc:
        print(f"jobtui: {exc.code}: {exc.message}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    with contextlib.suppress(BrokenPipeError):
        sys.exit(main())
