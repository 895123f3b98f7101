"""Invitation rules: validation per type, token actions and their errors (409/410),
one view per invitation, reminders, expiry, duplicate articles."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from deliveries.models import NotificationDelivery
from invitations.errors import InvitationError
from invitations.models import StoryInvitation, UserInvitationHistory
from invitations.selectors import invitation_get_by_token
from invitations.services import (
    RequestMeta,
    article_create,
    invitation_accept,
    invitation_create,
    invitation_decline,
    invitation_remind,
    invitation_view,
    invitations_due_for_reminder,
    invitations_expire_due,
)
from invitations.tokens import invitation_urls, token_sign

pytestmark = pytest.mark.django_db

META = RequestMeta(user_agent="UA/1", ip_address="198.51.100.4", referrer="https://ref.test/")


def error_of(fn, **kwargs) -> InvitationError:
    with pytest.raises(InvitationError) as info:
        fn(**kwargs)
    return info.value


def actions(invitation) -> list[str]:
    return list(
        UserInvitationHistory.objects.filter(invitation=invitation)
        .order_by("action_timestamp", "id").values_list("action", flat=True)
    )


def test_invitation_is_created_sent_and_carries_a_signed_token(inviter, story):
    invitation = invitation_create(
        inviter=inviter, invitation_type="story_collaboration", invitee_email="a@example.test",
        story=story,
    )
    assert invitation.status == "sent"
    assert (invitation.content_type, invitation.content_id) == ("story", story.pk)
    assert len(invitation.token) >= 43  # 32 random bytes, URL-safe base64
    assert invitation.delivery_preferences == {"channels": ["email"]}
    assert actions(invitation) == ["sent"]
    delivery = NotificationDelivery.objects.get(invitation=invitation)
    assert (delivery.delivery_type, delivery.recipient, delivery.status) == (
        "email", "a@example.test", "pending",
    )
    # the link resolves only when signed by this installation
    assert invitation_get_by_token(token_sign(invitation.token)) == invitation
    assert invitation_get_by_token(invitation.token) is None
    assert invitation_get_by_token(token_sign(invitation.token)[:-2] + "xx") is None
    assert invitation_urls(invitation.token)["accept_url"].endswith(
        f"/i/{token_sign(invitation.token)}/accept/"
    )


@pytest.mark.parametrize(
    ("kwargs", "code", "field"),
    [
        ({"invitation_type": "story_collaboration"}, "CONTENT_REQUIRED", "story"),
        ({"invitation_type": "news_feed"}, "CONTENT_REQUIRED", "article"),
        ({"invitation_type": "roleplay_invitation"}, "CONTENT_REQUIRED", "roleplay_template"),
        ({"invitation_type": "carrier_pigeon"}, "INVALID_INVITATION_TYPE", "invitation_type"),
        ({"invitation_type": "story_collaboration", "conversation_style": "shouty"},
         "INVALID_CONVERSATION_STYLE", "conversation_style"),
    ],
)
def test_bad_input_is_refused_naming_the_field_and_writes_nothing(inviter, kwargs, code, field):
    err = error_of(invitation_create, inviter=inviter, invitee_email="a@example.test", **kwargs)
    assert (err.code, err.field, err.status) == (code, field, 400)
    assert StoryInvitation.objects.count() == 0


def test_invitee_is_required_and_channels_must_reach_them(inviter, story):
    err = error_of(invitation_create, inviter=inviter, invitation_type="story_collaboration",
                   story=story)
    assert (err.code, err.field) == ("INVITEE_REQUIRED", "invitee_email")
    err = error_of(invitation_create, inviter=inviter, invitation_type="story_collaboration",
                   story=story, invitee_email="a@example.test",
                   delivery_preferences={"channels": ["sms"]})
    assert (err.code, err.field) == ("CHANNEL_UNAVAILABLE", "delivery_preferences.channels")
    assert err.message == "an invitee without an account cannot be reached by sms"


def test_roleplay_role_must_belong_to_the_template(inviter, roleplay, story):
    from invitations.models import RoleplayCharacterRole, RoleplayTemplate

    template, _, _ = roleplay
    other = RoleplayTemplate.objects.create(template_name="Other", total_characters=1)
    stranger = RoleplayCharacterRole.objects.create(roleplay_template=other, role_name="Stranger")
    err = error_of(invitation_create, inviter=inviter, invitation_type="roleplay_invitation",
                   invitee_email="a@example.test", roleplay_template=template, role=stranger)
    assert (err.code, err.field) == ("CONTENT_MISMATCH", "role")


def test_view_is_recorded_once_with_request_details(inviter, story):
    invitation = invitation_create(inviter=inviter, invitation_type="story_collaboration",
                                   invitee_email="a@example.test", story=story)
    assert invitation_view(invitation=invitation, meta=META) is True
    assert invitation_view(invitation=invitation, meta=META) is False
    invitation.refresh_from_db()
    assert invitation.status == "viewed"
    assert actions(invitation) == ["sent", "viewed"]
    row = UserInvitationHistory.objects.get(invitation=invitation, action="viewed")
    assert (row.user_agent, row.ip_address, row.referrer) == (
        "UA/1", "198.51.100.4", "https://ref.test/",
    )


def test_accepting_an_expired_invitation_is_410_and_records_the_expiry(inviter, story):
    invitation = invitation_create(inviter=inviter, invitation_type="story_collaboration",
                                   invitee_email="a@example.test", story=story)
    StoryInvitation.objects.filter(pk=invitation.pk).update(
        expires_at=timezone.now() - timedelta(seconds=1)
    )
    err = error_of(invitation_accept, invitation=invitation, meta=META)
    assert (err.code, err.status, err.message) == (
        "INVITATION_EXPIRED", 410, "this invitation has expired",
    )
    invitation.refresh_from_db()
    assert invitation.status == "expired"
    assert actions(invitation) == ["sent", "expired"]


def test_answering_twice_is_409(inviter, story):
    invitation = invitation_create(inviter=inviter, invitation_type="story_collaboration",
                                   invitee_email="a@example.test", story=story)
    invitation_decline(invitation=invitation, meta=META)
    for answer in (invitation_accept, invitation_decline):
        err = error_of(answer, invitation=invitation, meta=META)
        assert (err.code, err.status, err.message) == (
            "INVITATION_ALREADY_ANSWERED", 409, "this invitation was already declined",
        )
    # declining without viewing first still records the (implicit) view
    assert actions(invitation) == ["sent", "viewed", "declined"]


def test_a_taken_role_is_409_for_the_next_invitee_and_for_new_invitations(inviter, roleplay):
    template, captain, mate = roleplay
    first, second = (
        invitation_create(inviter=inviter, invitation_type="roleplay_invitation",
                          invitee_email=f"{n}@example.test", roleplay_template=template,
                          role=captain)
        for n in ("one", "two")
    )
    invitation_accept(invitation=first, meta=META)
    err = error_of(invitation_accept, invitation=second, meta=META)
    assert (err.code, err.status, err.field) == ("ROLE_TAKEN", 409, "role")
    assert err.message == "the role 'Captain Reyes' has already been taken"
    second.refresh_from_db()
    assert second.status == "sent"  # still open: the refusal changed nothing
    err = error_of(invitation_create, inviter=inviter, invitation_type="roleplay_invitation",
                   invitee_email="three@example.test", roleplay_template=template, role=captain)
    assert (err.code, err.status) == ("ROLE_TAKEN", 409)
    # the other role is still free
    free = invitation_create(inviter=inviter, invitation_type="roleplay_invitation",
                             invitee_email="three@example.test", roleplay_template=template,
                             role=mate)
    assert invitation_accept(invitation=free, meta=META).status == "accepted"


def test_reminders_go_to_unviewed_invitations_after_the_configured_delay(inviter, story, settings):
    settings.NP_INVITATION_REMINDER_AFTER = timedelta(days=3)
    settings.NP_INVITATION_MAX_REMINDERS = 1
    quiet, opened = (
        invitation_create(inviter=inviter, invitation_type="story_collaboration",
                          invitee_email=f"{n}@example.test", story=story)
        for n in ("quiet", "opened")
    )
    invitation_view(invitation=opened, meta=META)
    now = timezone.now()
    assert list(invitations_due_for_reminder(now=now + timedelta(days=2))) == []
    later = now + timedelta(days=3, seconds=1)
    assert list(invitations_due_for_reminder(now=later)) == [quiet]

    assert invitation_remind(invitation=quiet, now=later) is True
    assert invitation_remind(invitation=quiet, now=later) is False  # capped at one
    quiet.refresh_from_db()
    assert (quiet.reminder_count, quiet.last_reminded_at) == (1, later)
    assert actions(quiet) == ["sent", "reminded"]
    assert NotificationDelivery.objects.filter(invitation=quiet).count() == 2


def test_expire_due_marks_open_invitations_expired_once(inviter, story):
    invitation = invitation_create(inviter=inviter, invitation_type="story_collaboration",
                                   invitee_email="a@example.test", story=story)
    later = invitation.expires_at + timedelta(seconds=1)
    assert invitations_expire_due(now=later) == 1
    assert invitations_expire_due(now=later) == 0
    assert actions(invitation) == ["sent", "expired"]


def test_duplicate_article_content_is_refused(article):
    err = error_of(
        article_create, title="City opens  new library", summary="The new library opens on Monday.",
        full_content="The city's new library opens on Monday\nwith 40,000 books.",
    )
    assert (err.code, err.status, err.field) == ("DUPLICATE_ARTICLE", 409, "full_content")
    assert f"(article {article.pk})" in err.message
    assert len(article.content_hash) == 64
    other = article_create(title="Another story", summary="Different.")
    assert other.content_hash != article.content_hash
