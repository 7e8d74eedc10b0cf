"""Printable store addresses: a URI shown to a person never carries its password.

Used by ``MongoStore.description`` and by every error message that names a store, so an
operator can paste console output into a ticket without leaking credentials.
"""

from __future__ import annotations

import re
from urllib.parse import unquote

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


def uri_database(uri: str) -> str | None:
    """The database a MongoDB URI names in its path (``mongodb://h/mydb`` -> ``mydb``)."""
    _, sep, rest = uri.partition("://")
    if not sep:
        return None
    after_userinfo = rest[rest.rfind("@") + 1 :]
    _, slash, path = after_userinfo.partition("/")
    name = unquote(path.partition("?")[0]) if slash else ""
    return name or None


# ``scheme://user:password@`` anywhere in a text: the password ends at the last "@" of
# the run of non-space characters (an unescaped "@" in it is still hidden whole).
_USERINFO = re.compile(r"(?i)\b([a-z][a-z0-9+.-]*://[^\s:/@]*):\S*@")
# ``password: x``, ``api_token=x``, ``"secret": "x"``: keys that name a secret. The
# words cover what ``redact.is_secret_key`` hides in structured data (a test checks
# both agree), so a header or parameter it hides is hidden in an error message too.
_SECRET_KEY = re.compile(
    r"""(?ix)
    (["']?\b[\w.-]*(?:password|passwd|passphrase|pwd|token|secret|credential|cookie
    |api[_-]?key|private[_-]?key|access[_-]?key|auth(?:orization)?(?![a-z]))[\w-]*["']?)
    (\s*[:=]\s*)
    ("[^"\n]*"|'[^'\n]*'|[^\s,;}&]+)
    """
)


def redact_secrets(text: str) -> str:
    """``text`` with URI passwords, secret query options and ``password: x``-style
    values replaced by ``***``. Applied to every config and store error message."""
    text = _USERINFO.sub(r"\1:***@", text)
    text = _SECRET_OPTION.sub(r"\1***", text)
    return _SECRET_KEY.sub(lambda m: f"{m.group(1)}{m.group(2)}***", text)
