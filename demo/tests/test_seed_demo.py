"""``manage.py seed_demo``: a realistic data set, and running it twice creates nothing."""

from __future__ import annotations

import hashlib
import io

import pytest
from django.apps import apps
from django.core.management import call_command

from auctions.models import Auction, AuctionRuleState, AuctionType
from campaigns.models import NotificationBatchJob
from deliveries.models import (
    DeliveryStatus,
    NotificationDelivery,
    UserNotificationPreference,
)
from demo.auctions import TYPE_DEMOS, type_demo_id
from invitations.models import (
    NewsArticle,
    NewsNarration,
    RoleplayTemplate,
    StoryInvitation,
    UserInvitationHistory,
)
from invitations.services import narration_render, narration_status
from providers.models import Provider, ProviderHealthMetric
from realtime.models import RealTimeEvent
from templates.models import NotificationTemplate
from users.models import User

pytestmark = pytest.mark.django_db

PROJECT_APPS = (
    "users",
    "templates",
    "providers",
    "deliveries",
    "invitations",
    "realtime",
    "auctions",
)


def seed() -> str:
    out = io.StringIO()
    call_command("seed_demo", stdout=out)
    return out.getvalue()


def row_counts() -> dict[str, int]:
    return {
        model._meta.db_table: model._default_manager.count()
        for label in PROJECT_APPS
        for model in apps.get_app_config(label).get_models()
        if model._meta.managed
    }


def test_running_twice_creates_nothing_new():
    first_output = seed()
    after_first = row_counts()

    second_output = seed()

    assert row_counts() == after_first
    assert "seed_demo: 0 rows created" in second_output
    assert "seed_demo: 0 rows created" not in first_output
    assert after_first["users"] == 6
    empty = sorted(table for table, n in after_first.items() if n == 0)
    assert empty == ["api_tokens"]


def test_demo_users_log_in_with_the_printed_password():
    output = seed()

    assert "demo-password-1" in output
    users = User.objects.order_by("email")
    assert [u.email for u in users] == [
        "alice@example.com",
        "bob@example.com",
        "carol@example.com",
        "dave@example.com",
        "erin@example.com",
        "sam.seller@example.com",
    ]
    assert all(u.check_password("demo-password-1") for u in users)
    assert len({u.timezone for u in users}) == 6
    assert len({u.region for u in users}) == 6
    for user in users:
        assert user.email in output


def test_a_second_run_keeps_a_changed_password():
    seed()
    alice = User.objects.get(email="alice@example.com")
    alice.set_password("changed-by-alice-9")
    alice.save()

    seed()

    alice.refresh_from_db()
    assert alice.check_password("changed-by-alice-9")


def test_deliveries_cover_every_status_with_their_reasons():
    seed()

    statuses = set(NotificationDelivery.objects.values_list("status", flat=True))
    assert statuses == set(DeliveryStatus.values)
    failed = NotificationDelivery.objects.get(status="failed")
    assert (failed.error_code, failed.provider_name) == ("INVALID_RECIPIENT", "twilio")
    skipped = NotificationDelivery.objects.get(status="skipped")
    opt_out = UserNotificationPreference.objects.get(
        user__email="dave@example.com", invitation_type="news_feed", delivery_method="email"
    )
    assert opt_out.is_enabled is False
    assert skipped.delivery_metadata["decision"] == {
        "rule": "OPTED_OUT",
        "preference_id": opt_out.pk,
        "detail": "news_feed/email disabled by user",
    }
    # invitation deliveries share the table (no notification row)
    assert (
        NotificationDelivery.objects.filter(
            notification__isnull=True, invitation__isnull=False
        ).count()
        == 2
    )


def test_invitations_of_every_type_in_several_statuses_with_history():
    seed()

    by_type = {}
    for kind, status in StoryInvitation.objects.values_list("invitation_type", "status"):
        by_type.setdefault(kind, set()).add(status)
    assert by_type == {
        "story_collaboration": {"accepted", "sent", "pending", "declined"},
        "news_feed": {"viewed", "expired"},
        "roleplay_invitation": {"accepted", "sent", "cancelled"},
    }
    accepted = StoryInvitation.objects.get(invitation_type="story_collaboration", status="accepted")
    actions = list(
        UserInvitationHistory.objects.filter(invitation=accepted)
        .order_by("action_timestamp")
        .values_list("action", flat=True)
    )
    assert actions == ["sent", "received", "viewed", "accepted"]
    assert len({i.token for i in StoryInvitation.objects.all()}) == 9


def test_news_articles_are_hashed_by_title_and_summary():
    seed()

    articles = NewsArticle.objects.all()
    assert articles.count() == 3
    for article in articles:
        expected = hashlib.sha256((article.title + article.summary).encode()).hexdigest()
        assert article.content_hash == expected
    assert sum(a.narrations.count() for a in articles) == 1


def test_providers_cover_every_channel_and_point_at_the_sandbox(monkeypatch):
    monkeypatch.setenv("NP_SANDBOX_URL", "http://127.0.0.1:9999")

    seed()

    providers = {p.provider_name: p for p in Provider.objects.all()}
    assert {p.provider_type for p in providers.values()} == {
        "email",
        "sms",
        "push",
        "webhook",
        "in_app",
    }
    mailgun = providers["mailgun"]
    assert (mailgun.provider_type, mailgun.priority) == ("email", 10)
    assert mailgun.configuration["api_base_url"] == "http://127.0.0.1:9999"
    assert mailgun.credentials_required == ["MAILGUN_API_KEY"]
    assert providers["smtp-local"].priority == 20
    email_order = list(
        Provider.objects.filter(provider_type="email")
        .order_by("priority")
        .values_list("provider_name", flat=True)
    )
    assert email_order == ["mailgun", "smtp-local", "console"]
    assert providers["vonage"].geographic_coverage == [
        "eu-west",
        "eu-central",
        "ap-northeast",
        "ap-southeast",
    ]
    assert all(p.cost_per_message is not None for p in providers.values())
    assert set(ProviderHealthMetric.objects.values_list("provider_name", flat=True)) == set(
        providers
    )


def test_templates_never_duplicate_or_overwrite_the_catalogue():
    NotificationTemplate.objects.filter(invitation_type="welcome").delete()
    custom = NotificationTemplate.objects.create(
        template_key="custom.welcome",
        template_name="Ours",
        invitation_type="welcome",
        delivery_type="email",
        language="en",
        content_template="Hello {{ name }}",
        template_variables={"name": {"required": True}},
    )
    before = dict(NotificationTemplate.objects.values_list("template_key", "content_template"))

    seed()

    after = dict(NotificationTemplate.objects.values_list("template_key", "content_template"))
    assert {k: after[k] for k in before} == before  # nothing pre-existing was changed
    # the demo's own templates fill only the (type, channel, language) slots still empty
    demo_keys = {
        "outbid.email.pt",
        "story_collaboration.email.pt",
        "welcome.email.en",
        "welcome.in_app.en",
    }
    assert set(after) - set(before) == demo_keys - {"welcome.email.en"} - set(before)
    assert (
        NotificationTemplate.objects.get(
            invitation_type="welcome", delivery_type="email", language="en"
        ).pk
        == custom.pk
    )


def test_auctions_of_several_types_with_bids_and_a_winner():
    seed()

    rows = {
        a.auction_type + ":" + a.status: a
        for a in Auction.objects.exclude(pk__in=[type_demo_id(t) for t in TYPE_DEMOS])
    }
    assert set(rows) == {
        "english:active",
        "penny:active",
        "sealed_first_price:active",
        "vickrey:scheduled",
        "english:completed",
        "dutch:draft",
    }
    english = rows["english:active"]
    assert english.bids.count() == english.bid_count == 3
    assert english.bids.get(status="leading").amount == english.current_price
    completed = rows["english:completed"]
    assert completed.winner.email == "carol@example.com"
    assert completed.bids.get(status="won").amount == completed.final_price
    assert rows["vickrey:scheduled"].bids.count() == 0


def test_batch_jobs_in_every_status_and_events_numbered_by_the_database():
    seed()

    assert set(NotificationBatchJob.objects.values_list("status", flat=True)) == {
        "pending",
        "running",
        "completed",
        "failed",
        "cancelled",
    }
    sequence = list(
        RealTimeEvent.objects.order_by("generated_at").values_list("sequence_number", flat=True)
    )
    assert len(sequence) == 4
    assert sequence == sorted(sequence)
    assert len(set(sequence)) == 4


def test_one_running_auction_of_each_of_the_13_types_with_its_rules():
    seed()
    running = Auction.objects.filter(pk__in=[type_demo_id(t) for t in TYPE_DEMOS])
    assert sorted(a.auction_type for a in running) == sorted(AuctionType.values)
    assert {a.status for a in running} == {"active"}
    states = {s.auction.auction_type: s for s in AuctionRuleState.objects.select_related("auction")}
    dutch = states["dutch"]
    assert dutch.clock_due_at is not None and dutch.auction.current_price < 300
    assert len(states["candle"].commitment) == 64 and states["candle"].clock_due_at is not None
    assert states["buy_it_now"].config["buy_now_price"] == "350.00"


def test_the_demo_narration_is_requested_and_a_worker_renders_it_with_real_audio(
    settings, tmp_path
):
    settings.NP_NARRATION_AUDIO_DIR = tmp_path
    output = seed()

    narration = NewsNarration.objects.get()
    assert narration_status(narration) == "pending"
    assert narration.audio_file_url is None  # no made-up audio: the worker records it
    assert f"Narration {narration.pk}: queued" in output

    # what the queued task (invitations.narrate_article) does on the worker
    rendered = narration_render(narration_id=narration.pk)

    assert rendered is not None and narration_status(rendered) == "ready"
    audio = tmp_path / rendered.narration_metadata["audio_file"]
    assert audio.read_bytes()[:4] == b"RIFF" and rendered.total_duration >= 1
    assert rendered.segments[0]["text"].startswith("City council approves")
    assert f"Narration {narration.pk}: ready." in seed()  # not queued again


def test_roleplay_template_with_its_roles_is_seeded_once():
    seed()
    seed()

    template = RoleplayTemplate.objects.get()
    roles = sorted(template.roles.values_list("role_name", flat=True))
    assert roles == ["Inspector Hale", "Mara", "Tobias"]
