"""The one place that knows how the MongoDB stand-ins differ from a real server.

``MongoStore`` talks to three things: a real MongoDB through PyMongo's
``AsyncMongoClient``, ``mongomock-motor`` in fast unit tests, and the ``nx-27017``
wire server in cross-process tests. Everything that differs between them at the
*call* level lives here, so the store itself reads as plain PyMongo:

* mongomock-motor: ``aggregate`` returns a cursor instead of a coroutine, ``close()``
  is synchronous, datetimes come back naive, there is no ``watch()``, and
  ``bulk_write`` rejects PyMongo 4.20's ``UpdateOne``, and ``update_many`` shares
  one sub-document object among the documents it sets it on.
* nx-27017: ``$push`` of sub-documents stores JSON strings (legacy ``logs`` arrays);
  a datetime written by ``$set`` on a top-level or dotted path is stored as text
  (``'2026-11-28 18:30:58.092000'``, UTC) while inserted or nested ones stay datetimes;
  ``$group`` may hand back a datetime accumulator as ``'{"$date": "..."}'`` text, and
  its ``$min``/``$max`` fail outright when a group mixes the two representations.
  Its change streams answer ``getMore`` at once instead of waiting for news, so an
  idle stream would spin (~1,000 round trips a second); ``paced_changes`` pauses.
  Its index listing loses ``-1`` directions, and ``hello``'s ``localTime`` is naive.

(The nx-27017 *query-shape* limits are documented in ``mongo.py``'s docstring: its
filters are valid MongoDB, just written in a form nx also evaluates correctly.)
"""

from __future__ import annotations

import asyncio
import copy
import inspect
import json
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any, cast

from pymongo.errors import OperationFailure


def is_mongomock(client: object) -> bool:
    """True for mongomock-motor's client. Its class masquerades as Motor's (even
    ``__module__``), so look for the real class underneath."""
    return any(c.__module__.startswith("mongomock") for c in type(client).__mro__)


async def maybe_await(value: Any) -> Any:
    """Await coroutines (PyMongo async); pass plain values (mongomock-motor) through."""
    if inspect.isawaitable(value):
        return await value
    return value


async def aggregate(
    collection: Any,
    pipeline: list[dict[str, Any]],
    *,
    fallback: list[dict[str, Any]] | None = None,
) -> list[dict[str, Any]]:
    """Run an aggregation and return all rows, datetimes made aware.

    ``fallback`` is a simpler pipeline (no datetime ``$min``/``$max``) to run when the
    server rejects the first one; only nx-27017 does, for mixed datetime storage.
    """
    try:
        cursor = await maybe_await(collection.aggregate(pipeline))
        rows = await cursor.to_list(None)
    except OperationFailure:
        if fallback is None:
            raise
        cursor = await maybe_await(collection.aggregate(fallback))
        rows = await cursor.to_list(None)
    return [fix_datetimes(row) for row in rows]


async def update_each(collection: Any, updates: Sequence[tuple[Any, Any]]) -> int:
    """One unordered ``bulk_write`` of ``UpdateOne(filter, update)``s; how many matched.

    mongomock rejects PyMongo 4.20's ``UpdateOne`` (its ``sort`` argument): there each
    update is sent alone, and their matches summed, which is all a bulk reports too.
    """
    if is_mongomock(collection.database.client):
        matched = 0
        for flt, update in updates:
            matched += (await collection.update_one(flt, update)).matched_count
        return matched
    from pymongo import UpdateOne

    result = await collection.bulk_write([UpdateOne(f, u) for f, u in updates], ordered=False)
    return int(result.matched_count)


async def update_many(collection: Any, flt: Any, update: Any) -> int:
    """``update_many``; how many matched.

    mongomock puts one and the same sub-document object into every document an
    ``update_many`` sets it on, so a later dotted update of one (a heartbeat's
    ``lease.expires_at``) shows in all: there each document gets its own copy.
    """
    if not is_mongomock(collection.database.client):
        return int((await collection.update_many(flt, update)).matched_count)
    ids = [doc["_id"] for doc in await collection.find(flt, {"_id": 1}).to_list(None)]
    matched = 0
    for doc_id in ids:
        one = {"$and": [flt, {"_id": doc_id}]}
        matched += (await collection.update_one(one, copy.deepcopy(update))).matched_count
    return matched


async def close_client(client: Any) -> None:
    await maybe_await(client.close())


# An empty getMore that came back faster than this did not wait for news.
_NO_AWAIT_S = 0.05
_IDLE_PAUSE_S = 0.25


async def paced_changes(
    stream: Any, ready: Callable[[], Awaitable[object]] | None = None
) -> AsyncIterator[Mapping[str, Any]]:
    """The events of a change stream, without busy-polling servers that do not block.

    A real server holds an empty ``getMore`` for ``max_await_time_ms``; when one comes
    back empty sooner, wait a little before asking again (a wake-up then arrives up to
    ``_IDLE_PAUSE_S`` late, which polling workers tolerate anyway). ``ready`` is
    awaited before each read (see ``Store.watch_wakeups``).
    """
    loop = asyncio.get_running_loop()
    while stream.alive:
        if ready is not None:
            await ready()
        started = loop.time()
        change = await stream.try_next()
        if change is not None:
            yield change
        elif loop.time() - started < _NO_AWAIT_S:
            await asyncio.sleep(_IDLE_PAUSE_S)


def same_index_keys(have: Sequence[tuple[str, int]], want: Sequence[tuple[str, int]]) -> bool:
    """nx-27017 reports every index key as ascending (it drops ``-1``)."""
    if tuple(have) == tuple(want):
        return True
    return [f for f, _ in have] == [f for f, _ in want] and all(d == 1 for _, d in have)


def supports_watch(collection: Any) -> bool:
    """mongomock has no change streams at all (attribute access raises)."""
    try:
        return callable(getattr(type(collection), "watch", None)) and not is_mongomock(
            collection.database.client
        )
    except Exception:  # noqa: BLE001 - any oddity means "no push"
        return False


def _parse_text_datetime(value: str) -> datetime | str:
    text = value
    if text.startswith('{"$date"'):
        try:
            text = json.loads(text)["$date"]
        except (ValueError, KeyError, TypeError):
            return value
        if isinstance(text, (int, float)):
            return datetime.fromtimestamp(text / 1000, UTC)
    try:
        parsed = datetime.fromisoformat(str(text))
    except ValueError:
        return value
    return parsed.replace(tzinfo=UTC) if parsed.tzinfo is None else parsed.astimezone(UTC)


def fix_datetimes(value: Any) -> Any:
    """Recursively make datetimes timezone-aware UTC (naive ones *are* UTC in BSON).

    Also turns nx-27017's ``'{"$date": ...}'`` accumulator text back into a datetime.
    Plain ISO-looking strings are left alone here (user data may look like dates);
    pydantic parses those where the model declares a datetime.
    """
    if isinstance(value, datetime):
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)
    if isinstance(value, dict):
        return {k: fix_datetimes(v) for k, v in value.items()}
    if isinstance(value, list):
        return [fix_datetimes(v) for v in value]
    if isinstance(value, str) and value.startswith('{"$date"'):
        return _parse_text_datetime(value)
    return value


def parse_text_datetimes(doc: dict[str, Any], paths: Iterable[str]) -> None:
    """Turn nx-27017's text datetimes back into aware datetimes, at known paths only
    (``"lease.expires_at"`` reaches into a sub-document)."""
    for path in paths:
        *parents, leaf = path.split(".")
        target: Any = doc
        for part in parents:
            target = target.get(part) if isinstance(target, dict) else None
        if isinstance(target, dict) and isinstance(target.get(leaf), str):
            target[leaf] = as_datetime(target[leaf]) or target[leaf]


def fix_legacy_logs(doc: dict[str, Any]) -> None:
    """nx-27017 stores ``$push``-ed sub-documents as JSON text; decode them in place."""
    logs = doc.get("logs")
    if not isinstance(logs, list):
        if logs is not None:
            doc["logs"] = None
        return
    fixed: list[dict[str, Any]] = []
    for entry in logs:
        if isinstance(entry, str):
            try:
                entry = json.loads(entry)
            except ValueError:
                entry = {"message": entry}
            if isinstance(entry, dict):  # its datetimes come back as {"$date": "..."}
                entry = {
                    k: _parse_text_datetime(json.dumps(v)) if _is_date(v) else v
                    for k, v in entry.items()
                }
        if isinstance(entry, dict):
            fixed.append(fix_datetimes(entry))
        else:
            fixed.append({"message": str(entry)})
    doc["logs"] = fixed


def _is_date(value: Any) -> bool:
    return isinstance(value, dict) and len(value) == 1 and "$date" in value


def as_datetime(value: Any) -> datetime | None:
    """A datetime from whatever a backend returned for one (None stays None)."""
    if value is None or isinstance(value, datetime):
        return cast("datetime | None", fix_datetimes(value))
    if isinstance(value, str):
        parsed = _parse_text_datetime(value)
        return parsed if isinstance(parsed, datetime) else None
    return None
