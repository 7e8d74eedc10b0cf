"""The one unit of work that bench/peer_celery.py gives each contender: transcribe one
PDF (every page's text, OCR where a page has images but no text, as ``pdf.transcribe``
does) and write the page texts to ``OUT/<sha1 of the path>.json``.

Imported by the Celery worker (``celery -A _peer_task worker``) and by the plain pool
script, so both run exactly this code. The broker and result backend come from
``PEER_REDIS_URL``.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path


def out_name(path: str) -> str:
    return hashlib.sha1(path.encode("utf-8", "surrogateescape")).hexdigest() + ".json"


def transcribe(path: str, out_dir: str, languages: str = "deu+eng", dpi: int = 300) -> int:
    """Write the page texts of ``path`` into ``out_dir``; return the page count (-1: bad)."""
    import pymupdf

    try:
        doc = pymupdf.open(path)
        pages = []
        for page in doc:
            text = page.get_text()
            if not text.strip() and page.get_images():
                text = page.get_text(
                    textpage=page.get_textpage_ocr(language=languages, dpi=dpi, full=True)
                )
            pages.append(text)
    except Exception:  # noqa: BLE001 - a bad file is counted as such, like the engine does
        return -1
    target = Path(out_dir) / out_name(path)
    target.write_text(json.dumps({"path": path, "pages": pages}), encoding="utf-8")
    return len(pages)


def warm() -> None:
    import pymupdf  # noqa: F401


# -- the Celery side (only when Celery is importable: the pool script does not need it) --

try:
    from celery import Celery
    from celery.signals import worker_process_init
except ImportError:  # pragma: no cover - peer_celery.py says what to install
    app = None
else:
    app = Celery(
        "peer",
        broker=os.environ.get("PEER_REDIS_URL", "redis://127.0.0.1:6379/0"),
        backend=os.environ.get("PEER_REDIS_URL", "redis://127.0.0.1:6379/0"),
    )
    # What a tuned production deployment of long-running document tasks would set: one
    # task prefetched per process (the default of 4 starves other processes at the end
    # of a folder), acks after the task, no rate limits.
    app.conf.update(
        worker_prefetch_multiplier=1,
        task_acks_late=True,
        worker_disable_rate_limits=True,
        result_expires=600,
        broker_connection_retry_on_startup=True,
    )
    app.task(name="peer.transcribe")(transcribe)
    worker_process_init.connect(lambda **_: warm(), weak=False)
