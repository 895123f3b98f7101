"""The inviter is told how an invitation ended — accepted, declined, expired (by the beat
task) — through notify(): once per outcome, preferences honoured, and the in-app copy
reaches the inviter live as a private real-time event (sent by a real Celery worker)."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from deliveries.models import Notification, NotificationDelivery, UserNotificationPreference
from invitations.errors import InvitationError
from invitations.models import StoryInvitation
from invitations.services import invitation_accept, invitation_create, invitation_decline
from invitations.tasks import expire_invitations
from invitations.tests.conftest import wait_for
from realtime.models import RealTimeEvent

pytestmark = pytest.mark.django_db


@pytest.fixture
def guest(make_user):
    return make_user(email="gil@example.test", display_name="Gil")


def invite(inviter, guest, story, **kwargs):
    return invitation_create(
        inviter=inviter, invitation_type="story_collaboration", invitee_user=guest, story=story,
        **kwargs,
    )


def told(inviter, event_type: str) -> list[Notification]:
    return list(Notification.objects.filter(user=inviter, event_type=event_type))


def test_accepting_tells_the_inviter_once(inviter, guest, story):
    invitation = invite(inviter, guest, story)
    invitation_accept(invitation=invitation)
    with pytest.raises(InvitationError):  # a second answer changes nothing
        invitation_accept(invitation=invitation)
    [note] = told(inviter, "invitation_accepted")
    assert note.title == "Gil accepted your invitation"
    assert note.message == (
        "Gil accepted your story collaboration invitation to The Lighthouse Keeper."
    )
    assert note.category == "invitation"
    assert note.metadata == {"invitation_id": invitation.pk, "outcome": "accepted"}
    assert sorted(note.delivery_channels) == ["email", "in_app"]
    assert told(inviter, "invitation_declined") == []
    # the invitee is not told of their own answer
    assert not Notification.objects.filter(user=guest, event_type="invitation_accepted").exists()


def test_declining_tells_the_inviter_with_the_address_they_typed(inviter, story):
    invitation = invitation_create(
        inviter=inviter, invitation_type="story_collaboration",
        invitee_email="nobody@example.test", story=story,
    )
    invitation_decline(invitation=invitation)
    [note] = told(inviter, "invitation_declined")
    assert note.title == "nobody@example.test declined your invitation"
    assert told(inviter, "invitation_accepted") == []


def test_roleplay_outcome_names_the_role(inviter, guest, roleplay):
    template, captain, _ = roleplay
    invitation = invitation_create(
        inviter=inviter, invitation_type="roleplay_invitation", invitee_user=guest,
        roleplay_template=template, role=captain,
    )
    invitation_accept(invitation=invitation)
    [note] = told(inviter, "invitation_accepted")
    assert "Captain Reyes in Mutiny on the Starlight" in note.message


def test_the_expiry_task_tells_the_inviter_once(inviter, guest, story):
    invitation = invite(inviter, guest, story)
    StoryInvitation.objects.filter(pk=invitation.pk).update(
        expires_at=timezone.now() - timedelta(minutes=1)
    )
    assert expire_invitations() == 1
    assert expire_invitations() == 0
    [note] = told(inviter, "invitation_expired")
    assert note.title == "Your invitation to Gil expired"
    assert note.priority == "low"
    assert note.delivery_channels == ["in_app"]


def test_an_expired_answer_attempt_tells_the_inviter_of_the_expiry(inviter, guest, story):
    invitation = invite(inviter, guest, story)
    StoryInvitation.objects.filter(pk=invitation.pk).update(
        expires_at=timezone.now() - timedelta(minutes=1)
    )
    invitation.refresh_from_db()
    with pytest.raises(InvitationError) as exc:
        invitation_accept(invitation=invitation)
    assert exc.value.code == "INVITATION_EXPIRED"
    assert len(told(inviter, "invitation_expired")) == 1
    assert told(inviter, "invitation_accepted") == []


def test_the_inviters_opt_out_is_honoured(inviter, guest, story):
    # the inviter wants no email about accepted invitations (in-app is fine)
    UserNotificationPreference.objects.create(
        user=inviter, invitation_type="invitation_accepted", delivery_method="email",
        is_enabled=False,
    )
    invitation_accept(invitation=invite(inviter, guest, story))
    [note] = told(inviter, "invitation_accepted")
    deliveries = dict(
        NotificationDelivery.objects.filter(notification=note).values_list(
            "delivery_type", "status"
        )
    )
    assert deliveries["email"] == "skipped"
    assert deliveries["in_app"] == "pending"


@pytest.mark.django_db(transaction=True)
def test_the_inviter_gets_a_live_event_from_a_real_worker(
    inviter, guest, story, channel_providers, smtp_server, celery_worker_process
):
    invitation_accept(invitation=invite(inviter, guest, story))
    event = wait_for(
        lambda: RealTimeEvent.objects.filter(
            user=inviter, event_type="notification.created",
            event_data__title="Gil accepted your invitation",
        ).first(),
        timeout=60,
    )
    assert event is not None, "the in-app notification never reached the inviter's stream"
    assert event.visibility == "private"
