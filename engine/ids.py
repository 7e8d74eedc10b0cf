"""Ids as operators type and read them: short forms, and unique prefixes.

Job and batch ids are 32 hex digits. People read the first ``SHORT_ID`` of them
(summaries, tables) and may type any unique prefix of at least ``MIN_ID_PREFIX``
characters wherever an id is asked for; a prefix that fits several ids is an error
that lists them, never a silent pick and never "0 jobs".
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from jobtui.engine.errors import ConfigError

if TYPE_CHECKING:
    from jobtui.engine.store.base import Store

SHORT_ID = 12  # what summaries and tables print: unique in practice, easy to copy
MIN_ID_PREFIX = 6
_SHOWN_CANDIDATES = 5


def short_id(value: str | None) -> str:
    return (value or "")[:SHORT_ID]


@dataclass(frozen=True)
class IdMatch:
    kind: str  # "job" or "batch"
    id: str  # the whole id


async def resolve_id(store: Store, given: str, kinds: Sequence[str]) -> IdMatch:
    """The one job or batch (of ``kinds``) whose id is ``given`` or starts with it."""
    given = given.strip()
    found: list[IdMatch] = []
    for kind in kinds:
        ids = await store.ids_with_prefix(
            given, batches=kind == "batch", limit=_SHOWN_CANDIDATES + 1
        )
        if given in ids:  # a whole id wins over longer ids it is a prefix of
            return IdMatch(kind, given)
        found += [IdMatch(kind, i) for i in ids]
    what = " or ".join(kinds)
    if not found:
        raise ConfigError("ID_NOT_FOUND", f"no {what} with id {given!r}")
    if len(given) < MIN_ID_PREFIX:
        raise ConfigError(
            "ID_TOO_SHORT",
            f"{given!r} is too short: give at least {MIN_ID_PREFIX} characters of the id",
        )
    if len(found) > 1:
        shown = ", ".join(
            f"{m.kind} {m.id[: max(SHORT_ID, len(given) + 4)]}" for m in found[:_SHOWN_CANDIDATES]
        )
        more = " and more" if len(found) > _SHOWN_CANDIDATES else ""
        raise ConfigError(
            "ID_AMBIGUOUS", f"{given!r} matches several ids: {shown}{more}; give more characters"
        )
    return found[0]
