"""Shared fixtures: every storage backend behind one ``store`` fixture, and the
nx-27017 wire server that multi-process tests share.

``STORE_FACTORIES`` is the one list of backends the contract suite runs on: a name ->
async factory that returns an *opened* ``Store``. Each store must also offer the
test-only hook ``_insert_raw_job(doc: dict)`` (store a document exactly as given, e.g.
a legacy seed job) so the contract tests stay backend-agnostic. To add a backend,
add an entry to ``STORE_FACTORIES`` (and a mark in ``_BACKEND_MARKS`` if it needs one).
"""

from __future__ import annotations

import os
import uuid
import warnings
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Iterator
from pathlib import Path

import pytest

from jobtui.engine.store.base import Store
from jobtui.engine.store.mongo import MongoStore
from jobtui.engine.store.sqlite import SQLiteStore
from tests.nxserver import nx_executable, nx_server

StoreFactory = Callable[[pytest.FixtureRequest, Path], Awaitable[Store]]

MONGODB_URI_ENV = "JOBTUI_TEST_MONGODB_URI"


def _fresh_db_name() -> str:
    return f"jobtui_test_{uuid.uuid4().hex[:12]}"


async def _mongomock(request: pytest.FixtureRequest, tmp_path: Path) -> Store:
    store = MongoStore.in_memory(database=_fresh_db_name())
    await store.open()
    return store


async def _nx(request: pytest.FixtureRequest, tmp_path: Path) -> Store:
    uri = request.getfixturevalue("nx_uri")
    store = MongoStore(uri, database=_fresh_db_name())
    await store.open()
    return store


async def _mongodb(request: pytest.FixtureRequest, tmp_path: Path) -> Store:
    store = MongoStore(os.environ[MONGODB_URI_ENV], database=_fresh_db_name())
    await store.open()
    return store


async def _sqlite(request: pytest.FixtureRequest, tmp_path: Path) -> Store:
    store = SQLiteStore(tmp_path / "store" / "jobtui.db")  # a fresh file per test
    await store.open()
    return store


#: name -> async factory(request, tmp_path) returning an opened store.
STORE_FACTORIES: dict[str, StoreFactory] = {
    "sqlite": _sqlite,
    "mongomock": _mongomock,
    "nx": _nx,
}
if os.environ.get(MONGODB_URI_ENV):
    STORE_FACTORIES["mongodb"] = _mongodb

_BACKEND_MARKS: dict[str, list[pytest.MarkDecorator]] = {"mongodb": [pytest.mark.mongodb]}


def _store_params(names: Iterable[str] = STORE_FACTORIES) -> list[object]:
    return [pytest.param(name, id=name, marks=_BACKEND_MARKS.get(name, [])) for name in names]


@pytest.fixture(params=_store_params())
async def store(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Store]:
    """An opened, empty store of each backend in ``STORE_FACTORIES``."""
    s = await STORE_FACTORIES[request.param](request, tmp_path)
    try:
        yield s
    finally:
        await _dispose(s)


#: The MongoDB backends among ``STORE_FACTORIES`` (for what only MongoStore has).
MONGO_BACKENDS = [name for name in ("mongomock", "nx", "mongodb") if name in STORE_FACTORIES]


@pytest.fixture(params=_store_params(MONGO_BACKENDS))
async def mongo_store(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[MongoStore]:
    """An opened, empty MongoStore of each MongoDB backend."""
    s = await STORE_FACTORIES[request.param](request, tmp_path)
    assert isinstance(s, MongoStore)
    try:
        yield s
    finally:
        await _dispose(s)


async def _dispose(s: Store) -> None:
    if isinstance(s, MongoStore) and s.kind != "mongomock":
        try:  # a real server keeps databases around; nx keeps one file each
            await s._client.drop_database(s.database_name)
        except Exception as exc:  # noqa: BLE001 - cleanup is best effort
            warnings.warn(f"could not drop test database: {exc}", stacklevel=1)
    await s.close()


@pytest.fixture
async def sqlite_store(tmp_path: Path) -> AsyncIterator[SQLiteStore]:
    """An opened, empty embedded store (the console tests' ``store``)."""
    s = SQLiteStore(tmp_path / "jobs.db")
    await s.open()
    try:
        yield s
    finally:
        await s.close()


@pytest.fixture
def console_config_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The console's settings (theme, last folder) in the test's own folder; console
    test modules use it for every test (``pytestmark``)."""
    folder = tmp_path / "config"
    monkeypatch.setenv("JOBTUI_CONFIG_DIR", str(folder))
    return folder


@pytest.fixture
def store_kind(store: Store) -> str:
    return store.kind


# -- the nx-27017 wire server ---------------------------------------------------


@pytest.fixture(scope="session")
def nx_uri(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """Base URI (``mongodb://127.0.0.1:<port>``) of an nx-27017 server for this session.

    Runs in the foreground as our child (``tests/nxserver.py``); ``--data-dir`` gives
    every database name its own SQLite file, so tests isolate by a fresh database name.
    """
    if nx_executable() is None:
        pytest.skip("nx-27017 is not installed")
    with nx_server(tmp_path_factory.mktemp("nx")) as uri:
        yield uri


# -- logging: what a command's configure() sets up ends with its test ----------------


@pytest.fixture(autouse=True)
def _restore_logging() -> Iterator[None]:
    """``jobtui.tui.cli.main`` configures process logging (root handler and levels, the
    ``jobtui`` logger's level, warnings captured), as a real command must; in one test
    process that would leak into later tests (caplog seeing nothing below WARNING,
    log lines in another test's stderr). Put it back after each test."""
    import logging

    root = logging.getLogger()
    names = ["jobtui", "httpx", "httpcore", "pymongo", "asyncio", "aiosqlite", "markdown_it"]
    saved = (list(root.handlers), root.level, {n: logging.getLogger(n).level for n in names})
    yield
    handlers, level, levels = saved
    root.handlers[:] = handlers
    root.setLevel(level)
    for n, lvl in levels.items():
        logging.getLogger(n).setLevel(lvl)
    logging.captureWarnings(False)
