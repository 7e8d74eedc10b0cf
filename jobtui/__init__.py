"""jobtui: a generic job engine (``jobtui.engine``) with a Textual operator console
(``jobtui.tui``) and its themes (``jobtui.themes``).

The repository keeps ``engine/``, ``tui/`` and ``themes/`` at its top; they install
under this one name (see ``[tool.setuptools]`` in pyproject.toml).
"""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("jobtui")
except PackageNotFoundError:  # a source checkout that is not installed
    __version__ = "0.0.0+source"
