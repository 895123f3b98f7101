"""ASGI entry point: HTTP through Django, websockets through Channels."""

import os

from django.core.asgi import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "notifyplatform.settings")
# Django must be set up before anything imports models.
django_asgi_app = get_asgi_application()

from channels.routing import ProtocolTypeRouter, URLRouter  # noqa: E402

from notifyplatform import accesslog  # noqa: E402
from realtime.auth import WebsocketAuthMiddleware  # noqa: E402
from realtime.origin import OriginCheckMiddleware  # noqa: E402
from realtime.routing import websocket_urlpatterns  # noqa: E402

# daphne's access log must not show invitation or API tokens (see accesslog).
accesslog.install()

application = ProtocolTypeRouter(
    {
        "http": django_asgi_app,
        # the Origin check needs to know how the client authenticated: inside the auth
        "websocket": WebsocketAuthMiddleware(
            OriginCheckMiddleware(URLRouter(websocket_urlpatterns))
        ),
    }
)
