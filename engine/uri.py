"""Printable store addresses: a URI shown to a person never carries its password.

Used by ``MongoStore.description`` and by every error message that names a store, so an
operator can paste console output into a ticket without leaking credentials.
"""

from __future__ import annotations

import re

# Query options whose value is a secret (TLS key passphrase, AWS session tokens...).
_SECRET_OPTION = re.compile(r"(?i)([?&](?:[a-z]*password|authmechanismproperties)=)[^&]*")


def redact_uri(uri: str) -> str:
    """``mongodb://user:secret@h/db`` -> ``mongodb://user:***@h/db`` (also ``+srv``).

    The userinfo ends at the last ``@`` before the path, so a password holding an
    unescaped ``@`` is still hidden whole. URIs without a password are returned as is
    (apart from secret query options).
    """
    scheme, sep, rest = uri.partition("://")
    if not sep:
        return uri
    # The authority ends at the first "/" or "?" after the last "@" of the userinfo.
    path_start = len(rest)
    for ch in "/?":
        pos = rest.find(ch, rest.rfind("@") + 1)
        if pos != -1:
            path_start = min(path_start, pos)
    authority, tail = rest[:path_start], rest[path_start:]
    userinfo, at, hosts = authority.rpartition("@")
    if at and ":" in userinfo:
        user = userinfo.split(":", 1)[0]
        authority = f"{user}:***@{hosts}"
    tail = _SECRET_OPTION.sub(r"\1***", tail)
    return f"{scheme}://{authority}{tail}"


def scrub(text: str, uri: str) -> str:
    """``text`` (e.g. a driver's error message) with ``uri`` and its password hidden."""
    text = text.replace(uri, redact_uri(uri))
    _, sep, rest = uri.partition("://")
    userinfo, at, _ = rest.rpartition("@") if sep else ("", "", "")
    password = userinfo.split(":", 1)[1] if at and ":" in userinfo else ""
    return text.replace(password, "***") if password else text
