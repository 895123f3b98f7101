"""In-app delivery: no network. The pipeline stores and publishes the notification;
the adapter only acknowledges it, so in-app goes through the same routing, attempt
bookkeeping and statistics as every other channel."""

from __future__ import annotations

from providers.base import BaseAdapter
from providers.types import OutboundMessage, SendResult


class InAppAdapter(BaseAdapter):
    kind = "in_app"
    channel = "in_app"

    def send(self, message: OutboundMessage) -> SendResult:
        return SendResult(
            provider_message_id=str(message.delivery_id),
            response={"stored": True, "user_id": message.user_id},
        )

    async def asend(self, message: OutboundMessage) -> SendResult:
        return self.send(message)  # nothing to wait for: no thread either
