"""The ``jobtui`` command's entry point: starts the server that CPU worker processes
are forked from before the heavy imports, when the command will need it.

``jobtui run`` spends ~0.4 s importing pydantic and the engine before it could start
its workers; the fork server loading what the registered job types preload (PyMuPDF
for the PDF and image types, ~0.3 s; ``jobtui.engine.preload``) overlaps with that
here, so the first document starts sooner. Everything else is ``jobtui.tui.cli.main``.
"""

from __future__ import annotations

import sys

WORKER_COMMANDS = {"run", "worker"}


def needs_workers(argv: list[str]) -> bool:
    """Whether the command line runs jobs' CPU work in this process (``run``, ``worker``)."""
    if any(a in ("-h", "--help") for a in argv):
        return False
    return any(a in WORKER_COMMANDS for a in argv)


def main() -> int:
    if needs_workers(sys.argv[1:]):
        from jobtui.engine.forkstart import start_forkserver

        start_forkserver()
    from jobtui.tui.cli import main as cli_main

    return cli_main()


if __name__ == "__main__":
    sys.exit(main())
