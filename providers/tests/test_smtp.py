"""The SMTP adapter against a real aiosmtpd server on loopback."""

from __future__ import annotations

import email
from email import policy

import pytest

from providers.errors import ProviderError
from providers.registry import get_adapter


def _smtp_provider(make_provider, smtp_server, **config):
    return make_provider(
        provider_name="smtp-local",
        provider_type="email",
        provider_class="smtp",
        configuration={
            "host": smtp_server.hostname,
            "port": smtp_server.port,
            "from_email": "Auctions <noreply@notify.test>",
            **config,
        },
    )


def test_smtp_delivers_rendered_message_with_delivery_header(make_provider, smtp_server, outbound):
    # Given an SMTP provider pointed at a real SMTP server
    provider = _smtp_provider(make_provider, smtp_server)
    message = outbound(channel="email", recipient="alice@example.test", recipient_type="email")

    # When the adapter sends a rendered message
    result = get_adapter(provider).send(message)

    # Then the server received it with subject, text, html and the delivery header
    [envelope] = smtp_server.handler_obj.envelopes
    assert envelope.mail_from == "noreply@notify.test"
    assert envelope.rcpt_tos == ["alice@example.test"]
    parsed = email.message_from_bytes(envelope.original_content, policy=policy.default)
    assert parsed["Subject"] == "You were outbid"
    assert parsed["X-Notifyplatform-Delivery"] == "41"
    assert parsed["Message-ID"] == result.provider_message_id
    assert result.provider_message_id.endswith("@notify.test>")
    text = parsed.get_body(preferencelist=("plain",)).get_content()
    html = parsed.get_body(preferencelist=("html",)).get_content()
    assert text.strip() == "Someone bid 120.00 on Blue Vase"
    assert html.strip() == "<p>Someone bid <b>120.00</b> on Blue Vase</p>"
    assert result.status == "sent"


def test_smtp_refused_recipient_is_permanent_invalid_recipient(
    make_provider, smtp_server, outbound
):
    # Given a server that refuses the address
    provider = _smtp_provider(make_provider, smtp_server)
    smtp_server.handler_obj.refuse.add("ghost@example.test")

    # When sending to it
    with pytest.raises(ProviderError) as caught:
        get_adapter(provider).send(outbound(channel="email", recipient="ghost@example.test"))

    # Then the error is a permanent INVALID_RECIPIENT and nothing was accepted
    assert caught.value.error_code == "INVALID_RECIPIENT"
    assert caught.value.retryable is False
    assert caught.value.response == {"smtp_code": 550, "smtp_error": "5.1.1 no such user"}
    assert smtp_server.handler_obj.envelopes == []


def test_smtp_connection_refused_is_retryable(make_provider, outbound):
    # Given an SMTP provider whose server is not listening
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    provider = make_provider(
        provider_type="email",
        provider_class="smtp",
        configuration={"host": "127.0.0.1", "port": port},
    )

    # When sending, then the error is retryable PROVIDER_UNAVAILABLE
    with pytest.raises(ProviderError) as caught:
        get_adapter(provider).send(outbound(channel="email", recipient="a@example.test"))
    assert caught.value.error_code == "PROVIDER_UNAVAILABLE"
    assert caught.value.retryable is True


def test_smtp_health_check_passes_against_live_server(make_provider, smtp_server):
    provider = _smtp_provider(make_provider, smtp_server)

    health = get_adapter(provider).check_health()

    assert health.ok is True
    assert health.error_code is None
