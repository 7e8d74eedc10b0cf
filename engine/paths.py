"""Turn what a person types, pastes or drops into a terminal into file paths.

Terminals spell a dropped file in several ways: ``'/a b'`` (GNOME, iTerm2),
``/a\\ b`` (macOS Terminal, kitty), ``"/a b"``, ``file:///a%20b`` (some file
managers, ``file://localhost/...`` too), often with a trailing space or newline;
a person may type ``~/x`` or paste several paths at once, one per line or side by
side. ``parse_dropped_paths`` reads all of those with POSIX shell quoting rules plus
``file:`` URLs and ``~`` expansion. It never touches the file system, so the CLI and
the console can both call it on every keystroke.

One heuristic: some terminals paste a path unquoted even when it holds spaces
(``/home/me/My Files/a.pdf``). Within a line that starts with an absolute path,
an unquoted word that cannot start a path (not ``/``, ``~``, ``.``, ``file:``) is
taken as the continuation of the word before it, with the original spacing.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from urllib.parse import unquote, urlsplit

__all__ = ["parse_dropped_paths"]

# Inside double quotes a backslash only escapes these (POSIX shell rules).
_DQ_ESCAPABLE = frozenset('"\\$`\n')
# How a word that begins a new path may start (everything else may be a continuation).
_PATH_STARTS = ("/", "~", ".", "file:", "FILE:")


@dataclass
class _Word:
    text: str
    start: int  # offset of the word's first character in its line
    end: int  # offset just past its last character
    plain: bool  # no quotes and no backslashes: the terminal did not escape it


def parse_dropped_paths(text: str) -> list[str]:
    """Paths in ``text``, in order, without duplicates; ``[]`` for blank input.

    Accepts ``'/a b'``, ``"/a b"``, ``/a\\ b``, ``file:///a%20b``,
    ``file://localhost/a``, ``~/x`` and several of them separated by spaces or
    newlines. Paths are returned as written (relative stays relative), only
    ``~`` is expanded and ``file:`` URLs are decoded.
    """
    out: list[str] = []
    seen: set[str] = set()
    # A backslash before a newline continues the line (shell rule); join those first.
    text = text.replace("\x00", "").replace("\r\n", "\n").replace("\r", "\n")
    text = text.replace("\\\n", "")
    for line in _split_lines(text):
        for word in _join_continuations(line, _words(line)):
            path = _to_path(word)
            if path and path not in seen:
                seen.add(path)
                out.append(path)
    return out


def _split_lines(text: str) -> list[str]:
    """Split on newlines that are not inside quotes (a quoted path may hold one)."""
    lines: list[str] = []
    buf: list[str] = []
    quote: str | None = None
    i = 0
    while i < len(text):
        ch = text[i]
        if quote is None and ch == "\\" and i + 1 < len(text):
            buf.append(text[i : i + 2])
            i += 2
            continue
        if quote == '"' and ch == "\\" and i + 1 < len(text):
            buf.append(text[i : i + 2])
            i += 2
            continue
        if quote is None and ch in "'\"":
            quote = ch
        elif quote is not None and ch == quote:
            quote = None
        if ch == "\n" and quote is None:
            lines.append("".join(buf))
            buf = []
        else:
            buf.append(ch)
        i += 1
    lines.append("".join(buf))
    return lines


def _words(line: str) -> list[_Word]:
    """Shell-style words of one line. An unclosed quote runs to the end of the line
    (a person pasting ``'/a b`` without the closing quote still means ``/a b``)."""
    words: list[_Word] = []
    i, n = 0, len(line)
    while i < n:
        if line[i].isspace():
            i += 1
            continue
        start = i
        buf: list[str] = []
        plain = True
        while i < n and not line[i].isspace():
            ch = line[i]
            if ch == "'":
                plain = False
                close = line.find("'", i + 1)
                close = n if close < 0 else close
                buf.append(line[i + 1 : close])
                i = close + 1
            elif ch == '"':
                plain = False
                i += 1
                while i < n and line[i] != '"':
                    if line[i] == "\\" and i + 1 < n and line[i + 1] in _DQ_ESCAPABLE:
                        i += 1
                    buf.append(line[i])
                    i += 1
                i += 1  # the closing quote (or past the end)
            elif ch == "\\":
                plain = False
                if i + 1 < n:
                    buf.append(line[i + 1])
                    i += 2
                else:  # a lone trailing backslash is kept as written
                    buf.append(ch)
                    i += 1
            else:
                buf.append(ch)
                i += 1
        words.append(_Word("".join(buf), start, min(i, n), plain))
    return words


def _join_continuations(line: str, words: list[_Word]) -> list[str]:
    """Undo the split of an unquoted absolute path that contains spaces."""
    if not words or not words[0].plain or not words[0].text.startswith(("/", "~")):
        return [w.text for w in words]
    out: list[_Word] = [words[0]]
    for w in words[1:]:
        prev = out[-1]
        if w.plain and prev.plain and not w.text.startswith(_PATH_STARTS):
            # Keep the exact spacing the terminal pasted ("My  Files" has two).
            out[-1] = _Word(prev.text + line[prev.end : w.start] + w.text, prev.start, w.end, True)
        else:
            out.append(w)
    return [w.text for w in out]


def _to_path(word: str) -> str:
    if word[:5].lower() == "file:":
        word = _file_url_path(word)
    if word.startswith("~"):
        word = os.path.expanduser(word)
    return word


def _file_url_path(url: str) -> str:
    """``file:///a%20b`` -> ``/a b``; ``file://localhost/x`` -> ``/x``; ``file:/x`` -> ``/x``.

    A file URL naming another host keeps that host as a UNC-like ``//host/path``:
    it is not a local file, and the job's FILE_NOT_FOUND will say so.
    """
    parts = urlsplit(url)
    path = unquote(parts.path, errors="surrogateescape")
    host = parts.netloc
    if host and host.lower() != "localhost":
        return f"//{host}{path}"
    return path or "/"
