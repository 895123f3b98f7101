"""The seed's three analytics views return the right figures, including empty cases."""

from datetime import timedelta
from decimal import Decimal

import pytest
from django.db import IntegrityError, transaction
from django.utils import timezone

from deliveries.models import NotificationDelivery, ProviderPerformanceSummary
from invitations.models import (
    InvitationConversionFunnel,
    StoryInvitation,
    UserInvitationHistory,
    UserInvitationSummary,
)

pytestmark = pytest.mark.django_db


def invite(inviter, *, invitation_type="story_collaboration", style="neutral", n=[0]):
    n[0] += 1
    return StoryInvitation.objects.create(
        inviter=inviter,
        invitee_email=f"guest{n[0]}@example.test",
        token=f"tok-{n[0]}",
        expires_at=timezone.now() + timedelta(days=7),
        invitation_type=invitation_type,
        conversation_style=style,
    )


def history(invitation, user, *actions):
    for action in actions:
        UserInvitationHistory.objects.create(invitation=invitation, user=user, action=action)


def test_user_invitation_summary_counts_and_acceptance_rate(user, other_user):
    inv = [invite(user) for _ in range(3)]
    history(inv[0], other_user, "received", "accepted")
    history(inv[1], other_user, "received", "declined")
    history(inv[2], other_user, "received", "expired")
    history(inv[0], user, "sent")

    row = UserInvitationSummary.objects.get(user=other_user)
    assert (row.invitations_received, row.invitations_accepted) == (3, 1)
    assert (row.invitations_declined, row.invitations_expired) == (1, 1)
    assert row.acceptance_rate == Decimal("33.33")
    sender = UserInvitationSummary.objects.get(user=user)
    assert sender.invitations_sent == 1
    # nothing received: the rate is NULL, not a division error
    assert sender.acceptance_rate is None


def test_provider_performance_summary_success_rate_and_costs():
    now = timezone.now()
    common = dict(
        delivery_type="email", provider_type="email", provider_name="mailgun",
        provider_priority=1, recipient="a@example.test", recipient_type="email", sent_at=now,
    )
    for status, cost in [("delivered", "0.001000"), ("delivered", "0.003000"), ("failed", "0.002000"), ("sent", None)]:
        NotificationDelivery.objects.create(status=status, cost_per_message=cost, **common)
    # never sent: not part of the summary
    NotificationDelivery.objects.create(**{**common, "sent_at": None, "status": "pending"})

    row = ProviderPerformanceSummary.objects.get(provider_name="mailgun")
    assert (row.total_deliveries, row.successful_deliveries, row.failed_deliveries) == (4, 2, 1)
    assert row.success_rate == Decimal("50.00")
    assert row.total_cost == Decimal("0.006000")
    assert row.avg_cost_per_message == Decimal("0.002")


def test_conversion_funnel_rates_and_the_zero_case(user, other_user):
    a, b, c, d = (invite(user, invitation_type="news_feed", style="casual") for _ in range(4))
    history(a, other_user, "sent", "viewed", "viewed", "accepted")  # viewed twice: counted once
    history(b, other_user, "sent", "viewed")
    history(c, other_user, "sent")
    history(d, other_user, "sent")
    invite(user, invitation_type="roleplay_invitation", style="formal")  # never sent

    news = InvitationConversionFunnel.objects.get(invitation_type="news_feed", conversation_style="casual")
    assert (news.total_invitations, news.invitations_sent) == (4, 4)
    assert (news.invitations_viewed, news.invitations_accepted) == (2, 1)
    assert news.view_rate == Decimal("50.00")
    assert news.conversion_rate == Decimal("50.00")

    idle = InvitationConversionFunnel.objects.get(invitation_type="roleplay_invitation")
    assert (idle.total_invitations, idle.invitations_sent, idle.invitations_viewed) == (1, 0, 0)
    assert idle.view_rate is None and idle.conversion_rate is None


def test_enumerated_columns_refuse_values_outside_their_choices(user):
    inv = invite(user)
    with pytest.raises(IntegrityError), transaction.atomic():
        UserInvitationHistory.objects.create(invitation=inv, user=user, action="teleported")
    with pytest.raises(IntegrityError), transaction.atomic():
        StoryInvitation.objects.filter(pk=inv.pk).update(invitation_type="carrier_pigeon")
