"""The admin console: every model registered, every page opens on the demo data set,
JSON shown readably, list pages free of N+1 queries, API tokens created and revoked
through the token services."""

from __future__ import annotations

import hashlib
import io
import json
import re
from datetime import timedelta

import pytest
from django.apps import apps
from django.contrib import admin
from django.contrib.admin.utils import quote
from django.core.management import call_command
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone
from django.utils.html import escape

from auctions.models import Auction, Bid
from deliveries.models import Notification, NotificationDelivery
from invitations.models import StoryInvitation
from providers.models import Provider
from realtime.models import RealTimeEvent
from users.models import ApiToken, User

PROJECT_APPS = (
    "users",
    "templates",
    "providers",
    "deliveries",
    "invitations",
    "realtime",
    "auctions",
)
REGISTERED = sorted(admin.site._registry, key=lambda m: m._meta.label)
VIEW_MODELS = [m for m in REGISTERED if not m._meta.managed]


def admin_url(model, action: str, *args) -> str:
    return reverse(f"admin:{model._meta.app_label}_{model._meta.model_name}_{action}", args=args)


@pytest.fixture
def seeded(db):
    call_command("seed_demo", stdout=io.StringIO())


@pytest.fixture
def superuser(db):
    # no password: force_login needs none, and each hash costs ~0.5 s
    return User.objects.create_superuser(email="root@example.test", password=None)


@pytest.fixture
def admin_client(client, superuser):
    client.force_login(superuser)
    return client


def test_every_project_model_is_registered():
    models = {m for label in PROJECT_APPS for m in apps.get_app_config(label).get_models()}
    missing = {m._meta.label for m in models} - {m._meta.label for m in admin.site._registry}
    assert missing == set()


def test_the_three_analytics_views_are_registered_read_only(admin_client):
    assert sorted(m._meta.db_table for m in VIEW_MODELS) == [
        "invitation_conversion_funnel",
        "provider_performance_summary",
        "user_invitation_summary",
    ]
    for model in VIEW_MODELS:
        model_admin = admin.site._registry[model]
        request = admin_client.get("/").wsgi_request
        assert model_admin.has_add_permission(request) is False
        assert model_admin.has_change_permission(request) is False
        assert model_admin.has_delete_permission(request) is False
        assert admin_client.get(admin_url(model, "add")).status_code == 403


def test_every_admin_page_opens_on_the_demo_data(seeded, admin_client):
    """For each registered model: the list page, the add page where adding is allowed,
    and the change page of a seeded row (every project table has one)."""
    failures = {}
    opened = 0
    for model in REGISTERED:
        model_admin = admin.site._registry[model]
        urls = [admin_url(model, "changelist")]
        request = admin_client.get(urls[0]).wsgi_request
        if model_admin.has_add_permission(request):
            urls.append(admin_url(model, "add"))
        if model._meta.app_label in PROJECT_APPS and model is not ApiToken:
            obj = model._default_manager.first()
            if obj is None:
                failures[model._meta.label] = "seed_demo left the table empty"
                continue
            urls.append(admin_url(model, "change", quote(obj.pk)))
        for url in urls:
            status = admin_client.get(url).status_code
            opened += 1
            if status != 200:
                failures[url] = status

    assert failures == {}
    # every model contributed its list page and at least one add or change page
    assert opened >= 2 * len(REGISTERED)


def test_changelist_search_and_filters_work(seeded, admin_client):
    response = admin_client.get(
        admin_url(NotificationDelivery, "changelist"), {"status__exact": "failed", "q": "twilio"}
    )
    assert response.status_code == 200
    assert list(response.context["cl"].result_list.values_list("error_code", flat=True)) == [
        "INVALID_RECIPIENT"
    ]

    response = admin_client.get(admin_url(User, "changelist"), {"q": "carol"})
    assert [u.email for u in response.context["cl"].result_list] == ["carol@example.com"]


def test_read_only_json_is_a_pretty_printed_pre_block(seeded, admin_client):
    delivery = NotificationDelivery.objects.get(status="failed")

    response = admin_client.get(admin_url(NotificationDelivery, "change", delivery.pk))

    html = response.content.decode()
    expected = json.dumps(delivery.provider_response, indent=2, sort_keys=True)
    assert expected == '{\n  "code": 21211,\n  "status": 400\n}'
    assert (
        f'<pre class="np-json" style="margin:0;white-space:pre-wrap">{escape(expected)}</pre>'
        in html
    )
    # the raw field is not also an editable input
    assert 'name="provider_response"' not in html


def test_editable_json_is_an_indented_textarea(seeded, admin_client):
    provider = Provider.objects.get(provider_name="vonage")

    response = admin_client.get(admin_url(Provider, "change", provider.pk))

    rendered = str(response.context["adminform"].form["configuration"])
    assert rendered.startswith("<textarea")
    indented = json.dumps(provider.configuration, indent=2)
    assert indented.startswith('{\n  "from": "NotifyDemo",\n')
    assert f">\n{escape(indented)}</textarea>" in rendered


def test_editing_json_in_the_admin_saves_parsed_json(seeded, admin_client):
    provider = Provider.objects.get(provider_name="webhook")
    form = admin_client.get(admin_url(Provider, "change", provider.pk)).context["adminform"].form
    data = {name: form[name].value() for name in form.fields}
    data = {k: ("" if v is None else v) for k, v in data.items()}
    data["configuration"] = '{\n  "timeout_seconds": 9\n}'
    data["supported_features"] = json.dumps(provider.supported_features)
    data["webhook_config"] = "null"
    data["geographic_coverage"] = ""
    data["credentials_required"] = ",".join(provider.credentials_required)

    response = admin_client.post(admin_url(Provider, "change", provider.pk), data)

    assert response.status_code == 302, response.context["adminform"].form.errors
    provider.refresh_from_db()
    assert provider.configuration == {"timeout_seconds": 9}
    assert provider.webhook_config is None


@pytest.mark.parametrize(
    ("model", "grow"),
    [
        (Notification, "notifications"),
        (NotificationDelivery, "deliveries"),
        (Bid, "bids"),
        (StoryInvitation, "invitations"),
        (RealTimeEvent, "events"),
    ],
    ids=lambda v: v if isinstance(v, str) else v._meta.label,
)
def test_changelist_query_count_does_not_grow_with_rows(seeded, admin_client, model, grow):
    url = admin_url(model, "changelist")
    admin_client.get(url)  # warm caches (content types, sessions)
    with CaptureQueriesContext(connection) as before:
        assert admin_client.get(url).status_code == 200

    add_rows(grow, 10)
    with CaptureQueriesContext(connection) as after:
        assert admin_client.get(url).status_code == 200

    assert len(after) == len(before)


def add_rows(kind: str, n: int) -> None:
    """``n`` more rows, each with its own related users, so an N+1 would show."""
    now = timezone.now()
    auction = Auction.objects.first()
    for i in range(n):
        person = User.objects.create_user(email=f"extra{kind}{i}@example.test", password=None)
        if kind in {"notifications", "deliveries"}:
            note = Notification.objects.create(
                user=person,
                notification_type="email",
                category="system",
                priority="low",
                title=f"extra {i}",
                message="m",
                delivery_channels=["email"],
            )
            if kind == "deliveries":
                NotificationDelivery.objects.create(
                    notification=note,
                    delivery_type="email",
                    provider_type="email",
                    provider_name="smtp-local",
                    provider_priority=10,
                    recipient=person.email,
                    recipient_type="email",
                    status="pending",
                )
        elif kind == "bids":
            Bid.objects.create(
                auction=auction, bidder=person, amount=1000 + i, status="outbid", placed_at=now
            )
        elif kind == "invitations":
            StoryInvitation.objects.create(
                inviter=person,
                invitee_user=person,
                token=f"extra-{i}",
                expires_at=now + timedelta(days=1),
            )
        elif kind == "events":
            RealTimeEvent.objects.create(
                event_type="x",
                event_category="user",
                user=person,
                auction=auction,
                visibility="private",
                event_data={},
                broadcast_channels=[],
                generated_at=now,
            )


def test_user_admin_add_creates_a_user_with_email_login_and_password(admin_client):
    response = admin_client.post(
        admin_url(User, "add"),
        {
            "email": "New.Person@Example.TEST",
            "usable_password": "true",
            "password1": "a-long-pass-phrase-7",
            "password2": "a-long-pass-phrase-7",
            "display_name": "New Person",
            "timezone": "Europe/Paris",
            "locale": "fr",
            "region": "eu-west",
            "phone": "",
        },
    )

    assert response.status_code == 302
    created = User.objects.get(email="new.person@example.test")
    assert created.check_password("a-long-pass-phrase-7")
    assert (created.display_name, created.timezone, created.is_staff) == (
        "New Person",
        "Europe/Paris",
        False,
    )


def test_user_admin_add_rejects_a_case_variant_of_an_existing_email(admin_client, superuser):
    response = admin_client.post(
        admin_url(User, "add"),
        {
            "email": "ROOT@example.test",
            "usable_password": "true",
            "password1": "a-long-pass-phrase-7",
            "password2": "a-long-pass-phrase-7",
            "timezone": "UTC",
            "locale": "en",
        },
    )

    assert response.status_code == 200
    assert response.context["adminform"].form.errors["email"] == [
        "A user with this email already exists."
    ]
    assert User.objects.filter(email__iexact="root@example.test").count() == 1


def test_token_add_shows_the_secret_once_and_stores_only_its_hash(admin_client, superuser):
    response = admin_client.post(
        admin_url(ApiToken, "add"),
        {
            "user": superuser.pk,
            "name": "ci deploy",
            "is_service": "on",
            "expires_at_0": "",
            "expires_at_1": "",
        },
        follow=True,
    )

    assert response.status_code == 200
    secrets_shown = re.findall(r"<code>(np_[A-Za-z0-9_-]+)</code>", response.content.decode())
    assert len(secrets_shown) == 1
    raw = secrets_shown[0]
    token = ApiToken.objects.get()
    assert (token.name, token.is_service, token.user_id) == ("ci deploy", True, superuser.pk)
    assert token.key_hash == hashlib.sha256(raw.encode()).hexdigest()
    stored = [str(getattr(token, f.attname)) for f in ApiToken._meta.concrete_fields]
    assert raw not in stored
    assert token.key_prefix == raw[:10]

    # the change page and the list never show the secret or its hash again
    for url in (admin_url(ApiToken, "change", token.pk), admin_url(ApiToken, "changelist")):
        html = admin_client.get(url).content.decode()
        assert raw not in html
        assert token.key_hash not in html


def test_revoke_action_revokes_only_the_selected_tokens(admin_client, superuser):
    from users.services import token_authenticate, token_create

    kept, kept_raw = token_create(user=superuser, name="kept")
    revoked, revoked_raw = token_create(user=superuser, name="revoked")

    response = admin_client.post(
        admin_url(ApiToken, "changelist"),
        {"action": "revoke_tokens", "_selected_action": [revoked.pk]},
    )

    assert response.status_code == 302
    revoked.refresh_from_db()
    kept.refresh_from_db()
    assert revoked.revoked_at is not None
    assert kept.revoked_at is None
    assert token_authenticate(revoked_raw) is None
    assert token_authenticate(kept_raw).pk == kept.pk


def test_view_only_admins_show_json_pretty_printed_too(seeded, admin_client):
    event = RealTimeEvent.objects.get(event_type="outbid")

    response = admin_client.get(admin_url(RealTimeEvent, "change", event.pk))

    expected = json.dumps(event.event_data, indent=2, sort_keys=True)
    assert expected == '{\n  "amount": "110.00",\n  "new_amount": "140.00"\n}'
    assert f"{escape(expected)}</pre>" in response.content.decode()
