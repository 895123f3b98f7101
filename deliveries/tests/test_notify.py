"""notify(): composing notifications and deliveries (no sending here)."""

from __future__ import annotations

import pytest

from deliveries.errors import NotifyError
from deliveries.models import Notification, NotificationDelivery
from deliveries.services import notify
from deliveries.types import Recipient
from templates.models import NotificationTemplate

pytestmark = pytest.mark.usefixtures("catalogue")


def test_outbid_uses_catalogue_defaults_and_renders_each_channel(user):
    # given a user with an email address and the shipped catalogue
    # when an outbid notification is composed with no channels given
    result = notify(user, template_key="outbid", context={"amount": "$140.00"})

    # then the catalogue's channels, priority and category apply
    notification = result.notification
    assert result.created is True
    assert notification.delivery_channels == ["in_app", "push", "email"]
    assert notification.priority == "high"
    assert notification.category == "bid"
    assert notification.event_type == "outbid"
    assert notification.title == "You've been outbid"
    assert notification.message == "Someone bid higher than your $140.00 bid"
    assert notification.template.template_key == "outbid.in_app.en"
    by_channel = {d.delivery_type: d for d in result.deliveries}
    assert set(by_channel) == {"in_app", "push", "email"}
    assert by_channel["email"].status == "pending"
    assert by_channel["email"].recipient == "alice@example.test"
    assert by_channel["email"].provider_name == ""
    assert by_channel["email"].provider_priority == 0
    assert by_channel["email"].delivery_metadata["message"]["subject"] == "You've been outbid"
    assert "$140.00" in by_channel["email"].delivery_metadata["message"]["html"]
    assert by_channel["in_app"].recipient == str(user.pk)
    # and push, with no device token, is recorded as skipped with the reason
    assert by_channel["push"].status == "skipped"
    assert by_channel["push"].delivery_metadata["decision"] == {
        "rule": "no_address",
        "channel": "push",
        "reason": "no device token",
    }


def test_language_fallback_prefers_locale_then_language_then_english(make_user):
    # given a Brazilian-Portuguese user and a Portuguese (not pt-BR) email template
    user = make_user(locale="pt-BR")
    NotificationTemplate.objects.create(
        template_key="outbid.email.pt",
        template_name="Outbid (pt)",
        invitation_type="outbid",
        delivery_type="email",
        language="pt",
        subject_template="Seu lance foi superado",
        content_template="Alguém ofereceu mais que seus {{ amount }}",
        template_variables={"amount": {"required": True, "example": "R$10"}},
    )
    # when the user is notified by email and in-app
    result = notify(
        user, template_key="outbid", context={"amount": "R$10"}, channels=["email", "in_app"]
    )
    # then email falls back pt-BR → pt; in-app (no pt row) falls back to en
    email, in_app = result.deliveries
    assert email.delivery_metadata["message"]["subject"] == "Seu lance foi superado"
    assert email.delivery_metadata["locale"] == "pt-BR"
    assert in_app.delivery_metadata["message"]["subject"] == "You've been outbid"


def test_html_escapes_values_text_does_not(user):
    result = notify(user, template_key="outbid", context={"amount": "<b>5</b>"}, channels=["email"])
    message = result.deliveries[0].delivery_metadata["message"]
    assert message["text"] == "Someone bid higher than your <b>5</b> bid"
    assert "&lt;b&gt;5&lt;/b&gt;" in message["html"]


def test_free_form_title_and_message_go_in_app_by_default(user):
    result = notify(
        user, title="Maintenance", message="Back at {{ when }}", context={"when": "6pm"}
    )
    assert result.notification.delivery_channels == ["in_app"]
    assert result.notification.message == "Back at 6pm"
    assert result.notification.category == "system"
    assert [d.delivery_type for d in result.deliveries] == ["in_app"]


def test_same_idempotency_key_returns_first_result(user):
    first = notify(user, template_key="outbid", context={"amount": "$1"}, idempotency_key="k-1")
    again = notify(user, template_key="outbid", context={"amount": "$2"}, idempotency_key="k-1")
    assert again.created is False
    assert again.notification.pk == first.notification.pk
    assert [d.pk for d in again.deliveries] == [d.pk for d in first.deliveries]
    assert Notification.objects.count() == 1
    assert NotificationDelivery.objects.count() == 3


def test_address_only_recipient_writes_deliveries_without_notification(db, catalogue):
    result = notify(
        Recipient(email="guest@example.test", phone="+14155550100"),
        template_key="story_collaboration",
        context={
            "inviter_name": "Alice",
            "story_title": "The Lighthouse",
            "invitation_url": "https://example.test/i/1",
        },
        channels=["email", "sms"],
        idempotency_key="invite-1",
    )
    assert result.notification is None
    assert [(d.delivery_type, d.recipient, d.recipient_type) for d in result.deliveries] == [
        ("email", "guest@example.test", "email"),
        ("sms", "+14155550100", "phone"),
    ]
    assert (
        result.deliveries[1]
        .delivery_metadata["message"]["text"]
        .startswith("Alice invited you to write The Lighthouse: ")
    )
    again = notify(
        Recipient(email="guest@example.test"),
        template_key="story_collaboration",
        context={},
        idempotency_key="invite-1",
    )
    assert again.created is False
    assert [d.pk for d in again.deliveries] == [d.pk for d in result.deliveries]


def test_sms_uses_the_users_phone_in_e164(make_user):
    user = make_user(phone="+44 20 7946 0958")
    result = notify(
        user, template_key="auction_started", context={"auction_title": "Clocks"}, channels=["sms"]
    )
    assert result.deliveries[0].recipient == "+442079460958"
    assert result.deliveries[0].status == "pending"


@pytest.mark.parametrize(
    ("kwargs", "code", "field"),
    [
        ({"template_key": "no_such_type"}, "TEMPLATE_NOT_FOUND", "template_key"),
        ({"template_key": "outbid", "context": {}}, "TEMPLATE_VARIABLE_MISSING", "context.amount"),
        (
            {"template_key": "outbid", "context": {"amount": "1"}, "channels": ["fax"]},
            "UNKNOWN_CHANNEL",
            "channels",
        ),
        (
            {"template_key": "outbid", "context": {"amount": "1"}, "webhook_url": "ftp://x"},
            "INVALID_URL",
            "webhook_url",
        ),
        (
            {"template_key": "outbid", "context": {"amount": "1", "pad": "x" * 70000}},
            "PAYLOAD_TOO_LARGE",
            "context",
        ),
        (
            {"template_key": "outbid", "context": {"amount": "1"}, "priority": "asap"},
            "VALIDATION_ERROR",
            "priority",
        ),
    ],
)
def test_bad_input_raises_naming_the_field_and_writes_nothing(user, kwargs, code, field):
    with pytest.raises(NotifyError) as caught:
        notify(user, **kwargs)
    assert (caught.value.code, caught.value.field) == (code, field)
    assert Notification.objects.count() == 0
    assert NotificationDelivery.objects.count() == 0


@pytest.mark.parametrize(
    ("recipient", "field"),
    [
        (Recipient(email="not-an-email"), "email"),
        (Recipient(phone="12345"), "phone"),
    ],
)
def test_malformed_address_is_invalid_recipient(db, catalogue, recipient, field):
    with pytest.raises(NotifyError) as caught:
        notify(recipient, template_key="outbid", context={"amount": "1"}, channels=["email"])
    assert (caught.value.code, caught.value.field) == ("INVALID_RECIPIENT", field)
    assert NotificationDelivery.objects.count() == 0
