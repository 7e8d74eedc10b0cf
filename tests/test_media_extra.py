"""The audio plug-in without its extra: no types registered, and doctor says how to
get them. Runs whether or not the extra is installed (its absence is simulated)."""

from __future__ import annotations

import importlib.util
from typing import Any

import pytest

from jobtui.engine.checks import CheckContext
from jobtui.engine.config import Settings
from jobtui.engine.doctor import type_checks
from jobtui.engine.processors import media
from jobtui.engine.registry import Registry


async def test_without_the_extra_nothing_registers_and_doctor_says_how(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    real = importlib.util.find_spec

    def find_spec(name: str, *args: Any) -> Any:
        return None if name in ("faster_whisper", "av") else real(name, *args)

    monkeypatch.setattr(importlib.util, "find_spec", find_spec)
    registry = Registry()
    media.register(registry)
    assert registry.names() == []
    assert media.missing() == ["faster_whisper", "av"]
    selected = registry.select(["pdf.*"])  # doctor looks at the served selection
    lines = [c.line() for c in await type_checks(CheckContext(Settings(), selected))]
    assert lines == [
        "ok   audio        audio.transcribe, video.transcribe, video.slides not installed "
        "(faster_whisper, av missing): pip install 'jobtui[audio]' (faster-whisper and PyAV)"
    ]


async def test_with_the_extra_the_three_types_register() -> None:
    pytest.importorskip("faster_whisper")
    pytest.importorskip("av")
    registry = Registry()
    media.register(registry)
    assert registry.names() == ["audio.transcribe", "video.slides", "video.transcribe"]
    assert registry.hints() == {}
    assert registry.type_for_file("x/Talk.OPUS").name == "audio.transcribe"  # type: ignore[union-attr]
    assert registry.type_for_file("x/lecture.mkv").name == "video.transcribe"  # type: ignore[union-attr]
