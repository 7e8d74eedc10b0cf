"""Turn text blocks with font sizes (from ``pdf_extract.markdown_range``) into Markdown.

Deliberately simple and predictable (no layout model): the font size that carries
the most characters is the body size; short blocks set clearly larger are headings,
the largest size ``#``, the next ``##`` and so on; mostly-bold short lines at body
size become bold paragraphs; bullet characters become list items; table-of-contents
entries (dot leaders, page number) stay one a paragraph; hyphenated line breaks are
joined. Each page starts with an HTML comment ``<!-- page N -->`` so a
reader can find the source page.
"""

from __future__ import annotations

import re
from collections import Counter
from typing import Any

HEADING_RATIO = 1.15  # at least this much larger than body text to be a heading
HEADING_MAX_CHARS = 200
HEADING_MAX_LINES = 3
BULLETS = ("•", "◦", "▪", "‣", "●", "○", "■", "–", "- ", "* ")
_ESCAPE_START = re.compile(r"^([#>]|\d+[.)]\s|[-+*]\s)")


def heading_levels(pages: list[dict[str, Any]]) -> tuple[float, dict[float, int]]:
    """The body font size and ``{size: heading level}`` for the whole document."""
    chars: Counter[float] = Counter()
    short: set[float] = set()
    for page in pages:
        for size, _bold, lines in page.get("blocks", []):
            n = sum(len(line) for line in lines)
            chars[size] += n
            if n <= HEADING_MAX_CHARS and len(lines) <= HEADING_MAX_LINES:
                short.add(size)
    if not chars:
        return 0.0, {}
    body = chars.most_common(1)[0][0]
    bigger = sorted((s for s in short if s >= body * HEADING_RATIO), reverse=True)
    return body, {s: min(i + 1, 6) for i, s in enumerate(bigger)}


def _join_lines(lines: list[str]) -> str:
    out = ""
    for line in lines:
        if not out:
            out = line
        elif out.endswith("-") and line[:1].islower():
            out = out[:-1] + line  # "Ver-" + "arbeitung" -> "Verarbeitung"
        else:
            out += " " + line
    return out


def _escape(text: str) -> str:
    return "\\" + text if _ESCAPE_START.match(text) else text


_LEADER_LINE = re.compile(r"(\.\s?){3,}\s*[\divxlcIVXLC]+$")  # "Intro . . . . 12"


def _is_bullet(line: str) -> bool:
    return line.startswith(BULLETS)


def _strip_bullet(line: str) -> str:
    return line.lstrip("".join(b.strip() for b in BULLETS)).strip()


def _block_markdown(
    size: float, bold: bool, lines: list[str], body: float, levels: dict[float, int]
) -> list[str]:
    text = _join_lines(lines)
    level = levels.get(size)
    if level is not None and len(text) <= HEADING_MAX_CHARS and len(lines) <= HEADING_MAX_LINES:
        return ["#" * level + " " + text]
    if any(_LEADER_LINE.search(line) for line in lines):
        # A table of contents: one entry a paragraph; an entry ends at its page number
        # (PyMuPDF often puts "2.1" and its title on separate lines).
        entries: list[str] = []
        pending: list[str] = []
        for line in lines:
            pending.append(line)
            if _LEADER_LINE.search(line):
                entries.append(_escape(" ".join(pending)))
                pending = []
        if pending:
            entries.append(_escape(" ".join(pending)))
        return entries
    if any(_is_bullet(line) for line in lines):
        # Lead-in text, then items; a line without a bullet continues the item before.
        out: list[str] = []
        lead: list[str] = []
        items: list[list[str]] = []
        for line in lines:
            if _is_bullet(line):
                items.append([_strip_bullet(line)])
            elif items:
                items[-1].append(line)
            else:
                lead.append(line)
        if lead:
            out.append(_escape(_join_lines(lead)))
        out.append("\n".join("- " + _join_lines(item) for item in items))
        return out
    if bold and size <= body and len(lines) == 1 and len(text) <= 120:
        return [f"**{text}**"]
    return [_escape(text)]


def structure_markdown(pages: list[dict[str, Any]], title: str) -> str:
    """The Markdown document for ``pages`` (each ``{page, blocks}``), titled ``title``
    only when the document itself has no level-1 heading on its first page."""
    body, levels = heading_levels(pages)
    parts: list[str] = []
    first_blocks = pages[0].get("blocks", []) if pages else []
    if not any(levels.get(b[0]) == 1 for b in first_blocks):
        parts.append(f"# {title}")
    for page in pages:
        parts.append(f"<!-- page {page['page']} -->")
        for size, bold, lines in page.get("blocks", []):
            parts.extend(_block_markdown(size, bold, lines, body, levels))
    return "\n\n".join(parts) + "\n"
