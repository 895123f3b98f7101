"""Logs each message instead of sending it: the demo's stand-in for any channel.

A console delivery is ``sent`` (the console provider took it) and never more: it has no
receipts, so nothing moves it to ``delivered``, and its response says that it reached
nobody (``reached_recipient: false``), so a fallback to it is told apart from a send.
"""

from __future__ import annotations

import logging

from providers.base import BaseAdapter
from providers.types import OutboundMessage, SendResult

logger = logging.getLogger("providers.console")


class ConsoleAdapter(BaseAdapter):
    kind = "console"
    channel = "*"

    def send(self, message: OutboundMessage) -> SendResult:
        logger.info(
            "console %s delivery %s to %s: subject=%r text=%r",
            message.channel,
            message.delivery_id,
            message.recipient,
            message.subject,
            message.text[:500],
        )
        return SendResult(
            provider_message_id=f"console-{message.delivery_id}",
            response={"logged": True, "reached_recipient": False},
            cost=None,
        )
