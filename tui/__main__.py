"""``python -m jobtui.tui``: the ``jobtui`` command."""

import contextlib
import sys

from jobtui.tui.launch import main

with contextlib.suppress(BrokenPipeError):
    sys.exit(main())
