"""The console's bundled themes, as data files (installed as ``jobtui.themes``)."""
