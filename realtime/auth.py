"""Websocket authentication: an API token, else the session cookie, else anonymous.

A token comes from ``Authorization: Bearer np_...`` (or ``Token np_...``) or, because
browsers cannot set headers on a websocket, from the ``token`` query parameter. A
token that is presented but not usable marks the scope (``np_auth_error``) and the
consumer closes with 4401 after accepting: a close code needs an open socket, a
refused handshake only shows the client an HTTP 403.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import parse_qs

from channels.auth import AuthMiddleware
from channels.db import database_sync_to_async
from channels.sessions import CookieMiddleware, SessionMiddleware
from django.contrib.auth.models import AnonymousUser

from users.lockout import token_failure_record, token_lockout_remaining
from users.services import token_authenticate

AUTH_SCHEMES = {b"bearer", b"token"}


def presented_token(scope: dict[str, Any]) -> str | None:
    """The raw token a client presented, or None when it presented none."""
    for name, value in scope.get("headers", []):
        if name == b"authorization":
            parts = value.split()
            if len(parts) == 2 and parts[0].lower() in AUTH_SCHEMES:
                return parts[1].decode("latin-1")
            return value.decode("latin-1")  # malformed: treated as a bad token
    query = parse_qs(scope.get("query_string", b"").decode("latin-1"))
    if "token" in query:
        return query["token"][0]
    return None


def _authenticate(raw: str, address: str) -> Any:
    """The token, or None; failures count towards the address's lockout (users.lockout),
    and a locked-out address gets None without a lookup, like the API's 429."""
    if token_lockout_remaining(address) is not None:
        return None
    token = token_authenticate(raw)
    if token is None:
        token_failure_record(address)
    return token


class TokenOrSessionAuthMiddleware:
    def __init__(self, inner: Any) -> None:
        self.inner = inner
        self.session_auth = AuthMiddleware(inner)

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> Any:
        raw = presented_token(scope)
        if raw is None:
            return await self.session_auth(scope, receive, send)
        client = scope.get("client") or ("unknown", 0)
        token = await database_sync_to_async(_authenticate)(raw, str(client[0]))
        if token is None:
            scope = dict(scope, user=AnonymousUser(), np_auth_error="TOKEN_INVALID")
        else:
            scope = dict(scope, user=token.user, np_api_token_id=token.pk)
        return await self.inner(scope, receive, send)


def WebsocketAuthMiddleware(inner: Any) -> Any:  # noqa: N802 - a middleware "stack" factory
    return CookieMiddleware(SessionMiddleware(TokenOrSessionAuthMiddleware(inner)))
