"""The registry: decorator, plug-ins through entry points (and a source checkout's),
type selection, file types, what the worker processes preload, backoff."""

from __future__ import annotations

import logging
import random
from pathlib import Path
from typing import Any

import pytest

from jobtui.engine import registry as registry_mod
from jobtui.engine.registry import FileTypes, JobType, Registry, default_registry


async def _handler(ctx: Any, params: Any) -> None:
    return None


def test_default_registry_has_builtins_and_pdf_types() -> None:
    names = default_registry().names()
    for name in ("noop", "sleep", "pdf.transcribe", "pdf.markdown", "pdf.render"):
        assert name in names


def test_builtin_types_register_once_through_entry_points(
    caplog: pytest.LogCaptureFixture,
) -> None:
    with caplog.at_level(logging.WARNING, logger="jobtui.engine.registry"):
        reg = default_registry()
    assert "registered again" not in caplog.text  # no type is registered twice
    assert {"builtin", "pdf"} <= set(registry_mod.Registry().load_entry_points())
    assert reg.get("pdf.transcribe") is not None


def test_a_source_checkout_uses_its_own_pyproject_entry_points(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """Running from a checkout, the installed jobtui's entry points (maybe another
    checkout's) are replaced by this tree's pyproject table; other distributions'
    entry points still load."""
    root = registry_mod.source_tree()
    assert root is not None and (root / "engine" / "registry.py").is_file()

    class Dist:
        def __init__(self, name: str) -> None:
            self.metadata = {"Name": name}

    class EP:
        def __init__(self, name: str, fn: Any, dist: str) -> None:
            self.name, self._fn, self.dist = name, fn, Dist(dist)

        def load(self) -> Any:
            return self._fn

    def stale(reg: Registry) -> None:
        reg.handler("stale.installed")(_handler)

    def other(reg: Registry) -> None:
        reg.handler("other.plugin")(_handler)

    monkeypatch.setattr(
        registry_mod,
        "entry_points",
        lambda group: [EP("pdf", stale, "jobtui"), EP("other", other, "other-dist")],
    )
    fake = tmp_path / "checkout"
    (fake / "engine").mkdir(parents=True)
    (fake / "pyproject.toml").write_text(
        '[project]\nname = "jobtui"\n'
        '[project.entry-points."jobtui.handlers"]\n'
        'builtin = "jobtui.engine.builtin:register"\n',
        encoding="utf-8",
    )
    monkeypatch.setattr(registry_mod, "source_tree", lambda: fake)
    reg = Registry()
    assert reg.load_entry_points() == ["builtin", "other"]
    assert "stale.installed" not in reg and "other.plugin" in reg and "noop" in reg
    # Installed (no source tree): the installed metadata is all there is.
    monkeypatch.setattr(registry_mod, "source_tree", lambda: None)
    reg = Registry()
    assert reg.load_entry_points() == ["pdf", "other"] and "stale.installed" in reg


def test_type_for_file_by_extension_then_content() -> None:
    reg = Registry()
    reg.handler("a.auto", files=FileTypes(frozenset({".abc"}), sniff=lambda h: h[:3] == b"ABC"))(
        _handler
    )
    reg.handler("a.named", files=FileTypes(frozenset({".abc", ".xyz"}), auto=False))(_handler)
    reg.handler("plain")(_handler)  # declares no files
    auto = reg.type_for_file("/d/X.ABC")
    assert auto is not None and auto.name == "a.auto"  # extension, any case
    assert reg.type_for_file("/d/x.xyz") is None  # only named explicitly
    assert reg.type_for_file("/d/noext") is None
    by_head = reg.type_for_file("/d/noext", b"ABC rest")
    assert by_head is not None and by_head.name == "a.auto"
    assert reg.sniffs
    named = reg.get("a.named")
    assert named is not None and named.accepts("/d/x.xyz") and not named.accepts("/d/x.txt")
    plain = reg.get("plain")
    assert plain is not None and plain.accepts("/d/anything.txt")


def test_a_broken_sniffer_takes_nothing_and_does_not_raise() -> None:
    def boom(head: bytes) -> bool:
        raise ValueError("bug in a plug-in")

    reg = Registry()
    reg.handler("x", files=FileTypes(frozenset({".x"}), sniff=boom))(_handler)
    assert reg.type_for_file("/d/file", b"data") is None


def _warm_a() -> None:
    pass


def test_worker_preload_warm_and_checks_are_unions_without_repeats() -> None:
    async def check(ctx: Any) -> list[Any]:
        return []

    reg = Registry()
    reg.handler("one", worker_preload=["m1", "m2"], worker_warm=_warm_a, checks=[check])(_handler)
    reg.handler("two", worker_preload=["m2", "m3"], worker_warm=_warm_a, checks=[check])(_handler)
    reg.handler("three")(_handler)
    assert reg.worker_preload() == ("m1", "m2", "m3")
    assert reg.worker_warm() == (_warm_a,)
    assert reg.checks() == [check]
    assert reg.select(["three"]).worker_preload() == ()


def test_the_core_names_no_job_type() -> None:
    """worker, procpool, registry, enqueue and doctor name no workload: what a type
    needs is declared on its JobType."""
    root = Path(registry_mod.__file__).resolve().parent
    for name in (
        "worker",
        "procpool",
        "registry",
        "enqueue",
        "scan",
        "doctor",
        "checks",
        "preload",
    ):
        text = (root / f"{name}.py").read_text(encoding="utf-8").lower()
        for word in ("pdf", "pymupdf", "tesseract", "image.ocr"):
            assert word not in text, f"engine/{name}.py names {word!r}"


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
    monkeypatch.setattr(registry_mod, "source_tree", lambda: None)  # as installed
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
