"""A transcript's files: JSON, TXT, SRT, WebVTT and Markdown, from its segments.

Pure functions of the segments (``{start, end, text, words?}``, seconds from the
recording's start), so the formats are tested without a model; the handler writes
them with ``pdf_output.write_files`` (atomic, ``OUTPUT_ERROR`` when it cannot).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

FORMATS = ("json", "txt", "srt", "vtt", "md")


def clock(seconds: float, sep: str = ".", hours: bool = True) -> str:
    """``01:02:03.456`` (``sep=","`` for SRT); ``hours=False`` drops a zero hour."""
    ms = max(0, int(round(seconds * 1000)))
    h, rest = divmod(ms, 3_600_000)
    m, rest = divmod(rest, 60_000)
    s, ms = divmod(rest, 1000)
    head = f"{h:02d}:" if hours or h else ""
    return f"{head}{m:02d}:{s:02d}{sep}{ms:03d}"


def _one_line(text: str) -> str:
    # A blank line ends a cue in SRT and WebVTT; "-->" would start a new one.
    return " ".join(text.split()).replace("-->", "->")


def srt(segments: list[dict[str, Any]]) -> str:
    cues = [
        f"{i}\n{clock(s['start'], ',')} --> {clock(s['end'], ',')}\n{_one_line(s['text'])}\n"
        for i, s in enumerate(segments, 1)
    ]
    return "\n".join(cues)


def vtt(segments: list[dict[str, Any]]) -> str:
    cues = [
        f"{clock(s['start'])} --> {clock(s['end'])}\n{_one_line(s['text'])}\n" for s in segments
    ]
    return "WEBVTT\n\n" + "\n".join(cues)


def txt(segments: list[dict[str, Any]]) -> str:
    return "".join(_one_line(s["text"]) + "\n" for s in segments)


def markdown(title: str, summary: dict[str, Any], segments: list[dict[str, Any]]) -> str:
    lang = summary.get("language") or "unknown"
    prob = summary.get("language_probability")
    head = [
        f"# {title}",
        "",
        f"- Duration: {clock(summary.get('duration') or 0, hours=True)[:8]}",
        f"- Speech: {clock(summary.get('speech') or 0, hours=True)[:8]}",
        f"- Language: {lang}" + (f" ({prob:.0%})" if isinstance(prob, float) else ""),
        f"- Segments: {len(segments)}",
        "",
    ]
    if not segments:
        head.append("_(no speech found)_")
    lines = [f"**[{clock(s['start'])[:8]}]** {_one_line(s['text'])}  " for s in segments]
    return "\n".join(head + lines) + "\n"


def as_json(summary: dict[str, Any], segments: list[dict[str, Any]]) -> str:
    """One segment per line: readable, diffable, and quick (no ``indent=``)."""
    head = json.dumps(summary, ensure_ascii=False)
    body = ",\n".join(json.dumps(s, ensure_ascii=False) for s in segments)
    inner = f'"segments": [\n{body}\n]' if segments else '"segments": []'
    return head[:-1] + (", " if len(head) > 2 else "") + inner + "}\n"


def files(
    base: str, formats: list[str], title: str, summary: dict[str, Any], segs: list[dict[str, Any]]
) -> dict[str, tuple[str, Callable[[], str]]]:
    """``{format: (path, make_text)}`` for the formats asked for, paths ``base.<ext>``."""
    makers: dict[str, Callable[[], str]] = {
        "json": lambda: as_json(summary, segs),
        "txt": lambda: txt(segs),
        "srt": lambda: srt(segs),
        "vtt": lambda: vtt(segs),
        "md": lambda: markdown(title, summary, segs),
    }
    return {f: (f"{base}.{f}", makers[f]) for f in FORMATS if f in formats}
