"""The ``jobtui`` command's entry point: starts the server that CPU worker processes
are forked from before the heavy imports, when the command will need it, and ends
those commands without tearing the interpreter down.

``jobtui run`` spends ~0.4 s importing pydantic and the engine before it could start
its workers; the fork server loading what the registered job types preload (PyMuPDF
for the PDF and image types, ~0.3 s; ``jobtui.engine.preload``) overlaps with that
here, so the first document starts sooner. Everything else is ``jobtui.tui.cli.main``.
"""

from __future__ import annotations

import atexit
import contextlib
import os
import sys
import threading
from typing import NoReturn

WORKER_COMMANDS = {"run", "worker"}


def needs_workers(argv: list[str]) -> bool:
    """Whether the command line runs jobs' CPU work in this process (``run``, ``worker``)."""
    if any(a in ("-h", "--help") for a in argv):
        return False
    return any(a in WORKER_COMMANDS for a in argv)


def exit_now(code: int) -> NoReturn:
    """End the process with ``code`` once everything it wrote is out, skipping the
    interpreter's teardown (freeing every module and object one by one: 0.10-0.3 s
    measured after ``jobtui run``, on a busy 2-core machine).

    Only what the teardown does for others is done first, in the interpreter's own
    order: non-daemon threads are joined (``threading._shutdown``, which also ends idle
    executor threads), then the ``atexit`` functions run (multiprocessing's joins
    child processes and removes its temporary folder; logging's flushes its
    handlers), then stdout and stderr are flushed. The store was closed by the
    command (every write committed) and outputs are written before a job completes.
    """
    try:
        shutdown = getattr(threading, "_shutdown", None)
        if shutdown is not None:
            shutdown()
        atexit._run_exitfuncs()
    finally:
        for stream in (sys.stdout, sys.stderr):
            with contextlib.suppress(Exception):  # a closed pipe: nothing more to say
                stream.flush()
        os._exit(code)


def main() -> int:
    workers = needs_workers(sys.argv[1:])
    if workers:
        from jobtui.engine.forkstart import start_forkserver

        start_forkserver()
    from jobtui.tui.cli import main as cli_main

    code = cli_main()
    if workers:
        exit_now(code)
    return code


if __name__ == "__main__":
    sys.exit(main())
