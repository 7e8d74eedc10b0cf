"""jobtui: a generic job engine (``jobtui.engine``) with a Textual operator console
(``jobtui.tui``) and its themes (``jobtui.themes``).

The repository keeps ``engine/``, ``tui/`` and ``themes/`` at its top; they install
under this one name (see ``[tool.setuptools]`` in pyproject.toml).
"""

from __future__ import annotations

from typing import Any


def __getattr__(name: str) -> Any:
    # ``__version__`` is looked up on first use: importlib.metadata costs ~20 ms, and
    # every ``jobtui`` command imports this package before it starts its fork server.
    if name != "__version__":
        raise AttributeError(f"module 'jobtui' has no attribute {name!r}")
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("jobtui")
    except PackageNotFoundError:  # a source checkout that is not installed
        return "0.0.0+source"
