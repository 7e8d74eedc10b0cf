"""Starting the fork server that CPU worker processes are forked from.

Apart from ``procpool`` (which imports asyncio and the pool machinery) so that the
``jobtui`` command can start the server first thing, before any heavy import: the
server's own imports (``DEFAULT_PRELOAD``) then overlap with the command's.
"""

from __future__ import annotations

import os
from collections.abc import Sequence

# Imported by the fork server, so every worker process (a recycled one too) starts with
# them loaded: ``procpool`` (the worker loop), and ``jobtui.engine.preload``, which
# imports what the registered job types declare (``JobType.worker_preload``: their
# worker-side modules and heavy libraries). A worker then starts in milliseconds.
# An engine passes its own registry's list instead; whichever starts the server first
# decides (the ``jobtui`` command starts it early, before the engine is imported).
DEFAULT_PRELOAD = ("jobtui.engine.procpool", "jobtui.engine.preload")

# One OpenMP thread per worker process (Tesseract built with OpenMP, as Debian's is,
# numpy's and onnxruntime's kernels): the pool already runs one process per core, and
# a second thread each only makes them fight for the cores. OpenMP reads it when its
# library loads, so it is in the fork server's environment (for what it preloads) and
# set again in each worker (``procpool._serve``). An operator's own value is kept.
WORKER_ENV = {"OMP_THREAD_LIMIT": "1"}


def start_forkserver(preload: Sequence[str] = DEFAULT_PRELOAD) -> None:
    """Start the fork server that worker processes are forked from, importing
    ``preload`` there (and not the main module, which it would import by default).
    Returns at once; the server loads in the background. No-op if it runs already."""
    from multiprocessing import forkserver

    forkserver.set_forkserver_preload(list(preload))
    added = [k for k in WORKER_ENV if k not in os.environ]
    os.environ.update({k: WORKER_ENV[k] for k in added})  # inherited by the server
    try:
        forkserver.ensure_running()
    finally:
        for k in added:  # not this process's own setting
            os.environ.pop(k, None)
