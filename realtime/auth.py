"""Websocket authentication (session cookie or API token)."""

from channels.auth import AuthMiddlewareStack


def WebsocketAuthMiddleware(inner):  # noqa: N802 - replaced by the realtime issue's middleware
    return AuthMiddlewareStack(inner)
