"""What the page-by-page processors share (``pdf.*``, ``image.ocr``): output names,
how many parts to cut work into, running parts on the engine's process pool with
progress and cancel, and logging the pages that failed.

Runs on the event loop's side (handlers), never in the worker processes.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
from collections.abc import Callable, Iterator, Sequence
from typing import Any

from jobtui.engine.context import JobContext
from jobtui.engine.errors import JobCancelled, JobFailed
from jobtui.engine.inputs import InputFile
from jobtui.engine.outputs import output_base


@contextlib.contextmanager
def named_errors(src: InputFile) -> Iterator[None]:
    """Workers read the pinned file (``/proc/PID/fd/N`` under input roots): their
    errors name the input as the job did instead."""
    try:
        yield
    except JobFailed as exc:
        read, name = src.read_path, str(src.path)
        if read == name:
            raise
        details = {k: (name if v == read else v) for k, v in (exc.details or {}).items()}
        raise JobFailed(
            exc.code, exc.message.replace(read, name), details, retryable=exc.retryable
        ) from None


def note_changed(ctx: JobContext, path: str, enqueued: str | None, current: str) -> None:
    """Warn when the file's content is not what was enqueued (it is processed as is)."""
    if enqueued and enqueued != current:
        ctx.log(
            f"{path} changed since it was enqueued (sha256 {enqueued[:12]} -> "
            f"{current[:12]}); processing the current content",
            "warning",
        )


def output_stem(path: str, sha256: str) -> str:
    """``<stem>-<sha256[:12]>``: readable, and distinct for distinct contents."""
    return f"{output_base(path)}-{sha256[:12]}"


def cores(ctx: JobContext | None = None) -> int:
    """How many processes the engine's pool runs (its ``cpu_workers``, else the cores)."""
    settings = getattr(ctx, "settings", None)
    workers = (
        settings.get("cpu_workers")
        if isinstance(settings, dict)
        else getattr(settings, "cpu_workers", None)
    )
    if isinstance(workers, int) and workers > 0:
        return workers
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


async def run_parts(
    ctx: JobContext,
    fn: Callable[..., list[dict[str, Any]]],
    path: str,
    ranges: Sequence[tuple[int, int]],
    opts: dict[str, Any],
    step: str,
) -> list[dict[str, Any]]:
    """``run_part_results`` for a ``fn`` that returns one record per page: the records
    of every range, in page order."""
    results = await run_part_results(ctx, fn, path, ranges, opts, step)
    return [rec for part in results for rec in (part or [])]


async def run_part_results(
    ctx: JobContext,
    fn: Callable[..., Any],
    path: str,
    ranges: Sequence[tuple[int, int]],
    opts: dict[str, Any],
    step: str,
) -> list[Any]:
    """Run ``fn(path, start, stop, opts)`` for every range at once; what each returned,
    in the order of ``ranges``.

    Progress is reported as parts finish. A cancel (task cancellation or
    ``ctx.cancel_event``) cancels every part still running; the pool kills their
    processes, and this returns only after they are gone.
    """
    total = sum(b - a for a, b in ranges)
    if len(ranges) > 1:
        most = max(b - a for a, b in ranges)
        size = "one page each" if most == 1 else f"up to {most} pages"
        ctx.log(f"{step}: {total} pages in {len(ranges)} parts of {size}")
    tasks = [asyncio.ensure_future(ctx.run_cpu(fn, path, a, b, opts)) for a, b in ranges]
    index: dict[asyncio.Future[Any], int] = {t: i for i, t in enumerate(tasks)}
    # Parts report here as they end: waiting on all pending parts each time one ends
    # would cost the square of their number (a scanned document has a part per page).
    ended: asyncio.Queue[asyncio.Future[Any]] = asyncio.Queue()
    for t in tasks:
        t.add_done_callback(ended.put_nowait)
    cancel_wait = asyncio.ensure_future(ctx.cancel_event.wait())
    results: list[Any] = [None] * len(tasks)
    done_pages = 0
    left = len(tasks)
    try:
        while left:
            done: list[asyncio.Future[Any]] = []
            if ended.empty():
                get = asyncio.ensure_future(ended.get())
                try:
                    await asyncio.wait({get, cancel_wait}, return_when=asyncio.FIRST_COMPLETED)
                finally:
                    if not get.done():
                        get.cancel()  # nothing is lost: a cancelled get takes no item
                if not get.done() or get.cancelled():
                    raise JobCancelled(ctx.job_id)  # the cancel event came first
                done.append(get.result())
            while not ended.empty():  # every part that ended meanwhile, at once
                done.append(ended.get_nowait())
            if cancel_wait.done():
                raise JobCancelled(ctx.job_id)
            left -= len(done)
            for part in done:
                i = index[part]
                results[i] = part.result()  # a part's JobFailed ends the job here
                done_pages += ranges[i][1] - ranges[i][0]
            ctx.check_cancelled()
            await ctx.progress(
                100.0 * done_pages / total,
                step,
                f"{done_pages}/{total} pages",
                done=done_pages,
                total=total,
                unit="pages",
            )
    finally:
        cancel_wait.cancel()
        for t in tasks:
            t.cancel()
        # Wait for cancelled parts: their processes are killed before we return.
        await asyncio.gather(*tasks, cancel_wait, return_exceptions=True)
    return results


def page_list(pages: Sequence[int], limit: int = 20) -> str:
    shown = ", ".join(str(p) for p in pages[:limit])
    return shown + (f" and {len(pages) - limit} more" if len(pages) > limit else "")


def log_page_errors(ctx: JobContext, records: list[dict[str, Any]]) -> list[int]:
    """Log the pages that failed (the first 20) and the pages drawn at a lower dpi
    than asked, to stay within the per-page pixel cap; return the failed pages."""
    lowered = [r for r in records if r.get("dpi_lowered")]
    for r in lowered[:20]:
        asked, used = r["dpi_lowered"]
        ctx.log(
            f"page {r['page']}: drawn at {used} dpi instead of {asked} (too large at "
            f"{asked} dpi for the per-page pixel cap)",
            "warning",
        )
    failed = [r["page"] for r in records if r.get("error")]
    for r in [r for r in records if r.get("error")][:20]:
        ctx.log(f"page {r['page']}: {r['error']}", "warning")
    if len(failed) > 20:
        ctx.log(f"... {len(failed) - 20} more pages failed", "warning")
    return failed
