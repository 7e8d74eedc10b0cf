"""jobtui's job engine: registry, store, worker, watchdog and operator API.

This package never imports textual or rich (a test checks it), so it runs headless.
"""
