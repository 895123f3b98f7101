"""Rich content (issue 17): accepted by notify() and the API, validated (400 naming the field),
stored, rendered per channel when sent — email to a real SMTP sink (aiosmtpd), SMS and FCM
to the provider sandbox over HTTP, in-app through the real sender — with the parts a
channel cannot carry recorded in the delivery's trace, and routing on images/actions."""

from __future__ import annotations

import json

import pytest

from deliveries.models import Notification, NotificationDelivery
from deliveries.services import delivery_send, notify
from providers.models import Provider
from providers.tests.conftest import _sandbox_server, sandbox  # noqa: F401  # fixtures
from templates.models import NotificationTemplate
from users.models import Device
from users.services import token_create

pytestmark = pytest.mark.usefixtures("catalogue")

IMAGE = "https://cdn.example/vase.png"
BUTTONS = [
    {"label": "View order", "url": "https://shop.example/orders/7"},
    {"label": "Get help", "url": "https://help.example/chat"},
]
RICH = {
    "image": {"url": IMAGE, "alt": "Blue vase"},
    "buttons": BUTTONS,
    "text": "Your order ships tomorrow.",
    "html": "<p>Thanks for <b>shopping</b><script>alert(1)</script></p>",
}


@pytest.fixture
def service_client(api_client, make_user):
    owner = make_user(email="backend@example.test")
    _token, raw = token_create(user=owner, name="backend", is_service=True)
    api_client.credentials(HTTP_AUTHORIZATION=f"Bearer {raw}")
    return api_client


def _post(client, user, **fields):
    body = {"user_id": str(user.pk), "title": "Shipped", "message": "On its way", **fields}
    return client.post("/api/v1/notifications/", body, format="json")


def test_the_api_stores_rich_content_and_returns_it_with_tracked_links(service_client, user):
    response = _post(service_client, user, rich_content=RICH, channels=["in_app", "sms"])

    assert response.status_code == 201, response.json()
    body = response.json()
    stored = Notification.objects.get(pk=body["notification"]["id"]).rich_content
    assert stored["image"] == {"url": IMAGE, "alt": "Blue vase"}
    assert stored["buttons"] == BUTTONS
    assert stored["html"] == "<p>Thanks for <b>shopping</b></p>"  # sanitised
    shown = body["notification"]["rich_content"]
    assert [b["url"] for b in shown["buttons"]] == [b["url"] for b in BUTTONS]
    assert all("/c/" in b["tracked_url"] for b in shown["buttons"])
    sms = next(d for d in body["deliveries"] if d["delivery_type"] == "sms")
    assert [d["part"] for d in sms["rich_content_dropped"]] == ["image", "text", "html"]


@pytest.mark.parametrize(
    ("rich", "field", "reason"),
    [
        ({"buttons": BUTTONS * 2}, "rich_content.buttons", "at most 3 buttons (got 4)"),
        ({"image": "http://cdn.example/v.png"}, "rich_content.image.url", "must be an https URL"),
        (
            {"buttons": [{"label": "Go", "url": "javascript:alert(1)"}]},
            "rich_content.buttons[0].url",
            "must be an http(s) URL",
        ),
        ({"images": [IMAGE]}, "rich_content.images", "unknown key"),
        ({"html": "<p>" + "x" * 17000 + "</p>"}, "rich_content.html", "the limit is 16384 bytes"),
        ("just text", "rich_content", "must be an object"),
    ],
)
def test_bad_rich_content_is_a_400_naming_the_field(service_client, user, rich, field, reason):
    response = _post(service_client, user, rich_content=rich)

    assert response.status_code == 400, response.json()
    [(name, [message])] = response.json()["error"]["fields"].items()
    assert name == field and reason in message
    assert Notification.objects.count() == 0


def test_email_carries_image_buttons_and_blocks_with_tracked_buttons(
    user, pipeline_providers, smtp_server
):
    sink, _port = smtp_server
    result = notify(
        user, title="Shipped", message="On its way", channels=["email"], rich_content=RICH
    )
    [email] = result.deliveries
    assert "rich_content_dropped" not in email.delivery_metadata

    assert delivery_send(email.pk).outcome == "sent"

    [message] = sink.messages
    parts = {
        p.get_content_type(): p.get_payload(decode=True).decode()
        for p in message.walk()
        if not p.is_multipart()
    }
    html, text = parts["text/html"], parts["text/plain"]
    assert f'<img src="{IMAGE}" alt="Blue vase"' in html
    assert "<b>shopping</b>" in html and "<script>" not in html
    assert "Your order ships tomorrow." in html and "Your order ships tomorrow." in text
    for button in BUTTONS:  # links to the notification's own URLs are tracked
        assert f'href="{button["url"]}"' not in html
        assert f"{button['label']}: http://" in text and button["url"] not in text
    assert html.count("/c/") == 2


def test_sms_gets_buttons_as_lines_and_drops_the_rest_visibly(user, sandbox, settings):  # noqa: F811
    settings.NP_TRACK_LINKS = False
    user.phone = "+14155550100"
    user.save()
    Provider.objects.create(
        provider_name="twilio-main",
        provider_type="sms",
        provider_class="twilio",
        configuration={
            "api_base_url": sandbox.url,
            "from_number": "+15005550006",
            "receipt_url": False,
        },
    )
    result = notify(
        user, title="Shipped", message="On its way", channels=["sms"], rich_content=RICH
    )
    [sms] = result.deliveries
    assert sms.delivery_metadata["rules"] == [
        {
            "rule": "rich_content_dropped",
            "channel": "sms",
            "dropped": sms.delivery_metadata["rich_content_dropped"],
        }
    ]
    assert [d["part"] for d in sms.delivery_metadata["rich_content_dropped"]] == [
        "image",
        "text",
        "html",
    ]

    assert delivery_send(sms.pk).outcome == "sent"

    [record] = sandbox.messages("twilio")
    assert record["body"] == (
        "On its way\n\nView order: https://shop.example/orders/7\nGet help: https://help.example/chat"
    )


@pytest.fixture
def fcm(sandbox):  # noqa: F811
    return Provider.objects.create(
        provider_name="fcm-main",
        provider_type="push",
        provider_class="fcm",
        priority=5,
        configuration={"api_base_url": sandbox.url, "project_id": "np-demo"},
    )


def test_fcm_gets_the_image_and_buttons_and_drops_text_and_html(user, fcm, sandbox):  # noqa: F811
    Device.objects.create(user=user, kind="fcm", address="tok-phone")
    result = notify(
        user, title="Shipped", message="On its way", channels=["push"], rich_content=RICH
    )
    [push] = result.deliveries
    assert [d["part"] for d in push.delivery_metadata["rich_content_dropped"]] == ["text", "html"]

    assert delivery_send(push.pk).outcome == "sent"

    [record] = sandbox.messages("fcm")
    data = record["data"]["data"]
    carried = json.loads(data["rich_content"])
    assert carried["image"] == {"url": IMAGE, "alt": "Blue vase"}
    assert [b["label"] for b in carried["buttons"]] == ["View order", "Get help"]
    assert all("/c/" in b["tracked_url"] for b in carried["buttons"])
    assert "text" not in carried and "html" not in carried


def test_push_with_an_image_skips_a_provider_without_images(user, fcm, sandbox):  # noqa: F811
    Provider.objects.create(
        provider_name="fcm-plain",
        provider_type="push",
        provider_class="fcm",
        priority=1,  # routed first
        configuration={"api_base_url": sandbox.url, "project_id": "np-demo"},
        supported_features={"images": False},
    )
    Device.objects.create(user=user, kind="fcm", address="tok-phone")
    [push] = notify(
        user,
        title="Shipped",
        message="On its way",
        channels=["push"],
        rich_content={"image": IMAGE},
    ).deliveries

    assert delivery_send(push.pk).outcome == "sent"

    row = NotificationDelivery.objects.get(pk=push.pk)
    assert row.provider_name == "fcm-main"
    assert row.delivery_metadata["decision"] == {
        "rule": "provider_features",
        "skipped": [{"provider": "fcm-plain", "missing": ["images"]}],
    }


def test_in_app_payload_carries_everything(
    user, pipeline_providers, django_capture_on_commit_callbacks
):
    from realtime.models import RealTimeEvent

    with django_capture_on_commit_callbacks(execute=True):  # published after commit
        result = notify(
            user, title="Shipped", message="On its way", channels=["in_app"], rich_content=RICH
        )
    assert result.deliveries[0].status == "sent"  # a due in-app row is written sent

    event = RealTimeEvent.objects.get(event_type="notification.created", user_id=str(user.pk))
    shown = event.event_data["rich_content"]
    assert shown["image"]["url"] == IMAGE and shown["text"] and shown["html"]
    assert [b["label"] for b in shown["buttons"]] == ["View order", "Get help"]
    assert all("/c/" in b["tracked_url"] for b in shown["buttons"])


def test_a_template_carries_rich_content_with_variables(user, pipeline_providers, smtp_server):
    sink, _port = smtp_server
    template = NotificationTemplate.objects.get(template_key="outbid.email.en")
    template.rich_content_template = {
        "image": "https://cdn.example/items/{{ item_id }}.png",
        "buttons": [
            {"label": "Bid again on {{ item_id }}", "url": "https://shop.example/i/{{ item_id }}"}
        ],
    }
    template.save()
    context = {"amount": "5", "item_id": "A7"}

    result = notify(user, template_key="outbid", context=context, channels=["email"])

    rich = {
        "image": {"url": "https://cdn.example/items/A7.png"},
        "buttons": [{"label": "Bid again on A7", "url": "https://shop.example/i/A7"}],
    }
    assert result.notification.rich_content == rich
    assert result.deliveries[0].delivery_metadata["rich_content"] == rich
    assert delivery_send(result.deliveries[0].pk).outcome == "sent"
    html = next(p for p in sink.messages[0].walk() if p.get_content_type() == "text/html")
    assert '<img src="https://cdn.example/items/A7.png"' in html.get_payload(decode=True).decode()
    # a call's own rich_content wins over the template's
    own = notify(
        user,
        template_key="outbid",
        context=context,
        channels=["email"],
        rich_content={"text": "Mine"},
    )
    assert own.notification.rich_content == {"text": "Mine"}


def test_a_template_whose_rich_content_renders_invalid_is_a_400(service_client, user):
    template = NotificationTemplate.objects.get(template_key="outbid.email.en")
    template.rich_content_template = {"image": "{{ picture }}"}
    template.save()

    response = service_client.post(
        "/api/v1/notifications/",
        {
            "user_id": str(user.pk),
            "template_key": "outbid",
            "channels": ["email"],
            "context": {"amount": "5", "picture": "http://plain.example/x.png"},
        },
        format="json",
    )

    assert response.status_code == 400, response.json()
    error = response.json()["error"]
    assert error["fields"] == {
        "template_key": [
            "template 'outbid.email.en': rich_content_template.image.url: must be an https URL"
        ]
    }


def test_the_template_api_refuses_a_malformed_rich_content_template(api_client, staff_user):
    api_client.force_authenticate(staff_user)
    template = NotificationTemplate.objects.get(template_key="outbid.email.en")

    response = api_client.patch(
        f"/api/v1/templates/{template.pk}/",
        {"rich_content_template": {"buttons": [{"lable": "x"}]}, "track_links": False},
        format="json",
    )

    assert response.status_code == 400, response.json()
    assert response.json()["error"]["fields"] == {
        "rich_content_template": ["buttons[0]: unknown key 'lable'"]
    }


def test_notify_many_stores_rich_content_and_traces_drops_after_other_rules(make_user):
    from deliveries.services import notify_many

    people = [make_user(), make_user()]

    results = notify_many(
        people, title="Sale", message="Ends soon", channels=["in_app", "sms"], rich_content=RICH
    )

    for result in results:
        assert result.notification.rich_content["buttons"] == BUTTONS
        sms = next(d for d in result.deliveries if d.delivery_type == "sms")
        sms.refresh_from_db()
        # no phone: skipped, and the trace keeps both that rule and what SMS would drop
        assert sms.status == "skipped"
        assert [r["rule"] for r in sms.delivery_metadata["rules"]] == [
            "no_address",
            "rich_content_dropped",
        ]
        assert sms.delivery_metadata["decision"]["rule"] == "no_address"


def test_the_admin_form_refuses_a_malformed_rich_content_template():
    from django.core.exceptions import ValidationError

    template = NotificationTemplate.objects.get(template_key="outbid.email.en")
    template.rich_content_template = {"buttons": "not a list"}
    with pytest.raises(ValidationError) as caught:
        template.full_clean()
    assert caught.value.message_dict["rich_content_template"] == ["buttons must be a list"]
