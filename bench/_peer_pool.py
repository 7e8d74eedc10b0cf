"""The plain-pool contender of bench/peer_celery.py, run as a whole process:
``python _peer_pool.py FOLDER OUT WORKERS``. A ``ProcessPoolExecutor`` with one process
per core over whole documents, largest first (what a user would write by hand)."""

from __future__ import annotations

import sys
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

from _peer_task import transcribe, warm


def main() -> int:
    folder, out, workers = Path(sys.argv[1]), sys.argv[2], int(sys.argv[3])
    pdfs = sorted(
        (p for p in folder.rglob("*") if p.suffix.lower() == ".pdf" and p.is_file()),
        key=lambda p: -p.stat().st_size,
    )
    with ProcessPoolExecutor(workers, initializer=warm) as ex:
        futs = [ex.submit(transcribe, str(p.resolve()), out) for p in pdfs]
        pages = sum(max(f.result(), 0) for f in futs)
    print(pages)
    return 0


if __name__ == "__main__":
    sys.exit(main())
