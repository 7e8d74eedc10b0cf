"""The registry: decorator, plug-ins through entry points, type selection, backoff."""

from __future__ import annotations

import random
from typing import Any

import pytest

from jobtui.engine import registry as registry_mod
from jobtui.engine.registry import JobType, Registry, default_registry


async def _handler(ctx: Any, params: Any) -> None:
    return None


def test_default_registry_has_builtins_and_pdf_types() -> None:
    names = default_registry().names()
    for name in ("noop", "sleep", "pdf.transcribe", "pdf.markdown", "pdf.render"):
        assert name in names


def test_entry_point_plugins_load_and_a_broken_one_is_skipped(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    class EP:
        def __init__(self, name: str, fn: Any) -> None:
            self.name, self._fn = name, fn

        def load(self) -> Any:
            return self._fn

    def good(reg: Registry) -> None:
        reg.handler("plugin.ok", max_attempts=7)(_handler)

    def broken(reg: Registry) -> None:
        raise ImportError("missing dependency")

    monkeypatch.setattr(
        registry_mod, "entry_points", lambda group: [EP("broken", broken), EP("good", good)]
    )
    reg = Registry()
    assert reg.load_entry_points() == ["good"]
    jt = reg.get("plugin.ok")
    assert jt is not None and jt.max_attempts == 7


def test_select_by_glob() -> None:
    reg = Registry()
    for name in ("pdf.transcribe", "pdf.render", "noop", "session"):
        reg.handler(name)(_handler)
    assert reg.select(["pdf.*"]).names() == ["pdf.render", "pdf.transcribe"]
    assert reg.select(["pdf.render", "noop"]).names() == ["noop", "pdf.render"]
    assert reg.select(None).names() == reg.names()


def test_backoff_grows_exponentially_with_jitter_and_cap() -> None:
    jt = JobType(name="x", handler=_handler, backoff_base=2.0, backoff_max=60.0)
    rng = random.Random(1)
    for attempt, cap in [(1, 2.0), (2, 4.0), (3, 8.0), (10, 60.0)]:
        samples = [jt.backoff(attempt, rng) for _ in range(200)]
        assert all(cap / 2 <= s <= cap for s in samples)
        assert max(samples) - min(samples) > cap / 10  # jitter spreads retries
