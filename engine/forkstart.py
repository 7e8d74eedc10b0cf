"""Starting the fork server that CPU worker processes are forked from.

Apart from ``procpool`` (which imports asyncio and the pool machinery) so that the
``jobtui`` command can start the server first thing, before any heavy import: the
server's own imports (``DEFAULT_PRELOAD``) then overlap with the command's.
"""

from __future__ import annotations

from collections.abc import Sequence

# Imported by the fork server, so every worker process (a recycled one too) starts with
# them loaded: ``procpool`` (the worker loop), and ``jobtui.engine.preload``, which
# imports what the registered job types declare (``JobType.worker_preload``: their
# worker-side modules and heavy libraries). A worker then starts in milliseconds.
# An engine passes its own registry's list instead; whichever starts the server first
# decides (the ``jobtui`` command starts it early, before the engine is imported).
DEFAULT_PRELOAD = ("jobtui.engine.procpool", "jobtui.engine.preload")


def start_forkserver(preload: Sequence[str] = DEFAULT_PRELOAD) -> None:
    """Start the fork server that worker processes are forked from, importing
    ``preload`` there (and not the main module, which it would import by default).
    Returns at once; the server loads in the background. No-op if it runs already."""
    from multiprocessing import forkserver

    forkserver.set_forkserver_preload(list(preload))
    forkserver.ensure_running()
