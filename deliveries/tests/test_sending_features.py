"""The send path routes on provider features (providers.features): real SMTP (aiosmtpd)."""

from __future__ import annotations

from deliveries.models import NotificationDelivery
from deliveries.services import delivery_send, notify
from providers.models import Provider


def _no_html_provider(port: int) -> Provider:
    return Provider.objects.create(
        provider_name="plain-smtp",
        provider_type="email",
        provider_class="smtp",
        priority=1,  # routed first
        configuration={"host": "127.0.0.1", "port": port, "timeout": 5},
        supported_features={"html": False},
    )


def _html_email(user) -> NotificationDelivery:
    result = notify(user, template_key="outbid", context={"amount": "5"}, channels=["email"])
    email = result.deliveries[0]
    assert email.delivery_metadata["message"]["html"]  # the template renders an HTML body
    return email


def test_html_email_goes_past_a_provider_without_html(user, pipeline_providers, smtp_server):
    sink, port = smtp_server
    _no_html_provider(port)
    email = _html_email(user)

    assert delivery_send(email.pk).outcome == "sent"

    row = NotificationDelivery.objects.get(pk=email.pk)
    assert (row.status, row.provider_name) == ("sent", "test-smtp")
    assert row.delivery_metadata["decision"] == {
        "rule": "provider_features",
        "skipped": [{"provider": "plain-smtp", "missing": ["html"]}],
    }
    assert [a["provider_name"] for a in row.provider_response["attempts"]] == ["test-smtp"]
    assert len(sink.messages) == 1


def test_html_email_fails_when_no_provider_carries_html(user, db, smtp_server):
    sink, port = smtp_server
    _no_html_provider(port)
    email = _html_email(user)

    assert delivery_send(email.pk).outcome == "failed"

    row = NotificationDelivery.objects.get(pk=email.pk)
    assert (row.status, row.retry_count, row.error_code) == ("failed", 0, "FEATURE_UNSUPPORTED")
    assert "plain-smtp: html" in row.error_message
    assert row.delivery_metadata["decision"] == {
        "rule": "no_capable_provider",
        "skipped": [{"provider": "plain-smtp", "missing": ["html"]}],
    }
    assert sink.messages == []


def test_plain_text_email_still_uses_the_provider_without_html(user, db, smtp_server):
    sink, port = smtp_server
    _no_html_provider(port)
    result = notify(user, title="Your order shipped", message="On its way", channels=["email"])
    email = result.deliveries[0]
    assert email.delivery_metadata["message"]["html"] is None

    assert delivery_send(email.pk).outcome == "sent"

    row = NotificationDelivery.objects.get(pk=email.pk)
    assert (row.status, row.provider_name) == ("sent", "plain-smtp")
    assert "decision" not in row.delivery_metadata
    assert len(sink.messages) == 1


def test_batch_path_routes_each_message_on_its_features(user, pipeline_providers, smtp_server):
    from deliveries.services.sending.pipeline import deliveries_send_batch

    sink, port = smtp_server
    _no_html_provider(port)
    html = _html_email(user)
    plain = notify(user, title="Shipped", message="On its way", channels=["email"]).deliveries[0]

    outcomes = {o.delivery_id: o.outcome for o in deliveries_send_batch([html.pk, plain.pk])}

    assert outcomes == {html.pk: "sent", plain.pk: "sent"}
    rows = NotificationDelivery.objects.in_bulk([html.pk, plain.pk])
    assert rows[html.pk].provider_name == "test-smtp"
    assert rows[html.pk].delivery_metadata["decision"] == {
        "rule": "provider_features",
        "skipped": [{"provider": "plain-smtp", "missing": ["html"]}],
    }
    assert rows[plain.pk].provider_name == "plain-smtp"
    assert "decision" not in rows[plain.pk].delivery_metadata
