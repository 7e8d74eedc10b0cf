"""Choose and open the store the settings name: MongoDB when a URI is set, else SQLite."""

from __future__ import annotations

from jobtui.engine.config import Settings
from jobtui.engine.store.base import Store


def make_store(settings: Settings) -> Store:
    if settings.mongodb_uri:
        from jobtui.engine.store.mongo import MongoStore

        c = settings.collections
        return MongoStore(
            settings.mongodb_uri,
            database=settings.database,
            jobs=c.jobs,
            batches=c.batches,
            logs=c.logs,
            workers=c.workers,
            logs_ttl_seconds=(settings.retention_logs_days or 0) * 86400 or None,
            legacy_type=settings.legacy_job_type,
        )
    from jobtui.engine.store.sqlite import SQLiteStore

    return SQLiteStore(settings.store_path, legacy_type=settings.legacy_job_type)


def describe_store(settings: Settings, store: Store) -> str:
    """Which store, database and collections are in use; shown by every command's
    first line and by ``doctor``, so an operator sees at once where jobs go."""
    if store.kind == "sqlite":
        return store.description
    name, source = settings.database_source
    why = {"setting": "set explicitly", "default": "the default"}.get(source, f"from {source}")
    head = "mongomock (in memory)" if store.kind == "mongomock" else f"MongoDB {settings.safe_uri}"
    c = settings.collections
    return (
        f"{head}, database {name} ({why}), collections {c.jobs}, {c.batches}, {c.logs}, {c.workers}"
    )


def store_banner(settings: Settings, store: Store) -> str:
    """The first line every command prints (after ``jobtui: ``)."""
    if store.kind == "sqlite":
        return (
            f"embedded store {store.description} "
            "(set MONGODB_URI to share a queue between machines)"
        )
    return f"store {describe_store(settings, store)}"


async def open_store(settings: Settings) -> Store:
    """Make the store and open it (raises ``StoreError`` with a stable code)."""
    store = make_store(settings)
    await store.open()
    return store
