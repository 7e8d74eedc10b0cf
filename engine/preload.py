"""Imported by the fork server that CPU worker processes start from: imports the
modules every registered job type asks its worker processes to preload
(``JobType.worker_preload``), so each forked process has them at no cost.

Used when the server starts before an engine exists (the ``jobtui`` command starts it
first thing, so its imports overlap with the command's own); an engine that starts it
passes its registry's list directly.

Building the registry here would import pydantic and every handler module (~0.3 s)
before the server can fork its first worker, which the first document then waits
for. So the list the last run's registry declared is read from a small cache file
(``preload_cache``, written by the command's own process, which builds the registry
anyway); the registry is built here only when there is none. A stale list is
harmless: a module no longer there is skipped with a warning, one not yet listed is
imported by the worker that first needs it, and the command rewrites the list at once.
"""

from __future__ import annotations

import importlib
import logging

from jobtui.engine.preload_cache import remembered

log = logging.getLogger(__name__)

_names = remembered()
if _names is None:
    from jobtui.engine.registry import default_registry

    _names = list(default_registry().worker_preload())
for _name in _names:
    try:
        importlib.import_module(_name)
    except ImportError:  # the process imports it (or fails visibly) when a task needs it
        log.warning("cannot preload %s for the CPU worker processes", _name)
