"""Writing a transcript: Markdown and JSON, atomically, from a worker process.

Kept free of pydantic and the engine's models, like ``pdf_extract``: it runs in the
worker processes, which then write a document's outputs right after extracting it.
The text never travels back to the event loop's process, which on a busy machine
competes with those workers for the same cores (measured: writing 300 transcripts
from the console's process cost ~0.5 s of a 6 s folder run on 2 cores).
"""

from __future__ import annotations

import json
import os
import secrets
from collections.abc import Callable
from typing import Any

from jobtui.engine.errors import JobFailed
from jobtui.engine.processors.pdf_extract import ErrorCode

#: Output files get this mode less the umask: they follow the umask, never wider.
OUTPUT_MODE = 0o644


def write_in_dir(folder: str, name: str, data: bytes) -> None:
    """Write ``folder/name`` so that no symlink planted in the output folder is
    followed: the folder is opened once (``O_NOFOLLOW``: a symlinked folder is
    refused), the data goes to a fresh temporary file created inside it with
    ``O_EXCL | O_NOFOLLOW``, which is renamed over ``name`` within the same folder
    descriptor (a rename replaces a symlink, it never writes through one). Readers
    never see half a file. No fsync: it cost ~5 ms a file on small documents; a power
    cut may lose the newest outputs, as it may lose the embedded store's newest
    commits (WAL, synchronous=NORMAL). Crashes of a process lose nothing."""
    dfd = os.open(folder, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC)
    tmp = f".{name}.{os.getpid()}.{secrets.token_hex(4)}.tmp"
    try:
        flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC
        fd = os.open(tmp, flags, OUTPUT_MODE, dir_fd=dfd)
        try:
            with open(fd, "wb", closefd=False) as f:
                f.write(data)
        finally:
            os.close(fd)
        os.replace(tmp, name, src_dir_fd=dfd, dst_dir_fd=dfd)
    except BaseException:
        try:
            os.unlink(tmp, dir_fd=dfd)
        except FileNotFoundError:
            pass
        raise
    finally:
        os.close(dfd)


def atomic_write(path: str, data: str) -> None:
    """``write_in_dir`` for a text file (UTF-8; undecodable file names' characters
    survive as surrogate escapes)."""
    folder, name = os.path.split(path)
    write_in_dir(folder or ".", name, data.encode("utf-8", errors="surrogateescape"))


def transcript_markdown(title: str, records: list[dict[str, Any]]) -> str:
    parts = [f"# {title}"]
    for r in records:
        text = r["text"].strip()
        parts.append(f"## Page {r['page']}\n\n{text if text else '_(no text on this page)_'}")
    return "\n\n".join(parts) + "\n"


def transcript_json(doc: dict[str, Any]) -> str:
    """The transcript as JSON, one page per line. ``indent=`` would be more uniform,
    but it switches ``json`` to its pure-Python encoder (7 ms per short document)."""
    head = json.dumps({k: v for k, v in doc.items() if k != "pages"}, ensure_ascii=False)
    pages = ",\n".join(json.dumps(r, ensure_ascii=False) for r in doc["pages"])
    return head[:-1] + (", " if len(head) > 2 else "") + f'"pages": [\n{pages}\n]}}\n'


def transcript_doc(
    source: str, sha256: str, pages: int, languages: str, records: list[dict[str, Any]]
) -> dict[str, Any]:
    """What the JSON file holds."""
    return {
        "source": source,
        "sha256": sha256,
        "page_count": pages,
        "languages": languages,
        "pages": records,
    }


def write_files(out_dir: str, files: dict[str, Callable[[], str]]) -> None:
    """Build each file's text and write it atomically under ``out_dir``; a folder or
    file that cannot be written is ``JobFailed(OUTPUT_ERROR)`` (never retried)."""
    try:
        os.makedirs(out_dir, exist_ok=True)
        for path, make in files.items():
            atomic_write(path, make())
    except OSError as exc:
        raise JobFailed(
            ErrorCode.OUTPUT_ERROR,
            f"cannot write output under {out_dir}: {exc.strerror or exc}",
            {"output_dir": out_dir},
        ) from None


def write_transcript(out_dir: str, stem: str, title: str, doc: dict[str, Any]) -> tuple[str, str]:
    """``<out_dir>/<stem>.md`` and ``.json``; their paths, or ``JobFailed(OUTPUT_ERROR)``."""
    md_path = os.path.join(out_dir, f"{stem}.md")
    json_path = os.path.join(out_dir, f"{stem}.json")
    write_files(
        out_dir,
        {
            md_path: lambda: transcript_markdown(title, doc["pages"]),
            json_path: lambda: transcript_json(doc),
        },
    )
    return md_path, json_path
