"""``python -m tui``: the ``jobtui`` command."""

import contextlib
import sys

from tui.launch import main

with contextlib.suppress(BrokenPipeError):
    sys.exit(main())
