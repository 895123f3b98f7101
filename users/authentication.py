"""DRF authentication by API token: ``Authorization: Bearer np_...`` (or ``Token np_...``).
Failed attempts are counted per client address (``users.lockout``)."""

from __future__ import annotations

from typing import Any

from django.http import HttpRequest
from rest_framework import authentication, exceptions
from rest_framework.request import Request

from .lockout import client_address, token_failure_record, token_lockout_remaining
from .models import User
from .services import token_authenticate


def request_user(request: Request | HttpRequest) -> User:
    """The signed-in user of a request to a view behind ``IsAuthenticated`` (the API's default
    permission), typed as ``User`` for the services it is handed to. An anonymous request can
    only get here through a view that dropped that permission: it is refused as unauthenticated
    (401), never served as somebody."""
    user = request.user
    if not isinstance(user, User):
        raise exceptions.NotAuthenticated()
    return user


class ApiTokenAuthentication(authentication.BaseAuthentication):
    keywords = ("bearer", "token")

    def authenticate(self, request: Any) -> tuple[Any, Any] | None:
        header = authentication.get_authorization_header(request).decode("latin-1").split()
        if not header or header[0].lower() not in self.keywords:
            return None
        if len(header) != 2:
            raise exceptions.AuthenticationFailed(
                "Authorization header must be '<scheme> <token>'."
            )
        address = client_address(request) or "unknown"
        wait = token_lockout_remaining(address)
        if wait is not None:
            raise exceptions.Throttled(
                wait=wait, detail="Too many failed token authentications from this address."
            )
        token = token_authenticate(header[1])
        if token is None:
            token_failure_record(address)
            raise exceptions.AuthenticationFailed("Invalid, expired or revoked API token.")
        return token.user, token

    def authenticate_header(self, request: Any) -> str:
        return 'Bearer realm="api"'
