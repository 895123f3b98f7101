"""Demo users, the provider registry with health history, templates and preferences."""

from __future__ import annotations

import os
from datetime import time
from decimal import Decimal
from typing import Any

from django.conf import settings
from django.contrib.auth.hashers import make_password

from deliveries.models import UserNotificationPreference
from providers.models import Provider, ProviderHealthMetric
from templates.models import NotificationTemplate
from users.models import Device, User

from .base import DEMO_PASSWORD, Seeder

USERS: list[dict[str, Any]] = [
    {
        "email": "alice@example.com",
        "display_name": "Alice Anders",
        "phone": "+14155550101",
        "timezone": "America/New_York",
        "locale": "en",
        "region": "us-east",
    },
    {
        "email": "bob@example.com",
        "display_name": "Bob Brennan",
        "phone": "+447700900102",
        "timezone": "Europe/London",
        "locale": "en-GB",
        "region": "eu-west",
    },
    {
        "email": "carol@example.com",
        "display_name": "Carol Chen",
        "phone": "+81312345678",
        "timezone": "Asia/Tokyo",
        "locale": "ja",
        "region": "ap-northeast",
    },
    {
        "email": "dave@example.com",
        "display_name": "Dave Dawson",
        "phone": "+61491570103",
        "timezone": "Australia/Sydney",
        "locale": "en-AU",
        "region": "ap-southeast",
    },
    {
        "email": "erin@example.com",
        "display_name": "Erin Esteves",
        "phone": "+5511987650104",
        "timezone": "America/Sao_Paulo",
        "locale": "pt-BR",
        "region": "sa-east",
    },
    {
        "email": "sam.seller@example.com",
        "display_name": "Sam Seller (Vintage Finds)",
        "phone": "+4915112345678",
        "timezone": "Europe/Berlin",
        "locale": "de",
        "region": "eu-central",
    },
]


def sandbox_url() -> str:
    return getattr(settings, "NP_SANDBOX_URL", None) or os.environ.get(
        "NP_SANDBOX_URL", "http://127.0.0.1:8001"
    )


def provider_definitions() -> list[dict[str, Any]]:
    """The demo provider registry: one or more providers for every channel.

    Credentials are environment variable names only; ``configuration`` is non-secret.
    Every HTTP provider's API base URL is the provider sandbox (``NP_SANDBOX_URL``, which
    ``make run`` sets to its sandbox, with the sandbox's credentials in the environment),
    so a demo delivery goes pending → sent → delivered by the sandbox's signed receipt.
    Web Push and webhooks have no base URL: their targets are the recipients' own URLs.
    """
    sandbox = sandbox_url()
    return [
        {
            # second: SMTP has no delivery receipts, so the demo's email goes through
            # Mailgun (the sandbox) and reaches "delivered"; SMTP is its fallback
            "provider_name": "smtp-local",
            "provider_type": "email",
            "provider_class": "smtp",
            "priority": 20,
            "cost_per_message": Decimal("0"),
            "rate_limit_per_minute": 600,
            "configuration": {
                "host": settings.EMAIL_HOST,
                "port": settings.EMAIL_PORT,
                "use_tls": settings.EMAIL_USE_TLS,
                "from_email": settings.DEFAULT_FROM_EMAIL,
            },
            "credentials_required": [],
            "supported_features": {"html": True, "attachments": True, "receipts": False},
        },
        {
            "provider_name": "mailgun",
            "provider_type": "email",
            "provider_class": "mailgun",
            "priority": 10,
            "cost_per_message": Decimal("0.000800"),
            "rate_limit_per_minute": 300,
            "rate_limit_per_day": 100000,
            "health_check_url": f"{sandbox}/_sandbox/health",
            "configuration": {
                "api_base_url": sandbox,
                "domain": "mg.example.com",
                "from_email": "notifyplatform <noreply@mg.example.com>",
            },
            "credentials_required": ["MAILGUN_API_KEY"],
            "webhook_config": {
                "signing_key_env": "MAILGUN_WEBHOOK_SIGNING_KEY",
                "events": ["delivered", "failed", "complained"],
            },
            "supported_features": {"html": True, "tracking": True, "receipts": True},
        },
        {
            "provider_name": "console",
            "provider_type": "email",
            "provider_class": "console",
            "priority": 1000,
            "cost_per_message": Decimal("0"),
            "credentials_required": [],
            "configuration": {"note": "prints messages to the worker log; last resort"},
            "supported_features": {"html": False},
        },
        {
            "provider_name": "twilio",
            "provider_type": "sms",
            "provider_class": "twilio",
            "priority": 10,
            "cost_per_message": Decimal("0.007900"),
            "rate_limit_per_minute": 100,
            "configuration": {"api_base_url": sandbox, "from_number": "+15005550006"},
            "credentials_required": ["TWILIO_ACCOUNT_SID", "TWILIO_AUTH_TOKEN"],
            "webhook_config": {"status_callback": True},
            "supported_features": {"unicode": True, "receipts": True},
        },
        {
            "provider_name": "vonage",
            "provider_type": "sms",
            "provider_class": "vonage",
            "priority": 20,
            "cost_per_message": Decimal("0.006800"),
            "rate_limit_per_minute": 60,
            "geographic_coverage": ["eu-west", "eu-central", "ap-northeast", "ap-southeast"],
            "configuration": {"api_base_url": sandbox, "from": "NotifyDemo"},
            "credentials_required": ["VONAGE_API_KEY", "VONAGE_API_SECRET"],
            "webhook_config": {"signature_secret_env": "VONAGE_SIGNATURE_SECRET"},
            "supported_features": {"unicode": True, "receipts": True},
        },
        {
            "provider_name": "fcm",
            "provider_type": "push",
            "provider_class": "fcm",
            "priority": 10,
            "cost_per_message": Decimal("0"),
            "rate_limit_per_minute": 6000,
            "configuration": {
                "api_base_url": sandbox,
                "token_url": f"{sandbox}/token",  # for FCM_SERVICE_ACCOUNT_JSON
                "project_id": "notifyplatform-demo",
            },
            # either this or FCM_SERVICE_ACCOUNT_JSON (the adapter accepts one for the other)
            "credentials_required": ["FCM_ACCESS_TOKEN"],
            "supported_features": {"data_messages": True},
        },
        {
            "provider_name": "webpush",
            "provider_type": "push",
            "provider_class": "webpush",
            "priority": 20,
            "cost_per_message": Decimal("0"),
            "configuration": {"vapid_subject": "mailto:ops@example.com", "ttl_seconds": 3600},
            "credentials_required": ["WEBPUSH_VAPID_PRIVATE_KEY"],
            "supported_features": {"encryption": "aes128gcm"},
        },
        {
            "provider_name": "webhook",
            "provider_type": "webhook",
            "provider_class": "webhook",
            "priority": 10,
            "cost_per_message": Decimal("0"),
            "rate_limit_per_minute": 1200,
            "configuration": {"timeout_seconds": 5, "signature_header": "X-Notify-Signature"},
            "credentials_required": ["WEBHOOK_SIGNING_SECRET"],
            "supported_features": {"signed": True},
        },
        {
            "provider_name": "in-app",
            "provider_type": "in_app",
            "provider_class": "in_app",
            "priority": 10,
            "cost_per_message": Decimal("0"),
            "credentials_required": [],
            "configuration": {"realtime": True},
            "supported_features": {"inbox": True},
        },
    ]


# Templates the demo adds when the catalogue (templates/migrations/0002_catalog.py) has
# no template for that type, channel and language: a few translations and a welcome.
DEMO_TEMPLATES: list[dict[str, Any]] = [
    {
        "invitation_type": "outbid",
        "delivery_type": "email",
        "language": "pt",
        "template_name": "Outbid (email, Português)",
        "subject_template": "Seu lance foi superado",
        "content_template": "Alguém ofereceu mais do que o seu lance de {{ amount }}. "
        "Dê um novo lance: {{ action_url }}",
        "template_variables": {
            "amount": {"required": True, "description": "Your beaten bid", "example": "$140.00"},
            "action_url": {
                "required": False,
                "default": "",
                "description": "Auction link",
                "example": "https://example.test/auctions/1",
            },
        },
    },
    {
        "invitation_type": "story_collaboration",
        "delivery_type": "email",
        "language": "pt",
        "template_name": "Story collaboration (email, Português)",
        "subject_template": "{{ inviter_name }} convidou você para escrever {{ story_title }}",
        "content_template": '{{ inviter_name }} quer escrever "{{ story_title }}" com você. '
        "Responda ao convite: {{ invitation_url }}",
        "template_variables": {
            "inviter_name": {"required": True, "description": "Inviter", "example": "Alice"},
            "story_title": {"required": True, "description": "Story", "example": "O Farol"},
            "invitation_url": {
                "required": True,
                "description": "Accept/decline link",
                "example": "https://example.test/i/abc",
            },
        },
    },
    {
        "invitation_type": "welcome",
        "delivery_type": "email",
        "language": "en",
        "template_name": "Welcome (email)",
        "subject_template": "Welcome to notifyplatform, {{ name }}",
        "content_template": "Hi {{ name }}, your account is ready. Manage your notification "
        "preferences any time.",
        "template_variables": {
            "name": {"required": True, "description": "Display name", "example": "Alice"}
        },
    },
    {
        "invitation_type": "welcome",
        "delivery_type": "in_app",
        "language": "en",
        "template_name": "Welcome (in-app)",
        "subject_template": "Welcome, {{ name }}",
        "content_template": "Your account is ready.",
        "template_variables": {
            "name": {"required": True, "description": "Display name", "example": "Alice"}
        },
    },
]


def seed_users(s: Seeder) -> None:
    password_hash: str | None = None
    for spec in USERS:
        user = User.objects.filter(email=spec["email"]).first()
        if user is None:
            # Password set only at creation: a second run never resets a changed one.
            # One hash for all demo users: a hash costs ~0.5 s by design, and the
            # password is public anyway.
            password_hash = password_hash or make_password(DEMO_PASSWORD)
            user = User.objects.create_user(password=None, **spec)
            user.password = password_hash
            user.save(update_fields=["password"])
            s.count(User, True)
        else:
            s.count(User, False)
        s.users[spec["email"].split("@")[0].split(".")[0]] = user


def seed_devices(s: Seeder) -> None:
    """Every demo user has a phone (FCM); the first also a browser (Web Push) and an old
    phone whose token the provider refused (disabled)."""
    for n, user in enumerate(s.users.values()):
        s.get(
            Device,
            {"user": user, "kind": "fcm", "platform": "android", "label": "Demo phone"},
            address=f"demo-device-{user.pk}",
        )
        if n == 0:
            s.get(
                Device,
                {
                    "user": user,
                    "kind": "webpush",
                    "platform": "web",
                    "label": "Firefox (demo)",
                    "subscription": {
                        "endpoint": f"https://push.example.test/wp/demo-{user.pk}",
                        "keys": {"p256dh": "BDemoPublicKey", "auth": "ZGVtbw"},
                    },
                },
                address=f"https://push.example.test/wp/demo-{user.pk}",
            )
            s.get(
                Device,
                {
                    "user": user,
                    "kind": "fcm",
                    "platform": "ios",
                    "label": "Old phone (demo)",
                    "disabled_at": s.ago(days=3),
                    "disabled_reason": "fcm: UNREGISTERED",
                },
                address=f"demo-old-device-{user.pk}",
            )


def seed_providers(s: Seeder) -> None:
    for spec in provider_definitions():
        spec = {**spec}
        name = spec.pop("provider_name")
        _, created = Provider.objects.update_or_create(provider_name=name, defaults=spec)
        s.count(Provider, created)
    # Health history only for providers that have none: real checks are never mixed
    # with invented ones on a second run.
    for provider in Provider.objects.filter(
        provider_name__in=[p["provider_name"] for p in provider_definitions()]
    ):
        if ProviderHealthMetric.objects.filter(provider_name=provider.provider_name).exists():
            continue
        unhealthy_earlier = provider.provider_name == "mailgun"
        rows = [
            dict(
                health_check_timestamp=s.ago(hours=2),
                is_healthy=not unhealthy_earlier,
                response_time_ms=2400 if unhealthy_earlier else 85,
                error_code="PROVIDER_TIMEOUT" if unhealthy_earlier else None,
                error_message="read timeout after 2s" if unhealthy_earlier else None,
                success_rate_1h=Decimal("62.50") if unhealthy_earlier else Decimal("100"),
                success_rate_24h=Decimal("97.10"),
                success_rate_7d=Decimal("98.40"),
            ),
            dict(
                health_check_timestamp=s.ago(minutes=5),
                is_healthy=True,
                response_time_ms=72,
                success_rate_1h=Decimal("99.20"),
                success_rate_24h=Decimal("98.90"),
                success_rate_7d=Decimal("99.10"),
                rate_limit_remaining=provider.rate_limit_per_minute,
            ),
        ]
        for row in rows:
            ProviderHealthMetric.objects.create(
                provider_name=provider.provider_name,
                provider_type=provider.provider_type,
                cost_per_message=provider.cost_per_message,
                geographic_region=next(iter(provider.geographic_coverage or []), None),
                **row,
            )
            s.count(ProviderHealthMetric, True)
        Provider.objects.filter(pk=provider.pk).update(last_health_check=s.ago(minutes=5))


def seed_templates(s: Seeder) -> None:
    for spec in DEMO_TEMPLATES:
        triple = (spec["invitation_type"], spec["delivery_type"], spec["language"])
        exists = NotificationTemplate.objects.filter(
            invitation_type=triple[0], delivery_type=triple[1], language=triple[2]
        ).exists()
        if exists:
            s.count(NotificationTemplate, False)
            continue
        template = NotificationTemplate(template_key=NotificationTemplate.make_key(*triple), **spec)
        template.clean()  # the same variable validation the admin form applies
        template.save()
        s.count(NotificationTemplate, True)


def seed_preferences(s: Seeder) -> None:
    u = s.users
    rows: list[tuple[User | None, str, str, dict[str, Any]]] = [
        # platform-wide default: in-app for everything
        (None, "*", "in_app", {"is_enabled": True}),
        # Dave opted out of news emails: a news_feed email to him is skipped
        (u["dave"], "news_feed", "email", {"is_enabled": False}),
        # Erin sleeps 22:00-07:00 São Paulo time: pushes wait until morning
        (
            u["erin"],
            "*",
            "push",
            {
                "quiet_hours_start": time(22),
                "quiet_hours_end": time(7),
                "timezone": "America/Sao_Paulo",
            },
        ),
        # Bob: at most 5 outbid SMS a day, through Vonage when possible
        (
            u["bob"],
            "outbid",
            "sms",
            {
                "frequency_limit": 5,
                "frequency_period": "daily",
                "preferred_providers": ["vonage"],
                "delivery_preferences": {"over_cap": "skip"},
            },
        ),
        # Alice never wants email through mailgun
        (u["alice"], "outbid", "email", {"blocked_providers": ["mailgun"]}),
        (u["carol"], "story_collaboration", "email", {"conversation_style": "formal"}),
    ]
    for user, kind, method, defaults in rows:
        pref = s.get(
            UserNotificationPreference,
            user=user,
            invitation_type=kind,
            delivery_method=method,
            defaults=defaults,
        )
        s.preferences[(user.email if user else "*", kind, method)] = pref
