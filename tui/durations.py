"""How a length of time reads, in the console and on ``jobtui run``'s progress line.

Textual-free on purpose: ``jobtui run`` imports it and never loads Textual.
"""

from __future__ import annotations


def human_duration(seconds: float | None) -> str:
    """``0.3s`` (tenths below 10 s: short jobs), ``42s``, ``3m07s``, ``2h05m``;
    ``—`` for None. Rounded to the nearest second from 10 s on (59.6 s is ``1m00s``)."""
    if seconds is None:
        return "—"
    seconds = max(0.0, seconds)
    if seconds < 9.95:  # what {:.1f} would show as 10.0 reads as 10s
        return f"{seconds:.1f}s"
    s = int(seconds + 0.5)
    if s < 60:
        return f"{s}s"
    if s < 3600:
        return f"{s // 60}m{s % 60:02d}s"
    return f"{s // 3600}h{s % 3600 // 60:02d}m"
