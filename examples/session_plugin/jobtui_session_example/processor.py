"""A stand-in for the seed's ``SessionProcessor``: synchronous and blocking.

The real one downloads a session's video, transcribes and translates it and writes
Markdown; this one only pretends to, in steps, reporting progress through the
callback as the seed's processor does. Replace it with your own.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

ProgressCallback = Callable[[float, str], None]


class SessionProcessor:
    #: seconds each step blocks (the tests set 0)
    step_seconds = 0.05

    def __init__(self, process_id: str) -> None:
        self.process_id = process_id

    def process_session(
        self,
        *,
        event: str,
        session: str,
        progress_callback: ProgressCallback | None = None,
        **fields: Any,
    ) -> dict[str, Any]:
        steps = ["download", "transcribe", "translate", "markdown"]
        for i, step in enumerate(steps):
            if progress_callback is not None:
                progress_callback(100.0 * i / len(steps), step)
            time.sleep(self.step_seconds)  # the blocking work
        if progress_callback is not None:
            progress_callback(100.0, "done")
        return {
            "markdown_file": f"{event}/{session}.md",
            "target_language": fields.get("target_language", "de"),
            "process_id": self.process_id,
        }
