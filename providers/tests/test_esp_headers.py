"""The RFC 8058 unsubscribe headers reach Mailgun, SendGrid and Postmark through each API's
own headers field (asserted on the request a loopback server receives)."""

from __future__ import annotations

from urllib.parse import parse_qs

import pytest

from providers import aio
from providers.registry import get_adapter

from .conftest import Reply

HEADERS = {
    "List-Unsubscribe": "<https://notify.test/u/token/>, <mailto:u@notify.test?subject=x>",
    "List-Unsubscribe-Post": "List-Unsubscribe=One-Click",
}
SETUP = {
    # kind: (credential env, API path, reply)
    "mailgun": ("MAILGUN_API_KEY", "/v3/notify.test/messages", Reply(body={"id": "<m@mg>"})),
    "sendgrid": ("SENDGRID_API_KEY", "/v3/mail/send", Reply(status=202, body=b"")),
    "postmark": ("POSTMARK_SERVER_TOKEN", "/email", Reply(body={"MessageID": "pm-1"})),
}


def _received_headers(kind: str, request) -> dict[str, str]:
    if kind == "mailgun":  # form fields "h:<Name>"
        form = parse_qs(request.body.decode())
        return {k[2:]: v[0] for k, v in form.items() if k.startswith("h:")}
    if kind == "sendgrid":  # "headers": {name: value}
        return dict(request.json()["headers"])
    return {h["Name"]: h["Value"] for h in request.json()["Headers"]}  # [{"Name", "Value"}]


@pytest.mark.parametrize("coroutine", [False, True], ids=["send", "asend"])
@pytest.mark.parametrize("kind", sorted(SETUP))
def test_unsubscribe_headers_go_through_the_esp_api(
    kind, coroutine, make_provider, http_server, outbound, monkeypatch
):
    env, path, reply = SETUP[kind]
    monkeypatch.setenv(env, "test-key")
    http_server.reply(path, reply)
    provider = make_provider(
        provider_name=f"{kind}-hdr",
        provider_type="email",
        provider_class=kind,
        configuration={
            "api_base_url": http_server.url,
            "from_email": "Auctions <noreply@notify.test>",
            "domain": "notify.test",
        },
    )
    message = outbound(
        channel="email", recipient="alice@example.test", recipient_type="email", headers=HEADERS
    )

    adapter = get_adapter(provider)
    if coroutine:  # the batch sender's path: on the sender loop, over aiohttp
        result = aio.submit(adapter.asend(message)).result(timeout=10)
    else:
        result = adapter.send(message)

    [request] = http_server.requests
    assert request.path == path
    assert request.headers["idempotency-key"] == "delivery-41"
    assert result.provider_message_id == {"mailgun": "m@mg", "postmark": "pm-1"}.get(kind)
    received = _received_headers(kind, request)
    assert received["List-Unsubscribe"] == HEADERS["List-Unsubscribe"]
    assert received["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    assert received["X-Notifyplatform-Delivery"] == "41"


@pytest.mark.parametrize("kind", sorted(SETUP))
def test_a_transactional_email_carries_no_unsubscribe_header(
    kind, make_provider, http_server, outbound, monkeypatch
):
    env, path, reply = SETUP[kind]
    monkeypatch.setenv(env, "test-key")
    http_server.reply(path, reply)
    provider = make_provider(
        provider_name=f"{kind}-tx",
        provider_type="email",
        provider_class=kind,
        configuration={"api_base_url": http_server.url, "domain": "notify.test"},
    )

    get_adapter(provider).send(
        outbound(channel="email", recipient="alice@example.test", recipient_type="email")
    )

    [request] = http_server.requests
    assert "List-Unsubscribe" not in _received_headers(kind, request)
