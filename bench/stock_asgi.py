"""The baseline of ``bench/ws_throughput.py``: stock Channels, one group membership per
consumer, ``group_send`` fans out through Redis to every consumer's channel. Nothing of
the project's real-time code is used; the project's settings provide the same
channels_redis layer (hosts, capacity, timeouts) the real server uses.

Serve with ``daphne bench.stock_asgi:application``; clients connect to ``/ws/stock/``
and get ``{"type":"subscribed"}`` once their consumer is in the group ``bench.stock``.
"""

from __future__ import annotations

import os
from typing import Any

from django.core.asgi import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "notifyplatform.settings")
django_asgi_app = get_asgi_application()

from channels.generic.websocket import AsyncWebsocketConsumer  # noqa: E402
from channels.routing import ProtocolTypeRouter, URLRouter  # noqa: E402
from django.urls import path  # noqa: E402

STOCK_GROUP = "bench.stock"


class StockConsumer(AsyncWebsocketConsumer):
    async def connect(self) -> None:
        await self.accept()
        await self.channel_layer.group_add(STOCK_GROUP, self.channel_name)
        await self.send(text_data='{"type":"subscribed"}')

    async def disconnect(self, code: int) -> None:
        await self.channel_layer.group_discard(STOCK_GROUP, self.channel_name)

    async def rt_event(self, message: dict[str, Any]) -> None:
        # the text is serialised once by the publisher, as in the real server
        await self.send(text_data=message["text"])

    async def websocket_receive(self, message: dict[str, Any]) -> None:
        text = message.get("text") or ""
        if text.startswith('{"type":"ping"'):
            await self.send(text_data='{"type":"pong"}')


application = ProtocolTypeRouter(
    {
        "http": django_asgi_app,
        "websocket": URLRouter([path("ws/stock/", StockConsumer.as_asgi())]),
    }
)
