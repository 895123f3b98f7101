"""The admin console of issue 8, through Django's test client against real PostgreSQL and
Redis: template preview / inline validation / clone, the provider registry (health badge,
success rate and cost columns, enable / disable / check now against a real loopback HTTP
server, recent health metrics), delivery and notification filters and retry / cancel
actions, the "why not sent" column, the dashboard's SVG charts and numbers, the live
connections list, and list pages whose query count does not grow with their rows."""

from __future__ import annotations

import re
from datetime import timedelta
from decimal import Decimal
from html import unescape

import pytest
from django.contrib.messages import get_messages
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from deliveries.models import Notification, NotificationDelivery
from invitations.models import StoryInvitation, UserInvitationHistory
from providers.models import Provider, ProviderHealthMetric
from providers.tests.conftest import LoopbackHTTPServer, Reply
from realtime.models import WebsocketConnection
from templates.models import NotificationTemplate
from users.models import User

pytestmark = pytest.mark.django_db

TYPE = "console_demo"
VARIABLES = {
    "name": {"required": True, "description": "bidder", "example": "Ada <Lovelace>"},
    "amount": {"required": True, "description": "bid", "example": "120.00"},
    "item": {"required": False, "description": "lot", "default": "your lot"},
}


# --- fixtures --------------------------------------------------------------------------


@pytest.fixture
def superuser(db):
    return User.objects.create_superuser(email="root-console@example.test", password=None)


@pytest.fixture
def admin_client(client, superuser):
    client.force_login(superuser)
    return client


@pytest.fixture(autouse=True)
def provider_counters(settings):
    """Circuit and rate-limit counters of this module live under their own Redis prefix."""
    from providers import kv

    settings.NP_PROVIDERS_REDIS_PREFIX = "np:prov:console-test"
    conn = kv.client()

    def wipe() -> None:
        keys = list(conn.scan_iter("np:prov:console-test:*", count=1000))
        if keys:
            conn.delete(*keys)

    wipe()
    yield
    wipe()


@pytest.fixture
def http_server():
    server = LoopbackHTTPServer().start()
    yield server
    server.stop()


@pytest.fixture
def demo_templates(db) -> dict[str, NotificationTemplate]:
    def make(channel: str, language: str = "en", **fields) -> NotificationTemplate:
        return NotificationTemplate.objects.create(
            template_key=NotificationTemplate.make_key(TYPE, channel, language),
            template_name=f"Console demo {channel} {language}",
            invitation_type=TYPE,
            delivery_type=channel,
            language=language,
            template_variables=VARIABLES,
            **fields,
        )

    return {
        "email": make(
            "email",
            subject_template="Outbid by {{ name }}",
            content_template="{{ name }} bid {{ amount }} on {{ item }}.",
            html_template="<p><b>{{ name }}</b> bid {{ amount }}</p>",
        ),
        "sms": make("sms", content_template="{{ name }} bid {{ amount }} on {{ item }}"),
        "push": make("push", subject_template="Outbid", content_template="New bid: {{ amount }}"),
        "in_app": make("in_app", content_template="{{ name }} outbid you"),
        "email_fr": make(
            "email",
            "fr",
            subject_template="Surenchère de {{ name }}",
            content_template="{{ name }} a misé {{ amount }}.",
        ),
    }


def url(name: str, *args) -> str:
    return reverse(f"admin:{name}", args=args)


def messages_of(response) -> list[str]:
    return [str(m) for m in get_messages(response.wsgi_request)]


def make_delivery(**fields) -> NotificationDelivery:
    defaults = {
        "delivery_type": "email",
        "provider_type": "email",
        "provider_name": "console-smtp",
        "provider_priority": 10,
        "recipient": "ada@example.test",
        "recipient_type": "email",
        "status": "pending",
    }
    return NotificationDelivery.objects.create(**{**defaults, **fields})


def make_notification(user, **fields) -> Notification:
    defaults = {
        "notification_type": "email",
        "category": "system",
        "priority": "low",
        "title": "Console test",
        "message": "m",
        "delivery_channels": ["email"],
    }
    return Notification.objects.create(user=user, **{**defaults, **fields})


# --- templates ---------------------------------------------------------------------------


def test_preview_renders_every_channel_and_language_with_the_declared_examples(
    admin_client, demo_templates
):
    # given five templates of one type (four channels in English, email in French)
    # when the preview of the English email is opened
    response = admin_client.get(
        url("templates_notificationtemplate_preview", demo_templates["email"].pk)
    )

    # then every channel x language is rendered with the example values
    assert response.status_code == 200
    previews = {p.template.template_key: p for p in response.context["previews"]}
    assert sorted(previews) == [
        "console_demo.email.en",
        "console_demo.email.fr",
        "console_demo.in_app.en",
        "console_demo.push.en",
        "console_demo.sms.en",
    ]
    email = previews["console_demo.email.en"]
    assert email.error is None
    assert email.rendered.subject == "Outbid by Ada <Lovelace>"
    assert email.rendered.text == "Ada <Lovelace> bid 120.00 on your lot."
    assert email.rendered.html == "<p><b>Ada &lt;Lovelace&gt;</b> bid 120.00</p>"
    assert email.sms is None
    sms = previews["console_demo.sms.en"]
    assert sms.rendered.text == "Ada <Lovelace> bid 120.00 on your lot"
    assert (sms.sms.segments, sms.sms.encoding, sms.sms.characters) == (1, "GSM-7", 37)
    assert previews["console_demo.push.en"].rendered.text == "New bid: 120.00"
    assert previews["console_demo.in_app.en"].rendered.text == "Ada <Lovelace> outbid you"
    assert previews["console_demo.email.fr"].rendered.subject == "Surenchère de Ada <Lovelace>"

    html = response.content.decode()
    # the values are escaped in the page, and the HTML part runs in a sandboxed iframe
    assert '<dd class="np-subject">Outbid by Ada &lt;Lovelace&gt;</dd>' in html
    assert '<dd class="np-sms" data-segments="1">1 segment · GSM-7 · 37 characters</dd>' in html
    frames = re.findall(r'<iframe class="np-html" sandbox="" srcdoc="([^"]*)"', html)
    assert [unescape(f) for f in frames] == ["<p><b>Ada &lt;Lovelace&gt;</b> bid 120.00</p>"]


def test_preview_narrows_to_one_language_and_reports_an_unrenderable_row(
    admin_client, demo_templates
):
    # given a French template whose required variable has no example any more
    NotificationTemplate.objects.filter(pk=demo_templates["email_fr"].pk).update(
        template_variables={"name": {"required": True, "description": "x"}}
    )

    response = admin_client.get(
        url("templates_notificationtemplate_preview", demo_templates["email"].pk),
        {"language": "fr"},
    )

    [preview] = response.context["previews"]
    assert preview.template.template_key == "console_demo.email.fr"
    assert preview.rendered is None
    assert preview.error.startswith("TEMPLATE_VALIDATION_ERROR: ")
    assert "np-preview-error" in response.content.decode()


def test_change_form_links_to_the_preview(admin_client, demo_templates):
    template = demo_templates["sms"]

    html = admin_client.get(url("templates_notificationtemplate_change", template.pk)).content

    preview = url("templates_notificationtemplate_preview", template.pk)
    assert f'<a href="{preview}" class="np-preview-link">Preview</a>'.encode() in html


def test_validation_errors_are_shown_inline_and_nothing_is_saved(admin_client, demo_templates):
    template = demo_templates["sms"]
    form = (
        admin_client.get(url("templates_notificationtemplate_change", template.pk))
        .context["adminform"]
        .form
    )
    data = {k: ("" if v is None else v) for k, v in form.initial.items() if k in form.fields}
    data["template_variables"] = '{"name": {"example": "Ada"}}'
    data["provider_specific_config"] = "null"
    data["content_template"] = "Hi {{ nickname }}"

    response = admin_client.post(url("templates_notificationtemplate_change", template.pk), data)

    assert response.status_code == 200
    errors = response.context["adminform"].form.errors
    assert errors["content_template"] == [
        "variable 'nickname' is not declared in template_variables"
    ]
    html = response.content.decode()
    assert (
        '<ul class="errorlist" id="id_content_template_error"><li>'
        "variable &#x27;nickname&#x27; is not declared in template_variables</li></ul>"
    ) in html
    template.refresh_from_db()
    assert template.content_template == "{{ name }} bid {{ amount }} on {{ item }}"


def test_clone_action_asks_for_the_language_then_creates_the_rows(admin_client, demo_templates):
    chosen = [demo_templates["email"].pk, demo_templates["sms"].pk]
    changelist = url("templates_notificationtemplate_changelist")

    # when the action is chosen: an intermediate page asks for the language
    ask = admin_client.post(changelist, {"action": "clone_to_language", "_selected_action": chosen})
    assert ask.status_code == 200
    assert 'name="language"' in ask.content.decode()
    assert NotificationTemplate.objects.filter(invitation_type=TYPE).count() == 5

    # when "fr" is submitted: the SMS gets a French copy, the email already has one
    done = admin_client.post(
        changelist,
        {"action": "clone_to_language", "_selected_action": chosen, "language": "fr", "apply": "1"},
    )

    assert done.status_code == 302
    copy = NotificationTemplate.objects.get(template_key="console_demo.sms.fr")
    original = demo_templates["sms"]
    assert (copy.invitation_type, copy.delivery_type, copy.language) == (TYPE, "sms", "fr")
    assert copy.content_template == original.content_template
    assert copy.template_variables == VARIABLES
    assert copy.is_active is False
    assert NotificationTemplate.objects.get(template_key="console_demo.email.fr").pk == (
        demo_templates["email_fr"].pk
    )
    assert messages_of(done) == [
        "Created 1 inactive template(s): console_demo.sms.fr. Translate them, then activate.",
        "Already existed, left unchanged: console_demo.email.fr",
    ]


def test_clone_to_a_malformed_language_is_refused(admin_client, demo_templates):
    response = admin_client.post(
        url("templates_notificationtemplate_changelist"),
        {
            "action": "clone_to_language",
            "_selected_action": [demo_templates["sms"].pk],
            "language": "French!",
            "apply": "1",
        },
    )

    assert response.status_code == 200
    assert response.context["form"].errors["language"] == [
        "Enter a language code such as 'fr' or 'pt-BR' (2-3 lowercase letters, "
        "optionally a region)."
    ]
    assert NotificationTemplate.objects.filter(invitation_type=TYPE).count() == 5


# --- providers ---------------------------------------------------------------------------


def make_provider(name: str, **fields) -> Provider:
    defaults = {"provider_type": "webhook", "provider_class": "webhook", "priority": 10}
    return Provider.objects.create(provider_name=name, **{**defaults, **fields})


def test_provider_list_shows_badges_success_rate_and_cost(admin_client, monkeypatch):
    monkeypatch.delenv("WEBHOOK_CONSOLE_MISSING_KEY", raising=False)
    now = timezone.now()
    make_provider("c-healthy", cost_per_message=Decimal("0.010000"))
    make_provider("c-open", is_healthy=False)
    make_provider("c-off", is_enabled=False)
    make_provider("c-nokey", credentials_required=["WEBHOOK_CONSOLE_MISSING_KEY"])
    # the latest health check of c-healthy says 87.5 % (an older one said 10 %)
    for when, rate in ((now - timedelta(hours=2), "10.00"), (now, "87.50")):
        ProviderHealthMetric.objects.create(
            provider_name="c-healthy",
            provider_type="webhook",
            health_check_timestamp=when,
            is_healthy=True,
            success_rate_24h=Decimal(rate),
        )
    # c-open was never checked: its rate comes from its last 24 h of deliveries (3 of 4)
    for status in ("sent", "delivered", "delivered", "failed", "pending"):
        make_delivery(provider_name="c-open", status=status, cost_per_message=Decimal("0.5"))
    make_delivery(provider_name="c-healthy", status="sent", cost_per_message=Decimal("0.010000"))
    old = make_delivery(provider_name="c-healthy", status="sent", cost_per_message=Decimal("9"))
    NotificationDelivery.objects.filter(pk=old.pk).update(created_at=now - timedelta(days=2))

    response = admin_client.get(url("providers_provider_changelist"), {"q": "c-"})

    rows = {p.provider_name: p for p in response.context["cl"].result_list}
    model_admin = response.context["cl"].model_admin
    health = {n: str(model_admin.health(p)) for n, p in rows.items()}
    assert ">healthy</span>" in health["c-healthy"]
    assert ">open circuit</span>" in health["c-open"]
    assert ">disabled</span>" in health["c-off"]
    assert ">unconfigured: WEBHOOK_CONSOLE_MISSING_KEY</span>" in health["c-nokey"]
    rates = {n: model_admin.success_rate(p) for n, p in rows.items()}
    assert rates == {
        "c-healthy": "87.50 %",
        "c-open": "75.00 % (24 h)",
        "c-off": "-",
        "c-nokey": "-",
    }
    costs = {n: model_admin.cost_24h(p) for n, p in rows.items()}
    assert costs == {"c-healthy": "0.0100", "c-open": "2.5000", "c-off": "-", "c-nokey": "-"}
    html = response.content.decode()
    assert '<td class="field-success_rate">75.00 % (24 h)</td>' in html


def test_disable_and_enable_actions_change_the_rows(admin_client):
    a, b, _ = (make_provider(n) for n in ("c-a", "c-b", "c-c"))
    changelist = url("providers_provider_changelist")

    def enabled() -> dict[str, bool]:
        rows = Provider.objects.filter(provider_name__startswith="c-")
        return dict(rows.values_list("provider_name", "is_enabled"))

    response = admin_client.post(
        changelist, {"action": "disable_providers", "_selected_action": [a.pk, b.pk]}
    )

    assert response.status_code == 302
    assert enabled() == {"c-a": False, "c-b": False, "c-c": True}
    assert messages_of(response) == ["Disabled 2 provider(s)."]

    admin_client.post(changelist, {"action": "enable_providers", "_selected_action": [b.pk]})

    assert enabled() == {"c-a": False, "c-b": True, "c-c": True}


def test_check_now_probes_the_health_url_records_metrics_and_opens_the_circuit(
    admin_client, http_server
):
    # given a provider whose health URL answers 200 and one whose health URL answers 503
    http_server.reply("/down", Reply(status=503, body={"message": "maintenance"}))
    up = make_provider("c-up", health_check_url=f"{http_server.url}/up")
    down = make_provider("c-down", health_check_url=f"{http_server.url}/down")
    quiet = make_provider("c-quiet", provider_type="in_app", provider_class="in_app")

    response = admin_client.post(
        url("providers_provider_changelist"),
        {"action": "check_now", "_selected_action": [up.pk, down.pk, quiet.pk]},
    )

    assert response.status_code == 302
    assert sorted(r.path for r in http_server.requests) == ["/down", "/up"]
    metrics = {
        m.provider_name: m
        for m in ProviderHealthMetric.objects.filter(provider_name__startswith="c-")
    }
    assert sorted(metrics) == ["c-down", "c-quiet", "c-up"]
    assert (metrics["c-up"].is_healthy, metrics["c-up"].error_code) == (True, None)
    assert (metrics["c-down"].is_healthy, metrics["c-down"].error_code) == (
        False,
        "PROVIDER_UNAVAILABLE",
    )
    assert metrics["c-quiet"].is_healthy is True
    state = {
        p.provider_name: (p.is_healthy, p.last_health_check is not None)
        for p in Provider.objects.filter(provider_name__startswith="c-")
    }
    assert state == {"c-up": (True, True), "c-down": (False, True), "c-quiet": (True, True)}
    assert messages_of(response) == [
        "Checked c-down: unhealthy (PROVIDER_UNAVAILABLE); c-quiet: healthy; c-up: healthy"
    ]


def test_provider_page_shows_its_recent_health_metrics(admin_client):
    provider = make_provider("c-hist")
    now = timezone.now()
    for minutes, healthy, code in ((10, True, None), (5, False, "PROVIDER_TIMEOUT")):
        ProviderHealthMetric.objects.create(
            provider_name="c-hist",
            provider_type="webhook",
            health_check_timestamp=now - timedelta(minutes=minutes),
            is_healthy=healthy,
            response_time_ms=minutes * 10,
            error_code=code,
            success_rate_1h=Decimal("99.50"),
        )
    ProviderHealthMetric.objects.create(
        provider_name="someone-else",
        provider_type="webhook",
        health_check_timestamp=now,
        is_healthy=True,
        response_time_ms=777,
    )

    html = admin_client.get(url("providers_provider_change", provider.pk)).content.decode()

    table = re.search(r'<table class="np-table np-health-metrics">.*?</table>', html, re.S)
    assert table is not None
    rows = re.findall(r"<tr>(.*?)</tr>", table.group(0), re.S)[1:]
    cells = [re.findall(r"<td>(.*?)</td>", r, re.S) for r in rows]
    # newest first, this provider's rows only
    assert [(c[2], c[3], c[7]) for c in cells] == [
        ("50", "99.50", "PROVIDER_TIMEOUT"),
        ("100", "99.50", "-"),
    ]
    assert ">no</span>" in cells[0][1] and ">yes</span>" in cells[1][1]


def add_providers(n: int, offset: int) -> None:
    now = timezone.now()
    for i in range(offset, offset + n):
        name = f"qc-{i}"
        make_provider(name, cost_per_message=Decimal("0.01"))
        ProviderHealthMetric.objects.create(
            provider_name=name,
            provider_type="webhook",
            health_check_timestamp=now,
            is_healthy=True,
            success_rate_24h=Decimal("50"),
        )
        make_delivery(provider_name=name, status="sent", cost_per_message=Decimal("0.01"))


def test_provider_changelist_query_count_does_not_grow_with_rows(admin_client):
    changelist = url("providers_provider_changelist")
    add_providers(3, 0)
    admin_client.get(changelist)  # warm caches (content types, session)
    with CaptureQueriesContext(connection) as before:
        assert admin_client.get(changelist).status_code == 200

    add_providers(12, 3)
    with CaptureQueriesContext(connection) as after:
        response = admin_client.get(changelist)

    assert len(response.context["cl"].result_list) >= 15
    assert len(after) == len(before)


def test_delivery_changelist_query_count_does_not_grow_with_rows(admin_client, make_user):
    changelist = url("deliveries_notificationdelivery_changelist")

    def add(n: int) -> None:
        for _ in range(n):
            note = make_notification(make_user())
            make_delivery(
                notification=note,
                status="failed",
                delivery_metadata={"decision": {"rule": "max_retries", "max_retries": 3}},
                provider_response={"attempts": [{"provider_name": "x", "ok": False}]},
            )

    add(2)
    admin_client.get(changelist)
    with CaptureQueriesContext(connection) as before:
        assert admin_client.get(changelist).status_code == 200
    add(10)
    with CaptureQueriesContext(connection) as after:
        response = admin_client.get(changelist)

    assert len(response.context["cl"].result_list) == 12
    assert len(after) == len(before)


# --- deliveries and notifications --------------------------------------------------------


def test_delivery_filters_by_status_channel_provider_and_date(admin_client):
    make_provider("c-twilio", provider_type="sms", provider_class="twilio")
    now = timezone.now()
    wanted = make_delivery(
        delivery_type="sms", provider_type="sms", provider_name="c-twilio", status="failed"
    )
    make_delivery(delivery_type="sms", provider_type="sms", provider_name="c-twilio")
    make_delivery(status="failed")  # other channel and provider
    old = make_delivery(
        delivery_type="sms", provider_type="sms", provider_name="c-twilio", status="failed"
    )
    NotificationDelivery.objects.filter(pk=old.pk).update(created_at=now - timedelta(days=30))
    today = timezone.localdate()

    response = admin_client.get(
        url("deliveries_notificationdelivery_changelist"),
        {
            "status__exact": "failed",
            "delivery_type__exact": "sms",
            "provider": "c-twilio",
            "created_at__gte": str(today),
            "created_at__lt": str(today + timedelta(days=1)),
        },
    )

    assert [d.pk for d in response.context["cl"].result_list] == [wanted.pk]


def test_why_column_and_attempts_table(admin_client):
    deferred = make_delivery(
        delivery_metadata={
            "decision": "quiet_hours",
            "rules": [{"rule": "quiet_hours", "deferred_until": "2030-01-01T07:00:00+00:00"}],
        }
    )
    failed = make_delivery(
        status="failed",
        error_code="PROVIDER_UNAVAILABLE",
        delivery_metadata={"decision": {"rule": "max_retries", "max_retries": 3}},
        provider_response={
            "error": {"code": "PROVIDER_UNAVAILABLE"},
            "attempts": [
                {
                    "provider_name": "primary",
                    "ok": False,
                    "error_code": "PROVIDER_TIMEOUT",
                    "retryable": True,
                    "duration_ms": 5003,
                    "provider_message_id": None,
                    "error_message": "read timeout",
                },
                {
                    "provider_name": "backup",
                    "ok": False,
                    "error_code": "PROVIDER_UNAVAILABLE",
                    "retryable": True,
                    "duration_ms": 12,
                    "provider_message_id": None,
                    "error_message": "503",
                },
            ],
        },
    )
    plain = make_delivery(status="sent")

    response = admin_client.get(url("deliveries_notificationdelivery_changelist"))

    model_admin = response.context["cl"].model_admin
    assert model_admin.why(deferred) == "quiet_hours"
    assert model_admin.why(failed) == "max_retries (max_retries=3)"
    assert model_admin.why(plain) == "-"
    assert '<td class="field-why">max_retries (max_retries=3)</td>' in response.content.decode()

    html = admin_client.get(
        url("deliveries_notificationdelivery_change", failed.pk)
    ).content.decode()
    table = re.search(r'<table class="np-table np-attempts">.*?</table>', html, re.S).group(0)
    rows = [re.findall(r"<td>(.*?)</td>", r, re.S) for r in re.findall(r"<tr>(.*?)</tr>", table)]
    assert rows[1:] == [
        ["1", "primary", "no", "PROVIDER_TIMEOUT", "True", "5003", "-", "read timeout"],
        ["2", "backup", "no", "PROVIDER_UNAVAILABLE", "True", "12", "-", "503"],
    ]


def test_retry_action_requeues_failed_deliveries_and_refuses_others(admin_client):
    failed = make_delivery(
        status="failed", error_code="PROVIDER_UNAVAILABLE", retry_count=3, max_retries=3
    )
    sent = make_delivery(status="sent")

    response = admin_client.post(
        url("deliveries_notificationdelivery_changelist"),
        {"action": "retry_deliveries", "_selected_action": [failed.pk, sent.pk]},
    )

    assert response.status_code == 302
    failed.refresh_from_db()
    sent.refresh_from_db()
    assert (failed.status, failed.error_code, failed.max_retries) == ("pending", None, 4)
    assert failed.delivery_metadata["decision"]["rule"] == "manual_retry"
    assert sent.status == "sent"
    assert messages_of(response) == [
        "1 delivery(ies) queued for retry.",
        f"1 refused: {sent.pk}: DELIVERY_NOT_RETRYABLE Delivery {sent.pk} is sent; only "
        "bounced, cancelled, expired, failed deliveries can be retried.",
    ]


def test_cancel_action_cancels_pending_deliveries_only(admin_client):
    pending = make_delivery(status="pending")
    sending = make_delivery(status="sending")

    response = admin_client.post(
        url("deliveries_notificationdelivery_changelist"),
        {"action": "cancel_deliveries", "_selected_action": [pending.pk, sending.pk]},
    )

    pending.refresh_from_db()
    sending.refresh_from_db()
    assert (pending.status, pending.error_code) == ("cancelled", "CANCELLED")
    assert sending.status == "sending"
    assert messages_of(response)[0] == "1 delivery(ies) cancelled."


def test_notification_cancel_action_and_filters(admin_client, user):
    make_provider("c-mail", provider_type="email", provider_class="smtp")
    make_provider("c-sms", provider_type="sms", provider_class="twilio")
    note = make_notification(user, delivery_channels=["email", "sms"])
    first = make_delivery(notification=note, provider_name="c-mail")
    second = make_delivery(
        notification=note, delivery_type="sms", provider_type="sms", provider_name="c-sms"
    )
    other = make_notification(user, title="other")
    make_delivery(notification=other, provider_name="c-mail", status="sent")

    listed = admin_client.get(
        url("deliveries_notification_changelist"), {"channel": "sms", "status__exact": "pending"}
    )
    assert [n.pk for n in listed.context["cl"].result_list] == [note.pk]
    by_provider = admin_client.get(url("deliveries_notification_changelist"), {"provider": "c-sms"})
    assert [n.pk for n in by_provider.context["cl"].result_list] == [note.pk]

    response = admin_client.post(
        url("deliveries_notification_changelist"),
        {"action": "cancel_notifications", "_selected_action": [note.pk]},
    )

    assert response.status_code == 302
    note.refresh_from_db()
    assert note.status == "cancelled"
    assert set(
        NotificationDelivery.objects.filter(pk__in=[first.pk, second.pk]).values_list(
            "status", flat=True
        )
    ) == {"cancelled"}
    assert messages_of(response) == ["1 notification(s) cancelled."]


# --- dashboard ---------------------------------------------------------------------------


def bars(html: str, chart_id: str) -> dict[tuple[str, str], str]:
    svg = re.search(rf'<svg class="np-chart" id="{chart_id}".*?</svg>', html, re.S)
    assert svg is not None, chart_id
    return {
        (series, label): value
        for series, label, value in re.findall(
            r'data-series="([^"]*)" data-label="([^"]*)" data-value="([^"]*)"', svg.group(0)
        )
    }


def test_dashboard_draws_hours_providers_and_funnel_from_the_rows(admin_client, user, other_user):
    now = timezone.localtime()
    this_hour = now.replace(minute=0, second=0, microsecond=0)

    def at(hours_ago: int, **fields) -> None:
        row = make_delivery(**fields)
        NotificationDelivery.objects.filter(pk=row.pk).update(
            created_at=this_hour - timedelta(hours=hours_ago) + timedelta(minutes=1)
        )

    # deliveries per hour: this hour 2 delivered + 1 failed, 3 hours ago 1 sent, 30 h ago 1
    sent_at = now
    at(0, status="delivered", provider_name="p-a", sent_at=sent_at, cost_per_message=Decimal("0.5"))
    at(0, status="delivered", provider_name="p-a", sent_at=sent_at, cost_per_message=Decimal("0.5"))
    at(0, status="failed", provider_name="p-b", sent_at=sent_at, cost_per_message=Decimal("0.25"))
    at(3, status="sent", provider_name="p-b", sent_at=sent_at, cost_per_message=Decimal("0.25"))
    at(30, status="delivered", provider_name="p-b", sent_at=sent_at)
    # invitations: 4 created, 3 sent, 2 viewed, 1 accepted
    invitations = [
        StoryInvitation.objects.create(
            inviter=user,
            invitee_email=f"guest{i}@example.test",
            token=f"console-tok-{i}",
            expires_at=now + timedelta(days=7),
        )
        for i in range(4)
    ]
    for invitation, actions in zip(
        invitations, (["sent", "viewed", "accepted"], ["sent", "viewed"], ["sent"], []), strict=True
    ):
        for action in actions:
            UserInvitationHistory.objects.create(
                invitation=invitation, user=other_user, action=action
            )

    response = admin_client.get(reverse("admin_dashboard"))

    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/html")
    html = response.content.decode()
    hour_key = this_hour.isoformat()
    three_ago = (this_hour - timedelta(hours=3)).isoformat()
    assert bars(html, "chart-deliveries-per-hour") == {
        ("delivered", hour_key): "2",
        ("failed", hour_key): "1",
        ("sent", three_ago): "1",
    }
    assert bars(html, "chart-provider-success") == {
        ("success_rate", "p-a (email)"): "100.00",
        ("success_rate", "p-b (email)"): "33.33",
    }
    assert bars(html, "chart-provider-cost") == {
        ("total_cost", "p-a (email)"): "1.000000",
        ("total_cost", "p-b (email)"): "0.500000",
    }
    assert bars(html, "chart-invitation-funnel") == {
        ("funnel", "created"): "4",
        ("funnel", "sent"): "3",
        ("funnel", "viewed"): "2",
        ("funnel", "accepted"): "1",
    }
    kpis = response.context["kpis"]
    assert kpis["total"] == 4
    assert kpis["by_status"] == {"delivered": 2, "failed": 1, "sent": 1}
    assert kpis["success_rate"] == Decimal("75.00")
    assert '<tr data-step="accepted"><td>accepted</td><td>1</td><td>25.00 %</td></tr>' in html
    assert '<div class="np-kpi" id="kpi-deliveries">Deliveries, last 24 h<b>4</b></div>' in html
    # no external scripts or stylesheets: everything is served by this app
    assert re.findall(r'(?:src|href)="(https?://[^"]*)"', html) == []


def test_dashboard_is_staff_only_and_linked_from_the_index(admin_client, user):
    visitor = Client()
    visitor.force_login(user)  # not staff
    response = visitor.get(reverse("admin_dashboard"))
    assert response.status_code == 302
    assert response["Location"].startswith(reverse("admin:login"))

    index = admin_client.get(reverse("admin:index")).content.decode()
    assert f'<a href="{reverse("admin_dashboard")}" id="np-dashboard-link">' in index


def test_dashboard_with_no_data_still_draws_empty_charts(admin_client):
    response = admin_client.get(reverse("admin_dashboard"))

    html = response.content.decode()
    assert response.status_code == 200
    assert bars(html, "chart-deliveries-per-hour") == {}
    assert bars(html, "chart-invitation-funnel") == {
        ("funnel", "created"): "0",
        ("funnel", "sent"): "0",
        ("funnel", "viewed"): "0",
        ("funnel", "accepted"): "0",
    }
    assert "No deliveries in the last 24 hours." in html


# --- realtime ----------------------------------------------------------------------------


def test_connections_list_defaults_to_live_connections(admin_client, user):
    now = timezone.now()

    def connection_row(socket_id: str, status: str, **fields) -> WebsocketConnection:
        return WebsocketConnection.objects.create(
            user=user,
            session_id="s",
            socket_id=socket_id,
            connection_status=status,
            client_ip="203.0.113.7",
            user_agent="test",
            connected_at=now,
            **fields,
        )

    live = connection_row(
        "live-1",
        "connected",
        subscriptions=["auction.7", "news", "a", "b", "c", "d"],
        messages_sent=12,
    )
    gone = connection_row("gone-1", "disconnected", disconnected_at=now)
    changelist = url("realtime_websocketconnection_changelist")

    default = admin_client.get(changelist)
    everything = admin_client.get(changelist, {"state": "all"})
    closed = admin_client.get(changelist, {"state": "closed"})

    assert [c.pk for c in default.context["cl"].result_list] == [live.pk]
    assert {c.pk for c in everything.context["cl"].result_list} == {live.pk, gone.pk}
    assert [c.pk for c in closed.context["cl"].result_list] == [gone.pk]
    html = default.content.decode()
    assert '<td class="field-subscribed_to">auction.7, news, a, b, c (+1)</td>' in html
    assert '<td class="field-client_ip">203.0.113.7</td>' in html
    assert '<td class="field-messages_sent">12</td>' in html
    # the default choice is shown as selected
    assert re.search(r'<li class="selected">\s*<a href="\?state=live"', html)
