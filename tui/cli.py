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
import sys
from typing import Any

from jobtui.engine.api import (
    DOCTOR_FAIL,
    OperatorAPI,
    StoreError,
    doctor_report,
    local_engine,
    run_doctor,
    short_id,
)
from jobtui.engine.config import Settings, load_settings
from jobtui.engine.errors import ConfigError
from jobtui.engine.logsetup import LEVELS as LOG_LEVELS
from jobtui.engine.logsetup import configure as configure_logging
from jobtui.engine.logsetup import status
from jobtui.engine.registry import Registry, default_registry
from jobtui.engine.signals import ShutdownSignals
from jobtui.tui import commands_query, models_cli, purge
from jobtui.tui.cli_common import (
    AUTO,
    EXIT_JOB_FAILED,
    EXIT_OK,
    EXIT_USAGE,
    check_enqueue_args,
    check_store_folder,
    scan_progress,
    with_api,
)
from jobtui.tui.commands_run import add_run_options, cmd_run

__all__ = ["EXIT_JOB_FAILED", "EXIT_OK", "EXIT_USAGE", "build_parser", "main"]


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
    _add_log_options(p, sub)


def _add_log_options(p: argparse.ArgumentParser, sub: bool = True) -> None:
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
    g.add_argument(
        "--types", nargs="+", metavar="GLOB", help="job types to serve (globs, e.g. 'image.*')"
    )
    g.add_argument("--lease-seconds", type=float, help="lease length (default 12)")
    g.add_argument("--poll-interval", type=float, help="seconds between polls (default 2)")
    g.add_argument("--cpu-workers", type=int, help="CPU worker processes (default: cores)")
    g.add_argument(
        "--input-root",
        action="append",
        dest="input_roots",
        metavar="DIR",
        help="read job input only under DIR (repeatable; also JOBTUI_INPUT_ROOTS)",
    )


class _Unbuilt:
    """Stands in for the parser of a command the command line does not name: its
    options are not built (argparse would build them only to throw them away)."""

    def __getattr__(self, name: str) -> Any:
        return lambda *args, **kwargs: self


class _Commands:
    """The subparsers action as the ``add_parser`` functions of the commands see it:
    every command gets its name and help line (``jobtui --help`` lists them all); only
    those ``named`` (None: all) get their options."""

    def __init__(self, action: Any, named: set[str] | None) -> None:
        self._action, self._named = action, named

    def add_parser(self, name: str, **kwargs: Any) -> Any:
        parser = self._action.add_parser(name, **kwargs)
        return parser if self._named is None or name in self._named else _Unbuilt()


def build_parser(named: set[str] | None = None) -> argparse.ArgumentParser:
    """The whole command line; with ``named`` (the words of a command line), only the
    commands among them get their options: argparse picks a command by its exact
    name, so the one it picks is always built."""
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
    sub: Any = _Commands(parser.add_subparsers(dest="command", metavar="COMMAND"), named)

    p = sub.add_parser("worker", help="run the engine headless until SIGINT, SIGTERM or SIGHUP")
    _add_store_options(p)
    _add_engine_options(p)

    for name, hlp in (
        ("enqueue", "enqueue files and folders as one batch; prints its id"),
        ("run", "make sure these files are processed, here, into --output; summarise"),
    ):
        p = sub.add_parser(name, help=hlp)
        p.add_argument("paths", nargs="+", metavar="PATH")
        p.add_argument(
            "--type",
            default=AUTO,
            help=f"job type for every file (default {AUTO}: each file under the job type "
            "that declares its kind; files no type takes are skipped)",
        )
        p.add_argument(
            "--param",
            action="append",
            default=[],
            metavar="KEY=VALUE",
            help="job parameter (JSON value or string), repeatable; checked before anything "
            "is written",
        )
        p.add_argument("--force", action="store_true", help="redo files already processed")
        p.add_argument("--no-recursive", action="store_true", help="do not descend into folders")
        p.add_argument("--name", help="batch name")
        p.add_argument("--json", action="store_true", help="print one JSON object")
        _add_store_options(p)
        if name == "run":
            add_run_options(p)
            _add_engine_options(p)

    commands_query.add_parsers(sub, _add_store_options)

    p = sub.add_parser("doctor", help="check the setup; one line per check with the fix")
    p.add_argument(
        "--languages",
        metavar="LANGS",
        help="OCR languages the job types' checks expect "
        "(tesseract's deu+eng form; default: deu+eng)",
    )
    p.add_argument("--json", action="store_true", help="print one JSON object")
    _add_store_options(p)
    _add_engine_options(p)
    purge.add_parser(sub, _add_store_options)
    models_cli.add_parser(sub)
    _log_options_everywhere(parser)
    return parser


def _log_options_everywhere(parser: argparse.ArgumentParser) -> None:
    """Every command, however deep (``models pull``), takes --log-level/--log-format:
    added here to any subcommand whose module did not, so a new command cannot miss them."""
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for p in action.choices.values():
                if len(p._actions) <= 1:  # only -h: a command not built (_Unbuilt)
                    continue
                if "--log-level" not in p._option_string_actions:
                    _add_log_options(p)
                _log_options_everywhere(p)


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


async def cmd_worker(args: argparse.Namespace, settings: Settings, registry: Registry) -> int:
    if not settings.claim:  # session_worker.active: false / JOBTUI_CLAIM=false
        raise ConfigError(
            "CLAIMING_OFF",
            "claiming is switched off (session_worker.active: false, jobtui.claim: false "
            "or JOBTUI_CLAIM=false): this worker would claim nothing; set jobtui.claim: "
            "true (it beats the seed's key) or JOBTUI_CLAIM=true to run it",
        )

    async def body(api: OperatorAPI) -> int:
        engine = local_engine(api, settings)
        stop = asyncio.Event()
        # SIGINT, SIGTERM (docker stop) and SIGHUP all stop gracefully; a second exits.
        with ShutdownSignals(lambda _sig: stop.set()):
            await engine.start()
            status(f"worker {engine.worker_id} serving {', '.join(engine.registry.names())}")
            waits = [asyncio.create_task(stop.wait()), asyncio.create_task(engine.failed.wait())]
            await asyncio.wait(waits, return_when=asyncio.FIRST_COMPLETED)
            for w in waits:
                w.cancel()
            if engine.fatal is not None:  # e.g. STORE_REPLACED: nothing left to hand back
                await engine.stop(grace=0)
                raise engine.fatal
            status(
                f"running jobs get {settings.shutdown_grace:.0f}s to finish, "
                "then go back to the queue"
            )
            await engine.stop()
        return EXIT_OK

    return await with_api(settings, registry, body)


async def cmd_enqueue(args: argparse.Namespace, settings: Settings, registry: Registry) -> int:
    job_type, params = check_enqueue_args(args, registry)

    async def body(api: OperatorAPI) -> int:
        report = await api.enqueue_paths(
            args.paths,
            job_type=job_type,  # None (auto): each file under the type declaring it
            parameters=params,
            force=args.force,
            recursive=not args.no_recursive,
            batch_name=args.name,
            on_progress=scan_progress(args.json),
        )
        status(report.summary_line())
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
            print(short_id(report.batch_id))
        return EXIT_OK

    return await with_api(settings, registry, body)


async def cmd_doctor(args: argparse.Namespace, settings: Settings, registry: Registry) -> int:
    checks = await run_doctor(settings, registry, languages=args.languages)
    if args.json:
        print(json.dumps(doctor_report(checks)))
    else:
        for check in checks:
            print(check.line())
    return EXIT_JOB_FAILED if any(c.verdict == DOCTOR_FAIL for c in checks) else EXIT_OK


COMMANDS = {
    "doctor": cmd_doctor,
    "worker": cmd_worker,
    "enqueue": cmd_enqueue,
    "run": cmd_run,
    "jobs": commands_query.cmd_jobs,
    "batches": commands_query.cmd_batches,
    "show": commands_query.cmd_show,
    "retry": commands_query.cmd_steer,
    "cancel": commands_query.cmd_steer,
    "purge": purge.cmd_purge,
    "models": models_cli.cmd_models,
}


async def _main(args: argparse.Namespace) -> int:
    settings = settings_from_args(args)
    configure_logging(
        settings.log_level or ("info" if args.command == "worker" else "warning"),
        settings.log_format,
    )
    if args.command != "doctor":  # doctor reports on the store itself, as one of its checks
        check_store_folder(settings)  # before anything opens (and so creates) a store
    registry = default_registry()
    if args.command is None:
        from jobtui.tui.console import run_console

        watch = bool(getattr(args, "watch", False)) or not settings.claim
        return await run_console(settings, watch=watch, registry=registry)
    return await COMMANDS[args.command](args, settings, registry)


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    parser = build_parser(named=set(argv))
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
