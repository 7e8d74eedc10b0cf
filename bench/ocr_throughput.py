"""Scanned PDFs: the engine's OCR against a plain pool that OCRs pages in parallel.

The inputs are image-only PDFs made from real text PDFs: every page of the sources
(SRC: a folder, default ``examples/pdfs`` plus generated text pages) is rendered at
200 dpi (grey) into a new PDF, one image per page, no text layer. Then, in one run,
alternating rounds:

(a) ``pool``: a ``ProcessPoolExecutor`` with one process per core (``OMP_THREAD_LIMIT=1``,
    PyMuPDF imported in its initializer), one task per page: open the document, OCR
    the page as ``pdf.transcribe`` does (``get_textpage_ocr(language, dpi=300,
    full=True)``), its text. Timed from creating the pool to the last page.
(b) ``engine``: ``jobtui run DIR --json`` as a subprocess on a fresh embedded store, all
    cores, timed from start to exit.

Per-page text must be identical in (a) and (b). Peak RSS per process: (a) from each
worker's ``ru_maxrss``; (b) the highest ``VmHWM`` of the engine's worker processes
(sampled from /proc every 50 ms; the peak is a high-water mark, so only growth in a
process's last 50 ms can be missed; new processes are looked for every 250 ms, from
``/proc/PID/task/TID/children``, which costs the engine's side little CPU) and of its
main process.

Target (issue 15): engine/pool <= 1.05 on a scanned folder; peak RSS per worker bounded
(each worker OCRs one page at a time; a page is capped at ``MAX_OCR_PIXELS``). Best of
``--rounds`` rounds counts. Last line: one JSON object.

    python bench/ocr_throughput.py [SRC] [--docs 6] [--pages 24] [--rounds 2]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(Path(__file__).resolve().parent))

from pdf_throughput import compile_project, generate  # noqa: E402  (a sibling bench script)

LANGUAGES, OCR_DPI, SCAN_DPI = "deu+eng", 300, 200


# -- inputs --------------------------------------------------------------------------


def source_pages(src: Path, want: int) -> list[tuple[Path, int]]:
    import pymupdf

    pages = []
    for pdf in sorted(src.rglob("*.pdf")):
        with pymupdf.open(pdf) as doc:
            for i, page in enumerate(doc):
                if page.get_text().strip():  # real text to recognise
                    pages.append((pdf, i))
    if not pages:
        raise SystemExit(f"no text pages in {src}")
    return [pages[i % len(pages)] for i in range(want)]


def make_scans(src: Path, out: Path, docs: int, pages: int) -> list[Path]:
    """``docs`` image-only PDFs, ``pages`` pages in all, uneven sizes (like a folder)."""
    import pymupdf

    picks = source_pages(src, pages)
    # Uneven: the first document gets about a third of the pages, the rest share.
    sizes = [max(1, pages // 3)]
    rest = pages - sizes[0]
    sizes += [rest // (docs - 1) + (1 if i < rest % (docs - 1) else 0) for i in range(docs - 1)]
    out.mkdir(parents=True, exist_ok=True)
    made, k = [], 0
    for d, size in enumerate(s for s in sizes if s > 0):
        scan = pymupdf.open()
        for _ in range(size):
            path, index = picks[k]
            k += 1
            with pymupdf.open(path) as doc:
                page = doc[index]
                pix = page.get_pixmap(dpi=SCAN_DPI, colorspace=pymupdf.csGRAY)
                new = scan.new_page(width=page.rect.width, height=page.rect.height)
                new.insert_image(new.rect, stream=pix.tobytes("png"))
        target = out / f"scan-{d:02d}.pdf"
        scan.save(target, garbage=1, deflate=True)
        made.append(target)
    return made


# -- (a) a plain page-parallel pool --------------------------------------------------


def _warm() -> None:
    import pymupdf  # noqa: F401


def _ocr_page(path: str, index: int) -> tuple[str, int, str, int]:
    import pymupdf

    with pymupdf.open(path) as doc:
        page = doc[index]
        tp = page.get_textpage_ocr(language=LANGUAGES, dpi=OCR_DPI, full=True)
        text = page.get_text(textpage=tp)
    return path, index, text, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def run_pool(pdfs: list[Path], workers: int) -> tuple[float, dict[str, list[str]], int]:
    import pymupdf

    tasks = []
    for p in sorted(pdfs, key=lambda p: -p.stat().st_size):  # largest first
        with pymupdf.open(p) as doc:
            tasks += [(str(p.resolve()), i) for i in range(doc.page_count)]
    os.environ["OMP_THREAD_LIMIT"] = "1"  # inherited by the pool's processes
    t0 = time.perf_counter()
    with ProcessPoolExecutor(workers, initializer=_warm) as ex:
        results = list(ex.map(_ocr_page, *zip(*tasks, strict=True)))
    elapsed = time.perf_counter() - t0
    texts: dict[str, list[str]] = {}
    for path, index, text, _ in sorted(results, key=lambda r: (r[0], r[1])):
        texts.setdefault(path, []).append(text)
        assert len(texts[path]) == index + 1
    return elapsed, texts, max(r[3] for r in results)


# -- (b) the engine ------------------------------------------------------------------


def _children(pid: int) -> list[int]:
    """``pid``'s children from ``/proc/PID/task/TID/children`` (a few small reads)."""
    kids: list[int] = []
    try:
        for tid in os.listdir(f"/proc/{pid}/task"):
            with open(f"/proc/{pid}/task/{tid}/children") as f:
                kids += [int(k) for k in f.read().split()]
    except OSError:  # gone, or no CONFIG_PROC_CHILDREN: see _descendants
        pass
    return kids


def _descendants(pid: int) -> set[int]:
    """Walks the children files: reading every process's ``/proc/PID/stat`` 20 times
    a second cost ~9 % of a core, taken from the engine's workers (nice 10) while
    the pool side ran unobserved."""
    found, todo = set(), [pid]
    while todo:
        for k in _children(todo.pop()):
            found.add(k)
            todo.append(k)
    return found


def _hwm(pid: int) -> int:
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return 0


def run_engine(target: Path, work: Path) -> tuple[float, dict[str, Any], int, int]:
    store, out = work / "jobs.db", work / "out"
    store.unlink(missing_ok=True)
    shutil.rmtree(out, ignore_errors=True)
    cmd = [sys.executable, "-m", "jobtui.tui", "--store", str(store), "run", str(target)]
    cmd += ["--output", str(out), "--json"]
    peaks: dict[int, int] = {}
    done = threading.Event()
    with open(work / "stdout.json", "w") as out_f, open(work / "stderr.txt", "w") as err_f:
        t0 = time.perf_counter()
        proc = subprocess.Popen(cmd, cwd=ROOT, stdout=out_f, stderr=err_f)

        def sample() -> None:
            pids, n = {proc.pid}, 0
            while not done.is_set():
                if n % 5 == 0:  # new processes are found within 250 ms
                    pids = _descendants(proc.pid) | {proc.pid}
                n += 1
                for pid in pids:
                    peaks[pid] = max(peaks.get(pid, 0), _hwm(pid))
                done.wait(0.05)

        sampler = threading.Thread(target=sample, daemon=True)
        sampler.start()
        code = proc.wait()
        elapsed = time.perf_counter() - t0
        done.set()
        sampler.join()
    if code not in (0, 1):
        raise SystemExit(f"jobtui run failed ({code}):\n{(work / 'stderr.txt').read_text()}")
    main_rss = peaks.pop(proc.pid, 0)
    # The fork server and resource tracker are small; the largest others are workers.
    return elapsed, json.loads((work / "stdout.json").read_text()), max(peaks.values()), main_rss


def engine_texts(report: dict[str, Any]) -> dict[str, list[str]]:
    texts = {}
    for job in report["jobs"]:
        if job.get("status") == "completed" and job.get("json_path"):
            data = json.loads(Path(job["json_path"]).read_text(encoding="utf-8"))
            texts[str(Path(job["path"]).resolve())] = [p["text"] for p in data["pages"]]
    return texts


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("src", type=Path, nargs="?", help="folder of text PDFs to scan from")
    ap.add_argument("--docs", type=int, default=6)
    ap.add_argument("--pages", type=int, default=24, help="pages in all")
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--workers", type=int, default=len(os.sched_getaffinity(0)))
    args = ap.parse_args()

    compile_project()
    with tempfile.TemporaryDirectory(prefix="jobtui-ocr-") as tmp:
        work = Path(tmp)
        src = args.src
        if src is None:
            src = work / "src"
            shutil.copytree(ROOT / "examples" / "pdfs", src)
            generate(src / "generated", 3, scanned_every=0)
        scans = make_scans(src, work / "scans", args.docs, args.pages)
        print(f"{len(scans)} image-only PDFs, {args.pages} pages", file=sys.stderr)
        pool_runs, engine_runs = [], []
        pool_rss = worker_rss = main_rss = 0
        pool_texts: dict[str, list[str]] = {}
        report: dict[str, Any] = {}
        for r in range(args.rounds):
            t, pool_texts, rss = run_pool(scans, args.workers)
            pool_runs.append(t)
            pool_rss = max(pool_rss, rss)
            t, report, w_rss, m_rss = run_engine(work / "scans", work)
            engine_runs.append(t)
            worker_rss, main_rss = max(worker_rss, w_rss), max(main_rss, m_rss)
            print(
                f"round {r + 1}: pool {pool_runs[-1]:.2f} s, engine {engine_runs[-1]:.2f} s",
                file=sys.stderr,
            )
        got = engine_texts(report)
        same = sum(1 for p, texts in pool_texts.items() if got.get(p) == texts)
        ratio = min(engine_runs) / min(pool_runs)
        mb = 1 << 20
        print(
            f"pool {min(pool_runs):.2f} s, engine {min(engine_runs):.2f} s: ratio {ratio:.3f} "
            f"(target <= 1.05); text equal in {same}/{len(pool_texts)} documents; peak RSS "
            f"per worker: pool {pool_rss / mb:.0f} MB, engine {worker_rss / mb:.0f} MB "
            f"(engine main process {main_rss / mb:.0f} MB)",
            file=sys.stderr,
        )
        print(
            json.dumps(
                {
                    "bench": "ocr_throughput",
                    "documents": len(scans),
                    "pages": args.pages,
                    "workers": args.workers,
                    "pool_s": round(min(pool_runs), 3),
                    "engine_s": round(min(engine_runs), 3),
                    "ratio": round(ratio, 3),
                    "pool_runs_s": [round(x, 3) for x in pool_runs],
                    "engine_runs_s": [round(x, 3) for x in engine_runs],
                    "text_equal_docs": same,
                    "docs_compared": len(pool_texts),
                    "peak_rss_worker_pool_mb": round(pool_rss / mb),
                    "peak_rss_worker_engine_mb": round(worker_rss / mb),
                    "peak_rss_engine_main_mb": round(main_rss / mb),
                }
            )
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
