"""``jobtui purge``: delete finished jobs older than a period, with their log lines.

    jobtui purge --older-than 30d --status completed --dry-run
    jobtui purge --older-than 90d --status failed --status cancelled --yes
    jobtui purge --dry-run        # what the configured retention would delete now

Without ``--yes`` (and not ``--dry-run``) it counts first, prints the counts and asks
on a terminal; without a terminal it refuses (exit 2) rather than delete unasked.
The cutoff is taken once, so the counts shown are what the confirmed run deletes
(unless jobs change in between). Usage errors are ``ConfigError("USAGE")``: exit 2,
``jobtui: USAGE: message``.
"""

from __future__ import annotations

import argparse
import re
import sys
from collections.abc import Callable
from datetime import datetime, timedelta

from jobtui.engine.api import PurgeResult, connect, short_id
from jobtui.engine.config import Settings
from jobtui.engine.errors import ConfigError
from jobtui.engine.models import JobStatus, utcnow
from jobtui.engine.registry import Registry

_UNITS = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days", "w": "weeks"}
_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([smhdw])\s*$")


def parse_duration(text: str) -> timedelta:
    """``30d``, ``12h``, ``90m``, ``2w`` (also ``s``) -> timedelta; > 0 or ``USAGE``."""
    m = _DURATION.match(text or "")
    if not m or float(m.group(1)) <= 0:
        raise ConfigError(
            "USAGE", f"--older-than expects a duration like 30d, 12h, 90m or 2w, got {text!r}"
        )
    return timedelta(**{_UNITS[m.group(2)]: float(m.group(1))})


def add_parser(
    sub: argparse._SubParsersAction[argparse.ArgumentParser],
    add_store_options: Callable[..., None],
) -> None:
    p = sub.add_parser("purge", help="delete finished jobs (and their logs) older than a period")
    p.add_argument(
        "--older-than",
        metavar="AGE",
        help="finished longer ago than this: 30d, 12h, 90m, 2w",
    )
    p.add_argument(
        "--status",
        action="append",
        dest="statuses",
        choices=[s.value for s in JobStatus],
        metavar="STATUS",
        help="completed, failed or cancelled (repeatable)",
    )
    p.add_argument("--batch", help="only jobs of this batch")
    p.add_argument("--dry-run", action="store_true", help="count what would go; delete nothing")
    p.add_argument("--yes", action="store_true", help="delete without asking")
    add_store_options(p)


def _describe(result: PurgeResult) -> str:
    return f"{result.jobs} jobs, {result.logs} log lines, {result.batches} batches"


def _confirm(question: str) -> bool:
    print(question, end=" ", file=sys.stderr, flush=True)
    return sys.stdin.readline().strip().lower() in {"y", "yes"}


async def _retention_dry_run(settings: Settings, registry: Registry) -> int:
    """``purge --dry-run`` alone: what the configured retention's next sweep deletes."""
    api = await connect(settings, registry)
    try:
        policy, counted = await api.retention_preview(settings)
        print(f"retention on {api.description}: {policy}")
        print(f"would delete {_describe(counted)} now")
        return 0
    finally:
        await api.close()


async def cmd_purge(args: argparse.Namespace, settings: Settings, registry: Registry) -> int:
    if args.older_than is None and not args.statuses and args.dry_run and not args.batch:
        return await _retention_dry_run(settings, registry)
    if args.older_than is None or not args.statuses:
        raise ConfigError(
            "USAGE",
            "purge needs --older-than AGE and --status STATUS "
            "(or --dry-run alone, to count what retention would delete)",
        )
    age = parse_duration(args.older_than)
    statuses = [JobStatus(s) for s in args.statuses]
    live = [s.value for s in statuses if not s.terminal]
    if live:
        raise ConfigError(
            "USAGE",
            f"purge deletes finished jobs only (completed, failed, "
            f"cancelled), not {', '.join(live)}",
        )
    if not (args.dry_run or args.yes or sys.stdin.isatty()):
        raise ConfigError(
            "USAGE",
            "purge deletes jobs: without a terminal to confirm on, "
            "pass --yes (or --dry-run to only count)",
        )
    cutoff: datetime = utcnow() - age
    which = "/".join(s.value for s in statuses)
    api = await connect(settings, registry)
    try:
        if args.batch:  # a unique prefix is enough, as everywhere an id is asked for
            args.batch = (await api.resolve_id(args.batch, kinds=("batch",))).id
        scope = f"{which} jobs finished before {cutoff:%Y-%m-%d %H:%M} UTC" + (
            f" in batch {short_id(args.batch)}" if args.batch else ""
        )

        async def purge(dry_run: bool) -> PurgeResult:
            return await api.purge(
                older_than=cutoff, statuses=statuses, batch_id=args.batch, dry_run=dry_run
            )

        if args.dry_run or not args.yes:
            counted = await purge(True)
            print(f"would delete {_describe(counted)} ({scope})")
            if args.dry_run:
                return 0
            if counted.jobs == 0 and counted.batches == 0:
                return 0
            if not _confirm(f"delete {_describe(counted)}? [y/N]"):
                print("nothing deleted")
                return 1
        deleted = await purge(False)
        print(f"deleted {_describe(deleted)} ({scope})")
        if deleted.note:
            print(deleted.note)
        return 0
    finally:
        await api.close()
