"""The base of our own ESP adapters (Mailgun, SendGrid, Postmark): each builds one HTTP
request per email (``prepare``) and reads the answer (``result``); the request is sent
blocking by :meth:`send` (httpx, pooled) or as a coroutine by :meth:`asend` on the batch
sender's event loop (aiohttp, pooled; no thread per in-flight email)."""

from __future__ import annotations

from typing import NamedTuple

import httpx

from providers.base import HttpAdapter
from providers.types import OutboundMessage, SendResult


class EspRequest(NamedTuple):
    path: str
    headers: dict[str, str]
    body: bytes


class EspAdapter(HttpAdapter):
    def prepare(self, message: OutboundMessage) -> EspRequest:
        raise NotImplementedError

    def result(self, response: httpx.Response) -> SendResult:
        raise NotImplementedError

    def send(self, message: OutboundMessage) -> SendResult:
        if self.missing_credentials():
            raise self.unconfigured()
        prepared = self.prepare(message)
        response = self.request(
            "POST",
            prepared.path,
            idempotency_key=message.idempotency_key,
            content=prepared.body,
            headers=prepared.headers,
        )
        return self.result(response)

    async def asend(self, message: OutboundMessage) -> SendResult:
        if self.missing_credentials():
            raise self.unconfigured()
        prepared = self.prepare(message)
        response = await self.arequest(
            "POST",
            prepared.path,
            idempotency_key=message.idempotency_key,
            content=prepared.body,
            headers=prepared.headers,
        )
        return self.result(response)
