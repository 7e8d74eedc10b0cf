"""Imported by the fork server that CPU worker processes start from: imports the
modules every registered job type asks its worker processes to preload
(``JobType.worker_preload``), so each forked process has them at no cost.

Used when the server starts before an engine exists (the ``jobtui`` command starts it
first thing, so its imports overlap with the command's own); an engine that starts it
passes its registry's list directly.
"""

from __future__ import annotations

import importlib
import logging

from jobtui.engine.registry import default_registry

log = logging.getLogger(__name__)

for _name in default_registry().worker_preload():
    try:
        importlib.import_module(_name)
    except ImportError:  # the process imports it (or fails visibly) when a task needs it
        log.warning("cannot preload %s for the CPU worker processes", _name)
