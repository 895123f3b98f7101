"""Which web pages may open a websocket: Origins compared by scheme, host and port.

A browser always sends ``Origin`` on a websocket handshake, and sends the site's session
cookie along whatever page opened the socket, so a cookie-authenticated connection is
only as safe as its Origin check (cross-site websocket hijacking). Rules, in order:

1. An ``Origin`` header, whatever the authentication, must be one of the allowed origins
   (scheme, host and port all equal; default ports filled in): the page that asks must be
   ours, so ``http://localhost:9999`` cannot drive a user's token either.
2. No ``Origin``: a client that is not a browser. Allowed with an API token (header or
   ``?token=``; a bad token is then closed with 4401 by the consumer) and anonymously
   (public events only); refused when the connection would be authenticated by the
   session cookie, which only a browser holds.

Allowed origins: the request's own origin (``ws``→``http``, ``wss``→``https``, with its
``Host``) when that host is in ``ALLOWED_HOSTS`` (a same-origin page, e.g. the demo page),
the origin of ``NP_PUBLIC_BASE_URL``, and every origin in ``NP_WS_ALLOWED_ORIGINS``.
A refused handshake is answered 403.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

from channels.security.websocket import WebsocketDenier
from django.conf import settings
from django.http.request import split_domain_port, validate_host

DEFAULT_PORTS = {"http": 80, "https": 443, "ws": 80, "wss": 443}

Origin = tuple[str, str, int]


def parse_origin(value: str) -> Origin | None:
    """(scheme, host, port) of an origin or URL, or None when it is not one."""
    try:
        parts = urlsplit(value.strip())
        port = parts.port
    except ValueError:
        return None
    scheme = parts.scheme.lower()
    if scheme not in DEFAULT_PORTS or not parts.hostname:
        return None
    return scheme, parts.hostname.lower(), port or DEFAULT_PORTS[scheme]


def configured_origins() -> set[Origin]:
    origins = [getattr(settings, "NP_PUBLIC_BASE_URL", "")]
    origins += list(getattr(settings, "NP_WS_ALLOWED_ORIGINS", []))
    return {parsed for parsed in map(parse_origin, origins) if parsed is not None}


def _header(scope: dict[str, Any], name: bytes) -> str | None:
    for key, value in scope.get("headers", []):
        if key == name:
            return value.decode("latin-1")
    return None


def own_origin(scope: dict[str, Any]) -> Origin | None:
    """The origin of a page served by this server under the handshake's Host."""
    host = _header(scope, b"host")
    if not host:
        return None
    domain, _port = split_domain_port(host)
    if not domain or not validate_host(domain, settings.ALLOWED_HOSTS):
        return None
    scheme = "https" if scope.get("scheme") in ("wss", "https") else "http"
    return parse_origin(f"{scheme}://{host}")


def origin_allowed(scope: dict[str, Any]) -> bool:
    origin = _header(scope, b"origin")
    if origin is None:
        # not a browser: fine unless only the session cookie would authenticate it
        user = scope.get("user")
        by_session = (
            user is not None
            and getattr(user, "is_authenticated", False)
            and "np_api_token_id" not in scope
        )
        return not by_session
    parsed = parse_origin(origin)
    if parsed is None:  # "null" (sandboxed frames, file:// pages) or garbage
        return False
    return parsed == own_origin(scope) or parsed in configured_origins()


class OriginCheckMiddleware:
    """Placed inside the auth middleware: it needs to know how the client authenticated."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> Any:
        if scope["type"] == "websocket" and not origin_allowed(scope):
            return await WebsocketDenier()(scope, receive, send)
        return await self.inner(scope, receive, send)
