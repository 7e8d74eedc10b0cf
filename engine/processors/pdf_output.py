"""Writing a transcript: Markdown and JSON, atomically, from a worker process.

Kept free of pydantic and the engine's models, like ``pdf_extract``: it runs in the
worker processes, which then write a document's outputs right after extracting it.
The text never travels back to the event loop's process, which on a busy machine
competes with those workers for the same cores (measured: writing 300 transcripts
from the console's process cost ~0.5 s of a 6 s folder run on 2 cores).

A document split into page ranges is encoded by its parts
(``pdf_extract.transcribe_range``), in parallel; its files are then joined from their
UTF-8 shares in the handler's process (a copy of a few MB, no encoding there), byte for
byte what one piece would give. This module reads no PDF: ``pdf_extract`` uses it, not
the other way round.
"""

from __future__ import annotations

import json
import os
import secrets
from collections.abc import Callable, Sequence
from typing import Any

from jobtui.engine.errors import ErrorCode, JobFailed

#: Output files get this mode less the umask: they follow the umask, never wider.
OUTPUT_MODE = 0o644


def write_in_dir(folder: str, name: str, data: bytes | Sequence[bytes]) -> None:
    """Write ``folder/name`` so that no symlink planted in the output folder is
    followed: the folder is opened once (``O_NOFOLLOW``: a symlinked folder is
    refused), the data goes to a fresh temporary file created inside it with
    ``O_EXCL | O_NOFOLLOW``, which is renamed over ``name`` within the same folder
    descriptor (a rename replaces a symlink, it never writes through one). Readers
    never see half a file. No fsync: it cost ~5 ms a file on small documents; a power
    cut may lose the newest outputs, as it may lose the embedded store's newest
    commits (WAL, synchronous=NORMAL). Crashes of a process lose nothing. ``data``
    may come in pieces, written one after another (no joined copy)."""
    pieces = [data] if isinstance(data, bytes) else data
    dfd = os.open(folder, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC)
    tmp = f".{name}.{os.getpid()}.{secrets.token_hex(4)}.tmp"
    try:
        flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC
        fd = os.open(tmp, flags, OUTPUT_MODE, dir_fd=dfd)
        try:
            with open(fd, "wb", closefd=False) as f:
                f.writelines(pieces)
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
    write_in_dir(folder or ".", name, _utf8(data))


def _utf8(text: str) -> bytes:
    return text.encode("utf-8", errors="surrogateescape")  # undecodable names survive


def markdown_pages(records: list[dict[str, Any]]) -> bytes:
    """The pages' share of a transcript's Markdown (UTF-8): one section per page."""
    sections = []
    for r in records:
        text = r["text"].strip()
        sections.append(f"## Page {r['page']}\n\n{text if text else '_(no text on this page)_'}")
    return _utf8("\n\n".join(sections))


def json_pages(records: list[dict[str, Any]]) -> bytes:
    """The pages' share of a transcript's JSON (UTF-8): one page per line."""
    return _utf8(",\n".join(json.dumps(r, ensure_ascii=False) for r in records))


def assemble_markdown(title: str, chunks: list[bytes]) -> list[bytes]:
    """The Markdown file, in pieces, from the ``markdown_pages`` of consecutive page
    ranges."""
    out = [_utf8(f"# {title}")]
    for chunk in chunks:
        if chunk:
            out += [b"\n\n", chunk]
    return [*out, b"\n"]


def assemble_json(head: dict[str, Any], chunks: list[bytes]) -> list[bytes]:
    """The JSON file, in pieces: ``head`` (``transcript_head``) with ``pages`` made of the
    ``json_pages`` of consecutive page ranges. One page per line: ``indent=`` would be
    more uniform, but it switches ``json`` to its pure-Python encoder (7 ms per short
    document)."""
    top = json.dumps(head, ensure_ascii=False)
    opening = top[:-1] + (", " if len(top) > 2 else "") + '"pages": [\n'
    out = [_utf8(opening)]
    for chunk in chunks:
        if chunk:
            out += [b",\n", chunk] if len(out) > 1 else [chunk]
    return [*out, b"\n]}\n"]


def transcript_head(source: str, sha256: str, pages: int, languages: str) -> dict[str, Any]:
    """What the JSON file holds besides its pages."""
    return {"source": source, "sha256": sha256, "page_count": pages, "languages": languages}


def transcript_doc(
    source: str, sha256: str, pages: int, languages: str, records: list[dict[str, Any]]
) -> dict[str, Any]:
    """What the JSON file holds."""
    return {**transcript_head(source, sha256, pages, languages), "pages": records}


def summarize(records: list[dict[str, Any]]) -> dict[str, Any]:
    """What the handler needs of a range's page records, in one small object (a
    document's page records are unpickled and walked in the event loop's process,
    which shares the cores with the workers): ``chars`` in all, the ``ocr`` pages, the
    ``no_text`` pages (images, no text layer, not OCRed) and ``notes``, the records
    (without text) of the pages that failed or were drawn at a lower dpi."""
    return {
        "chars": sum(r["chars"] for r in records),
        "ocr": [r["page"] for r in records if r["ocr"]],
        "no_text": [r["page"] for r in records if r.get("no_text_layer")],
        "notes": [
            {k: v for k, v in r.items() if k != "text"}
            for r in records
            if r.get("error") or r.get("dpi_lowered")
        ],
    }


def merge_summaries(summaries: list[dict[str, Any]]) -> dict[str, Any]:
    """One ``summarize`` of consecutive page ranges, from theirs."""
    return {
        "chars": sum(s["chars"] for s in summaries),
        **{key: [x for s in summaries for x in s[key]] for key in ("ocr", "no_text", "notes")},
    }


def write_files(
    out_dir: str, files: dict[str, Callable[[], str | bytes | Sequence[bytes]]]
) -> None:
    """Build each file's text (or UTF-8 bytes, or their pieces) and write it atomically under
    ``out_dir``; a folder or file that cannot be written is ``JobFailed(OUTPUT_ERROR)``
    (never retried)."""
    try:
        os.makedirs(out_dir, exist_ok=True)
        for path, make in files.items():
            data = make()
            if isinstance(data, str):
                atomic_write(path, data)
            else:
                folder, name = os.path.split(path)
                write_in_dir(folder or ".", name, data)
    except OSError as exc:
        raise JobFailed(
            ErrorCode.OUTPUT_ERROR,
            f"cannot write output under {out_dir}: {exc.strerror or exc}",
            {"output_dir": out_dir},
        ) from None


def write_transcript(out_dir: str, stem: str, title: str, doc: dict[str, Any]) -> tuple[str, str]:
    """``<out_dir>/<stem>.md`` and ``.json``; their paths, or ``JobFailed(OUTPUT_ERROR)``."""
    head = {k: v for k, v in doc.items() if k != "pages"}
    records = doc["pages"]
    return write_transcript_parts(
        out_dir, stem, title, head, [markdown_pages(records)], [json_pages(records)]
    )


def write_transcript_parts(
    out_dir: str,
    stem: str,
    title: str,
    head: dict[str, Any],
    markdown: list[bytes],
    json_chunks: list[bytes],
) -> tuple[str, str]:
    """``write_transcript`` from the encoded shares of consecutive page ranges
    (``pdf_extract.transcribe_range``): joining them is a copy, cheap enough for any
    process."""
    md_path = os.path.join(out_dir, f"{stem}.md")
    json_path = os.path.join(out_dir, f"{stem}.json")
    write_files(
        out_dir,
        {
            md_path: lambda: assemble_markdown(title, markdown),
            json_path: lambda: assemble_json(head, json_chunks),
        },
    )
    return md_path, json_path
