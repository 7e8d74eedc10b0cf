"""Folder enqueue: recursion, symlinks (incl. loops), content dedupe, re-runs, --force,
concurrent enqueuers, chunked bulk writes into one batch, progress, the summary line,
and each file under the job type that declared its kind (one batch, several types)."""

from __future__ import annotations

import asyncio
import hashlib
import os
from pathlib import Path
from typing import Any

import pytest
from pydantic import BaseModel, ConfigDict

from jobtui.engine import enqueue as enq
from jobtui.engine.api import OperatorAPI, dedupe_key
from jobtui.engine.models import JobStatus, Outcome, utcnow
from jobtui.engine.registry import FileTypes, Registry, default_registry
from jobtui.engine.store.base import Store
from jobtui.engine.store.sqlite import SQLiteStore
from tests.util import wait_for

CONTENTS = {
    "a.pdf": b"%PDF-1.4 a",
    "b.PDF": b"%PDF-1.4 b",
    "sub/c.pdf": b"%PDF-1.4 c",
    "sub/deeper/d.pdf": b"%PDF-1.4 d" * 1000,
}


@pytest.fixture
def tree(tmp_path: Path) -> Path:
    """a.pdf b.PDF notes.txt sub/{c.pdf, a-copy.pdf, loop -> .., deeper/d.pdf}
    link.pdf -> a.pdf, dangling.pdf -> nowhere, alias -> sub (a second way in),
    pipe.pdf (a FIFO)."""
    root = tmp_path / "in put"
    for rel, data in CONTENTS.items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_bytes(data)
    (root / "notes.txt").write_text("not a pdf")
    (root / "sub" / "a-copy.pdf").write_bytes(CONTENTS["a.pdf"])
    (root / "sub" / "loop").symlink_to(root)
    (root / "link.pdf").symlink_to(root / "a.pdf")
    (root / "dangling.pdf").symlink_to(root / "nowhere.pdf")
    (root / "alias").symlink_to(root / "sub")
    os.mkfifo(root / "pipe.pdf")  # must not be opened (it would block)
    return root


REGISTRY = default_registry()


def api_for(store: Store, registry: Registry = REGISTRY) -> OperatorAPI:
    return OperatorAPI(store, registry)


async def all_jobs(store: Store) -> list[Any]:
    return await store.list_jobs(limit=100_000)


async def test_folder_scan_dedupes_and_reports(store: Store, tree: Path) -> None:
    progress: list[tuple[int, int]] = []
    rep = await api_for(store).enqueue_paths(
        [str(tree)], batch_name="scan", on_progress=lambda d, t: progress.append((d, t))
    )
    jobs = await all_jobs(store)
    assert len(jobs) == len(rep.job_ids) == 4
    by_name = {Path(j.parameters["path"]).name: j for j in jobs}
    assert set(by_name) == {"a.pdf", "b.PDF", "c.pdf", "d.pdf"}
    for rel, data in CONTENTS.items():
        j = by_name[Path(rel).name]
        assert j.parameters["path"] == str((tree / rel).resolve())
        sha = hashlib.sha256(data).hexdigest()
        assert j.parameters["sha256"] == sha
        assert j.dedupe_key == dedupe_key("pdf.transcribe", sha, j.parameters)
        assert j.batch_id == rep.batch_id and j.job_type == "pdf.transcribe"
    assert rep.skipped["unsupported"] == 1  # notes.txt: no job type takes .txt
    assert rep.skipped["same_content"] == 1  # sub/a-copy.pdf
    assert rep.skipped["same_file"] == 1  # link.pdf -> a.pdf
    assert rep.skipped["missing"] == 1  # dangling.pdf
    assert rep.skipped["same_folder"] >= 2  # sub/loop -> root, alias -> sub
    assert rep.skipped["not_regular"] == 1  # pipe.pdf
    assert rep.skipped_examples["unsupported"] == [str(tree / "notes.txt")]
    assert rep.found == 7  # 4 PDFs, notes.txt, the copy and the symlinked a.pdf
    assert rep.duplicates == {}
    # Progress followed the hashing and ended at total.
    assert progress[0] == (0, 5) and progress[-1] == (5, 5)  # the symlink is not re-read
    assert [d for d, _ in progress] == sorted(d for d, _ in progress)
    summary = await store.get_batch(rep.batch_id)  # type: ignore[arg-type]
    assert summary is not None and summary.total == 4 and summary.batch.total_jobs == 4
    assert summary.batch.name == "scan"
    line = rep.summary_line()
    assert line.startswith("7 files: 4 queued in batch ")
    assert "1 no job type takes it" in line and "1 copy of another file" in line
    # Largest first: the batch ends sooner when the long documents start early.
    first = next(j for j in jobs if j.job_id == rep.job_ids[0])
    assert Path(first.parameters["path"]).name == "d.pdf"


async def test_rerun_of_finished_folder_redoes_nothing(store: Store, tree: Path) -> None:
    api = api_for(store)
    first = await api.enqueue_paths([str(tree)])
    again = await api.enqueue_paths([str(tree)])
    assert again.job_ids == [] and again.batch_id is None
    assert sorted(again.duplicates.values()) == ["pending"] * 4
    assert "4 already queued" in again.summary_line()
    # Finish them all, then re-run: reported as already completed.
    claimed = await store.claim(
        worker_id="w",
        slots={"pdf.transcribe": 10},
        limit=10,
        lease_seconds=30,
        timeouts={},
        now=utcnow(),
    )
    assert len(claimed) == 4
    for j in claimed:
        assert await store.finish(
            j.job_id, j.lease.token, Outcome(status=JobStatus.COMPLETED), now=utcnow()
        )
    third = await api.enqueue_paths([str(tree)])
    assert third.job_ids == [] and sorted(third.duplicates.values()) == ["completed"] * 4
    assert set(third.duplicate_paths.values()) == {str((tree / rel).resolve()) for rel in CONTENTS}
    assert "4 already completed" in third.summary_line()
    assert len(await all_jobs(store)) == 4 and first.batch_id is not None


async def test_force_makes_new_jobs(store: Store, tree: Path) -> None:
    api = api_for(store)
    first = await api.enqueue_paths([str(tree)])
    forced = await api.enqueue_paths([str(tree)], force=True)
    assert len(forced.job_ids) == 4 and forced.duplicates == {}
    assert forced.batch_id != first.batch_id
    assert len(await all_jobs(store)) == 8
    # ... and the within-scan dedupe still holds under --force.
    assert forced.skipped["same_content"] == 1


async def test_other_parameters_are_other_jobs(store: Store, tree: Path) -> None:
    api = api_for(store)
    await api.enqueue_paths([str(tree)])
    eng = await api.enqueue_paths([str(tree)], parameters={"languages": "eng"})
    assert len(eng.job_ids) == 4
    jobs = await all_jobs(store)
    assert sorted(j.parameters.get("languages", "-") for j in jobs) == ["-"] * 4 + ["eng"] * 4


async def test_not_recursive_and_explicit_files(store: Store, tree: Path) -> None:
    api = api_for(store)
    rep = await api.enqueue_paths([str(tree)], recursive=False)
    assert len(rep.job_ids) == 2  # a.pdf, b.PDF
    assert rep.skipped["subfolder"] == 2  # sub, alias
    # With a job type, a file named explicitly is taken whatever its extension (errors
    # show on its job); without one, it needs a type that takes its kind.
    named = [str(tree / "notes.txt"), str(tree / "nope.pdf")]
    rep = await api.enqueue_paths(named, job_type="pdf.transcribe")
    assert len(rep.job_ids) == 1 and rep.skipped == {"missing": 1}
    job = await store.get_job(rep.job_ids[0])
    assert job is not None and job.parameters["path"].endswith("notes.txt")
    rep = await api.enqueue_paths(named)
    assert rep.job_ids == [] and rep.skipped == {"missing": 1, "unsupported": 1}


async def test_types_that_declare_no_files_take_every_file(store: Store, tree: Path) -> None:
    rep = await api_for(store).enqueue_paths([str(tree)], job_type="noop")
    assert len(rep.job_ids) == 5  # the 4 PDFs and notes.txt
    assert "not_accepted" not in rep.skipped and "unsupported" not in rep.skipped


async def test_a_named_type_takes_only_its_files(store: Store, tree: Path) -> None:
    rep = await api_for(store).enqueue_paths([str(tree)], job_type="pdf.render")
    assert len(rep.job_ids) == 4 and rep.skipped["not_accepted"] == 1  # notes.txt
    assert "1 not for this job type" in rep.summary_line()
    jobs = await all_jobs(store)
    assert {j.job_type for j in jobs} == {"pdf.render"}
    summary = await store.get_batch(rep.batch_id)  # type: ignore[arg-type]
    assert summary is not None and summary.batch.job_type == "pdf.render"


class CountParams(BaseModel):
    model_config = ConfigDict(extra="forbid")
    source: str  # the path parameter, named its own way
    words: bool = True


async def _count(ctx: Any, params: Any) -> None:
    return None


def _mixed_registry() -> Registry:
    reg = Registry()
    reg.load_entry_points()
    reg.handler(
        "text.count",
        params=CountParams,
        files=FileTypes(
            frozenset({".txt", ".md"}),
            sniff=lambda head: head.startswith(b"WORDS:"),
            path_param="source",
        ),
    )(_count)
    return reg


async def test_a_folder_of_kinds_is_one_batch_of_several_types(store: Store, tree: Path) -> None:
    """Without a job type each file goes to the type that declared its kind: by
    extension, else by its first bytes; parameters go where a model declares them."""
    (tree / "scan-without-extension").write_bytes(b"%PDF-1.7 sniffed")
    (tree / "words").write_bytes(b"WORDS: sniffed by the plug-in")
    (tree / "image.xyz").write_bytes(b"\x89 no type")
    api = api_for(store, _mixed_registry())
    rep = await api.enqueue_paths([str(tree)], parameters={"languages": "eng", "words": False})
    jobs = await all_jobs(store)
    by_name = {Path(j.parameters.get("path") or j.parameters["source"]).name: j for j in jobs}
    assert {n: j.job_type for n, j in by_name.items()} == {
        "a.pdf": "pdf.transcribe",
        "b.PDF": "pdf.transcribe",
        "c.pdf": "pdf.transcribe",
        "d.pdf": "pdf.transcribe",
        "scan-without-extension": "pdf.transcribe",
        "notes.txt": "text.count",
        "words": "text.count",
    }
    assert {j.batch_id for j in jobs} == {rep.batch_id} and len(rep.job_ids) == 7
    assert rep.skipped["unsupported"] == 1 and rep.skipped_examples["unsupported"] == [
        str(tree / "image.xyz")
    ]
    notes = by_name["notes.txt"]
    # The plug-in's model declares neither languages nor sha256 (and forbids extras).
    assert notes.parameters == {"source": str((tree / "notes.txt").resolve()), "words": False}
    CountParams.model_validate(notes.parameters)
    sha = hashlib.sha256(b"not a pdf").hexdigest()
    assert notes.dedupe_key == dedupe_key("text.count", sha, {"words": False})
    pdf = by_name["a.pdf"]
    assert pdf.parameters["languages"] == "eng" and "words" not in pdf.parameters
    summary = await store.get_batch(rep.batch_id)  # type: ignore[arg-type]
    assert summary is not None and summary.total == 7 and summary.batch.job_type is None
    # Enqueued again: every file is a duplicate of its own type's job.
    again = await api.enqueue_paths([str(tree)], parameters={"languages": "eng", "words": False})
    assert again.job_ids == [] and len(again.duplicates) == 7


async def test_the_same_folder_twice_in_one_call(store: Store, tree: Path) -> None:
    rep = await api_for(store).enqueue_paths([str(tree), str(tree / "sub"), f"{tree}/"])
    assert len(rep.job_ids) == 4


async def test_concurrent_enqueuers_create_no_duplicates(store: Store, tree: Path) -> None:
    api = api_for(store)
    reps = await asyncio.gather(*(api.enqueue_paths([str(tree)]) for _ in range(3)))
    ids = [i for r in reps for i in r.job_ids]
    assert len(ids) == len(set(ids)) == 4
    assert len(await all_jobs(store)) == 4
    assert sum(len(r.duplicates) for r in reps) == 8


async def test_concurrent_enqueuers_on_two_sqlite_connections(tmp_path: Path, tree: Path) -> None:
    """Two stores on one SQLite file (as two processes would have)."""
    stores = [SQLiteStore(tmp_path / "shared.db") for _ in range(2)]
    for s in stores:
        await s.open()
    try:
        reps = await asyncio.gather(*(api_for(s).enqueue_paths([str(tree)]) for s in stores))
        assert sorted(len(r.job_ids) for r in reps) in ([0, 4], [1, 3], [2, 2])
        assert sum(len(r.job_ids) for r in reps) == 4
        assert len(await stores[0].list_jobs(limit=100)) == 4
    finally:
        for s in stores:
            await s.close()


async def test_a_second_enqueue_meanwhile_does_not_break_the_first(
    store: Store, tree: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The same folder enqueued twice at once (two consoles): the second finds the
    first's jobs before their batch record exists, as after an interrupted enqueue, and
    writes a placeholder record; the first still ends well and names its batch. (Two
    enqueuers on one SQLite file once failed here with UNIQUE constraint failed.)"""
    first_may_finish = asyncio.Event()
    real = store.create_batch
    placeholders: list[str] = []

    async def create_batch(batch: Any, *, placeholder: bool = False) -> None:
        if placeholder:
            placeholders.append(batch.batch_id)
        else:
            await first_may_finish.wait()  # the first stops where its jobs are written
        await real(batch, placeholder=placeholder)

    monkeypatch.setattr(store, "create_batch", create_batch)
    api = api_for(store)
    first = asyncio.create_task(api.enqueue_paths([str(tree)], batch_name="first"))
    await wait_for(lambda: _count(store, 4), what="the first enqueue's jobs")
    second = await api.enqueue_paths([str(tree)], batch_name="second")
    assert second.job_ids == [] and len(second.duplicates) == 4
    assert len(placeholders) == 1
    first_may_finish.set()
    report = await first
    assert report.batch_id == placeholders[0] and len(report.job_ids) == 4
    summary = await store.get_batch(report.batch_id)
    assert summary is not None and summary.batch.name == "first"
    assert summary.batch.total_jobs == 4 and summary.counts == {"pending": 4}
    assert [b.batch.batch_id for b in await store.list_batches()] == [report.batch_id]
    # and the other order: a placeholder never overwrites the record it finds
    await store.create_batch(summary.batch.model_copy(update={"name": "x"}), placeholder=True)
    again = await store.get_batch(report.batch_id)
    assert again is not None and again.batch.name == "first"


async def _count(store: Store, n: int) -> bool:
    return len(await all_jobs(store)) == n


async def test_jobs_are_written_largest_first_in_growing_chunks(
    store: Store, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    folder = tmp_path / "twelve"
    folder.mkdir()
    for i in range(12):  # f0 is the smallest, f11 the largest
        (folder / f"f{i:02d}.pdf").write_bytes(b"%PDF-" + b"x" * (100 * i))
    monkeypatch.setattr(enq, "FIRST_CHUNK", 2)
    monkeypatch.setattr(enq, "CHUNK", 100)
    api = api_for(store)
    calls: list[list[str]] = []
    real = api.enqueue

    async def spy(job_type: str, parameters: Any, **kw: Any) -> Any:
        calls.append([Path(p["path"]).name for p in parameters])
        return await real(job_type, parameters, **kw)

    monkeypatch.setattr(api, "enqueue", spy)
    rep = await api.enqueue_paths([str(folder)])
    assert [len(c) for c in calls] == [2, 8, 2]  # a small first chunk, then 4x
    assert [n for c in calls for n in c] == [f"f{i:02d}.pdf" for i in range(11, -1, -1)]
    assert len(rep.job_ids) == 12 and rep.hashed == 12


async def test_chunks_land_in_one_batch(
    store: Store, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    folder = tmp_path / "eight"
    folder.mkdir()
    for i in range(8):
        (folder / f"f{i}.pdf").write_bytes(b"%%PDF- %d" % i)
    monkeypatch.setattr(enq, "CHUNK", 3)
    api = api_for(store)
    calls: list[int] = []
    real = api.enqueue

    async def spy(job_type: str, parameters: Any, **kw: Any) -> Any:
        calls.append(len(parameters))
        return await real(job_type, parameters, **kw)

    monkeypatch.setattr(api, "enqueue", spy)
    rep = await api.enqueue_paths([str(folder)])
    assert calls == [1, 3, 3, 1]  # FIRST_CHUNK (one job), then up to CHUNK
    assert len(rep.job_ids) == 8
    summary = await store.get_batch(rep.batch_id)  # type: ignore[arg-type]
    assert summary is not None and summary.total == 8 and summary.batch.total_jobs == 8
    assert len(await store.list_batches()) == 1


@pytest.mark.skipif(os.geteuid() == 0, reason="root reads everything")
async def test_unreadable_entries_are_counted(store: Store, tree: Path) -> None:
    locked = tree / "locked"
    locked.mkdir()
    (locked / "x.pdf").write_bytes(b"%PDF-")
    (tree / "secret.pdf").write_bytes(b"%PDF- secret")
    locked.chmod(0)
    (tree / "secret.pdf").chmod(0)
    try:
        rep = await api_for(store).enqueue_paths([str(tree)])
    finally:
        locked.chmod(0o755)
    assert rep.skipped["unreadable"] == 2
    assert len(rep.job_ids) == 4


async def test_nothing_to_do(store: Store, tmp_path: Path) -> None:
    empty = tmp_path / "empty"  # not tmp_path itself: a store may keep its file there
    empty.mkdir()
    rep = await api_for(store).enqueue_paths([str(empty)])
    assert rep.job_ids == [] and rep.batch_id is None and rep.found == 0
    assert rep.summary_line() == "0 files: 0 queued"
    assert await store.list_batches() == []


async def test_two_thousand_files_in_bulk(tmp_path: Path) -> None:
    """Chunked bulk writes on the embedded store (the 10,000-file path, smaller)."""
    root = tmp_path / "many"
    for i in range(2000):
        d = root / f"d{i // 100:02d}"
        d.mkdir(parents=True, exist_ok=True)
        (d / f"{i:05d}.pdf").write_bytes(b"%%PDF-1.4 %d" % i)
    store = SQLiteStore(tmp_path / "jobs.db")
    await store.open()
    try:
        seen: list[int] = []
        rep = await api_for(store).enqueue_paths(
            [str(root)], on_progress=lambda d, t: seen.append(d)
        )
        assert len(rep.job_ids) == 2000 and seen[-1] == 2000
        assert (await store.get_batch(rep.batch_id)).total == 2000  # type: ignore[arg-type,union-attr]
    finally:
        await store.close()


async def test_without_a_type_a_misspelt_parameter_is_refused_before_any_write(
    store: Store, tree: Path
) -> None:
    from jobtui.engine.errors import ConfigError

    api = api_for(store, _mixed_registry())
    with pytest.raises(ConfigError) as err:
        await api.enqueue_paths([str(tree)], parameters={"langauges": "eng"})
    # Checked against every automatic type: the first that refuses it names the key
    # and its closest parameter ('languages' of pdf.*, or 'language' of audio.* when
    # the audio extra is installed).
    msg = err.value.message
    assert err.value.code == "INVALID_PARAMETERS" and "'langauges'" in msg
    assert "did you mean 'languages'?" in msg or "did you mean 'language'?" in msg
    assert await all_jobs(store) == [] and await store.list_batches() == []


async def test_files_hashed_in_groups_keep_their_order_and_fail_one_by_one(
    tmp_path: Path,
) -> None:
    """Files are hashed several to a thread's call; one that vanished or cannot be
    read since the scan costs only itself, and the order (largest first) holds."""
    root = tmp_path / "group"
    root.mkdir()
    n = enq.HASH_GROUP_FILES * 2 + 5  # the first file alone, two full groups, a rest
    for i in range(n):
        (root / f"{i:03d}.pdf").write_bytes(b"%PDF-1.4 " + b"x" * (n - i))  # sizes fall
    scan = enq.scan_paths([str(root)], None, True, registry=default_registry())
    files = sorted(scan.files, key=lambda c: -c.size)
    gone, folder = files[3], files[enq.HASH_GROUP_FILES + 7]  # inside the first group
    os.unlink(gone.path)
    os.unlink(folder.path)
    os.mkdir(folder.path)  # where a file was, a folder now: reading it fails
    seen: list[tuple[int, int]] = []
    kept = [c async for c in enq._hashed_in_order(files, scan, lambda d, t: seen.append((d, t)))]
    assert [c.path for c in kept] == [c.path for c in files if c not in (gone, folder)]
    for c in kept:
        assert c.sha256 == hashlib.sha256(Path(c.path).read_bytes()).hexdigest()
    assert scan.skipped == {"missing": 1, "unreadable": 1}
    assert seen[0] == (0, n) and seen[-1] == (n, n) and len(seen) == n + 1
