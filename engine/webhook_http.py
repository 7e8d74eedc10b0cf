"""Webhook HTTP: the Standard Webhooks signature and one POST attempt over httpx.

engine/webhooks.py decides what to send and when; this module only signs and sends.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import hashlib
import hmac
import sys
from typing import TYPE_CHECKING, Any
from urllib.parse import unquote

if TYPE_CHECKING:
    import httpx

from jobtui.engine.uri import redact_secrets, redact_uri

RETRY_STATUSES = frozenset({408, 425, 429})  # and every 5xx; other 4xx are final


def load_httpx() -> None:
    """Import httpx (on first use, not with the engine) without its optional
    command-line client: where rich and pygments are installed (the console's), a plain
    ``import httpx`` loads them too (~100 ms, and UI libraries in a headless worker).
    Blocking ``httpx._main`` for that one import is what httpx's own fallback expects."""
    if "httpx" in sys.modules:
        return
    block = "httpx._main" not in sys.modules
    if block:
        sys.modules["httpx._main"] = None  # type: ignore[assignment]
    try:
        import httpx  # noqa: F401
    finally:
        if block:
            sys.modules.pop("httpx._main", None)


class WebhookError(Exception):
    """One attempt failed; ``retry`` says whether another attempt may help."""

    def __init__(self, message: str, retry: bool = True) -> None:
        super().__init__(message)
        self.retry = retry


def _check_url(url: str) -> None:
    if not isinstance(url, str) or any(c.isspace() or ord(c) < 32 for c in url):
        raise WebhookError(f"invalid webhook URL {redact_uri(str(url))!r}", retry=False)
    scheme, sep, rest = url.partition("://")
    if scheme.lower() not in ("http", "https") or not sep or not rest.split("/", 1)[0]:
        raise WebhookError(
            f"webhook URL must be http(s)://host/...: {redact_uri(url)!r}", retry=False
        )


async def post(
    client: httpx.AsyncClient, url: str, body: bytes, headers: dict[str, str], timeout: float
) -> int:
    """POST ``body`` to ``url`` and return the response status. Raises ``WebhookError``
    on a bad URL or header (final) or a connection problem or timeout (retryable)."""
    _check_url(url)
    load_httpx()
    import httpx

    try:
        # user:password in the URL becomes Basic auth, and leaves the URL: httpx logs
        # the URL of every request (INFO), which must not show the password.
        target = httpx.URL(url)
        auth: dict[str, Any] = {}
        if target.userinfo:
            user, _, password = target.userinfo.decode("ascii").partition(":")
            target = target.copy_with(userinfo=b"")
            if not any(k.lower() == "authorization" for k in headers):  # the webhook's wins
                auth["auth"] = httpx.BasicAuth(unquote(user), unquote(password))
        async with asyncio.timeout(timeout):  # the whole attempt, not each phase
            response = await client.post(target, content=body, headers=headers, **auth)
    except TimeoutError:
        raise WebhookError(f"no response within {timeout:g}s") from None
    except (httpx.InvalidURL, httpx.UnsupportedProtocol, httpx.LocalProtocolError) as exc:
        raise WebhookError(redact_secrets(f"{type(exc).__name__}: {exc}"), retry=False) from None
    except httpx.TransportError as exc:
        raise WebhookError(redact_secrets(f"{type(exc).__name__}: {exc}")) from None
    except (ValueError, TypeError, UnicodeError) as exc:  # a header httpx cannot send
        raise WebhookError(f"cannot send: {type(exc).__name__}", retry=False) from None
    return response.status_code


def secret_key(secret: str) -> bytes:
    """The HMAC key of a secret: ``whsec_<base64>`` decoded, else the UTF-8 bytes."""
    if secret.startswith("whsec_"):
        try:
            raw = secret.removeprefix("whsec_")
            return base64.b64decode(raw + "=" * (-len(raw) % 4), validate=True)
        except (binascii.Error, ValueError):
            raise WebhookError(
                "webhook secret whsec_... is not valid base64", retry=False
            ) from None
    return secret.encode("utf-8")


def sign(secret: str, msg_id: str, timestamp: int, body: bytes) -> str:
    """The ``webhook-signature`` value: ``v1,<base64 HMAC-SHA256 of "id.timestamp.body">``."""
    signed = f"{msg_id}.{timestamp}.".encode() + body
    digest = hmac.new(secret_key(secret), signed, hashlib.sha256).digest()
    return "v1," + base64.b64encode(digest).decode("ascii")
