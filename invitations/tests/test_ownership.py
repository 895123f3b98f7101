"""Invitations honour who owns the content (issue 15, item 1): the attacks of the review
fail on every path that creates or answers an invitation, without telling a private
title, and the owners' own flows still work."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from campaigns.errors import BatchError
from campaigns.selectors import error_summary
from campaigns.services import batch_chunk_run, batch_create, batch_validate
from invitations.errors import InvitationError
from invitations.models import (
    NewsNarration,
    RoleplayCharacterRole,
    RoleplayTemplate,
    Story,
    StoryInvitation,
)
from invitations.services import invitation_accept, invitation_create
from invitations.tokens import token_generate, token_sign

pytestmark = [pytest.mark.django_db, pytest.mark.urls("invitations.tests.urls")]

SECRET_TITLE = "Eleanor's Unpublished Memoir"


@pytest.fixture
def owner(make_user):
    return make_user(email="eleanor@example.test", display_name="Eleanor")


@pytest.fixture
def mallory(make_user):
    return make_user(email="mallory@example.test", display_name="Mallory")


@pytest.fixture
def private_story(owner):
    return Story.objects.create(title=SECRET_TITLE, owner=owner, is_public=False)


@pytest.fixture
def public_roleplay(owner, make_user):
    story = Story.objects.create(title="Harbour Tales", owner=owner, is_public=True)
    template = RoleplayTemplate.objects.create(
        story=story,
        template_name="Storm at the Harbour",
        total_characters=2,
        created_by=owner,
        is_public=True,
    )
    role = RoleplayCharacterRole.objects.create(roleplay_template=template, role_name="Pilot")
    return template, role


@pytest.fixture
def private_roleplay(owner, private_story):
    template = RoleplayTemplate.objects.create(
        story=private_story,
        template_name="The Memoir, Acted",
        total_characters=1,
        created_by=owner,
        is_public=False,
    )
    role = RoleplayCharacterRole.objects.create(roleplay_template=template, role_name="Eleanor")
    return template, role


def post_invitation(api_client, user, body):
    api_client.force_authenticate(user)
    return api_client.post("/api/v1/invitations/", body, format="json")


# --- private stories -------------------------------------------------------------------


def test_a_stranger_cannot_invite_to_a_private_story_and_learns_nothing(
    api_client, mallory, private_story
):
    response = post_invitation(
        api_client,
        mallory,
        {
            "invitation_type": "story_collaboration",
            "invitee_email": "me@attacker.test",
            "story": private_story.pk,
        },
    )
    assert response.status_code == 404
    assert response.json()["error"] == {
        "code": "CONTENT_NOT_FOUND",
        "message": f"no story {private_story.pk} you may invite to",
        "fields": {"story": [f"no story {private_story.pk} you may invite to"]},
    }
    assert SECRET_TITLE not in response.content.decode()
    assert StoryInvitation.objects.count() == 0
    # a story id that does not exist gets the very same answer: nothing tells them apart
    missing = post_invitation(
        api_client,
        mallory,
        {
            "invitation_type": "story_collaboration",
            "invitee_email": "me@attacker.test",
            "story": private_story.pk + 1000,
        },
    )
    assert missing.status_code == 404
    assert missing.json()["error"]["code"] == "CONTENT_NOT_FOUND"


def test_the_owner_invites_to_their_private_story(api_client, owner, private_story):
    response = post_invitation(
        api_client,
        owner,
        {
            "invitation_type": "story_collaboration",
            "invitee_email": "friend@example.test",
            "story": private_story.pk,
        },
    )
    assert response.status_code == 201
    assert response.json()["content_metadata"] == {"story_title": SECRET_TITLE}


def test_anyone_may_invite_to_a_public_story(api_client, mallory, owner):
    story = Story.objects.create(title="Open Book", owner=owner, is_public=True)
    response = post_invitation(
        api_client,
        mallory,
        {
            "invitation_type": "story_collaboration",
            "invitee_email": "friend@example.test",
            "story": story.pk,
        },
    )
    assert response.status_code == 201


def test_staff_follow_the_same_rule_in_the_service(staff_user, private_story):
    with pytest.raises(InvitationError) as caught:
        invitation_create(
            inviter=staff_user,
            invitation_type="story_collaboration",
            invitee_email="x@example.test",
            story=private_story,
        )
    assert (caught.value.code, caught.value.status) == ("CONTENT_NOT_FOUND", 404)


# --- roleplay roles --------------------------------------------------------------------


def test_a_stranger_cannot_offer_a_role_of_a_public_roleplay(api_client, mallory, public_roleplay):
    template, role = public_roleplay
    response = post_invitation(
        api_client,
        mallory,
        {
            "invitation_type": "roleplay_invitation",
            "invitee_email": "me@attacker.test",
            "roleplay_template": template.pk,
            "role": role.pk,
        },
    )
    assert response.status_code == 403
    assert response.json()["error"] == {
        "code": "CONTENT_FORBIDDEN",
        "message": "only the roleplay's owner may offer its roles",
        "fields": {"role": ["only the roleplay's owner may offer its roles"]},
    }
    assert StoryInvitation.objects.count() == 0


def test_a_private_roleplay_is_not_found_for_a_stranger(api_client, mallory, private_roleplay):
    template, role = private_roleplay
    response = post_invitation(
        api_client,
        mallory,
        {
            "invitation_type": "roleplay_invitation",
            "invitee_email": "me@attacker.test",
            "roleplay_template": template.pk,
            "role": role.pk,
        },
    )
    assert response.status_code == 404
    assert response.json()["error"]["code"] == "CONTENT_NOT_FOUND"
    assert "Memoir" not in response.content.decode()


def test_the_role_hijack_fails_and_the_owners_invitation_is_accepted(
    api_client, owner, mallory, public_roleplay
):
    """The review's attack: invite an address you control to someone else's role, accept,
    and the owner's own invitation then fails with ROLE_TAKEN."""
    template, role = public_roleplay
    # the attacker's invitation is refused ...
    attack = post_invitation(
        api_client,
        mallory,
        {
            "invitation_type": "roleplay_invitation",
            "invitee_email": "me@attacker.test",
            "roleplay_template": template.pk,
            "role": role.pk,
        },
    )
    assert attack.status_code == 403
    # ... and one stored before the rule existed cannot be accepted either
    forged = StoryInvitation.objects.create(
        inviter=mallory,
        invitee_email="me@attacker.test",
        token=token_generate(),
        status="sent",
        expires_at=timezone.now() + timedelta(days=7),
        invitation_type="roleplay_invitation",
        content_type="roleplay_template",
        content_id=template.pk,
        roleplay_character_role=role,
        story=template.story,
        content_metadata={"roleplay_title": template.template_name, "role_name": role.role_name},
    )
    link = token_sign(forged.token)
    api_client.force_authenticate(None)
    accepted = api_client.post(f"/api/v1/invitations/by-token/{link}/accept/")
    assert accepted.status_code == 403
    assert accepted.json()["error"]["code"] == "INVITATION_NOT_PERMITTED"
    assert StoryInvitation.objects.get(pk=forged.pk).status == "sent"
    # the service refuses it too (the HTML page and any other caller)
    with pytest.raises(InvitationError) as caught:
        invitation_accept(invitation=forged)
    assert caught.value.code == "INVITATION_NOT_PERMITTED"
    # then the owner's invitation for the role goes out and is accepted
    mine = invitation_create(
        inviter=owner,
        invitation_type="roleplay_invitation",
        invitee_email="friend@example.test",
        roleplay_template=template,
        role=role,
    )
    assert invitation_accept(invitation=mine).status == "accepted"


def test_a_forged_invitation_shows_nothing_of_the_private_content(
    api_client, client, mallory, private_story
):
    forged = StoryInvitation.objects.create(
        inviter=mallory,
        invitee_email="me@attacker.test",
        token=token_generate(),
        status="sent",
        expires_at=timezone.now() + timedelta(days=7),
        invitation_type="story_collaboration",
        content_type="story",
        content_id=private_story.pk,
        story=private_story,
        content_metadata={"story_title": SECRET_TITLE},
    )
    link = token_sign(forged.token)
    for response in (
        api_client.get(f"/api/v1/invitations/by-token/{link}/"),
        api_client.post(f"/api/v1/invitations/by-token/{link}/decline/"),
        client.get(f"/i/{link}/"),
        client.post(f"/i/{link}/accept/"),
    ):
        assert response.status_code == 403
        assert SECRET_TITLE not in response.content.decode()
    assert StoryInvitation.objects.get(pk=forged.pk).status == "sent"


def test_a_role_cannot_be_offered_when_its_template_lost_its_creator(
    owner, mallory, public_roleplay
):
    # the story's owner speaks for a roleplay whose creator is gone; nobody else does
    template, role = public_roleplay
    RoleplayTemplate.objects.filter(pk=template.pk).update(created_by=None)
    template.refresh_from_db()
    role.refresh_from_db()
    with pytest.raises(InvitationError) as caught:
        invitation_create(
            inviter=mallory,
            invitation_type="roleplay_invitation",
            invitee_email="x@example.test",
            roleplay_template=template,
            role=role,
        )
    assert caught.value.code == "CONTENT_FORBIDDEN"
    made = invitation_create(
        inviter=owner,
        invitation_type="roleplay_invitation",
        invitee_email="x@example.test",
        roleplay_template=template,
        role=role,
    )
    assert made.roleplay_character_role_id == role.pk


# --- news ------------------------------------------------------------------------------


def test_news_articles_are_public_but_a_narration_is_its_authors(
    api_client, owner, mallory, article
):
    narration = NewsNarration.objects.create(news_article=article, user=owner)
    body = {
        "invitation_type": "news_feed",
        "invitee_email": "reader@example.test",
        "article": article.pk,
    }
    assert post_invitation(api_client, mallory, body).status_code == 201
    stolen = post_invitation(api_client, mallory, {**body, "narration": narration.pk})
    assert stolen.status_code == 404
    assert stolen.json()["error"]["code"] == "CONTENT_NOT_FOUND"
    assert (
        post_invitation(api_client, owner, {**body, "narration": narration.pk}).status_code == 201
    )


# --- batch jobs ------------------------------------------------------------------------


def test_a_batch_cannot_invite_to_someone_elses_private_story(
    owner, mallory, private_story, make_user
):
    make_user(email="reader@example.test")
    for inviter in (mallory, None):  # a named user, and the platform's own sender account
        with pytest.raises(BatchError) as caught:
            batch_validate(
                "invitation_batch",
                invitation_type="story_collaboration",
                story=private_story.pk,
                audience="all",
                inviter=inviter,
            )
        assert caught.value.code == "CONTENT_NOT_FOUND"
        assert SECRET_TITLE not in caught.value.message
    # the owner's batch is accepted
    spec = batch_validate(
        "invitation_batch",
        invitation_type="story_collaboration",
        story=private_story.pk,
        audience="all",
        inviter=owner,
    )
    assert spec.story_id == private_story.pk


def test_a_batch_rechecks_ownership_when_its_chunks_run(owner, make_user):
    """Content that becomes someone else's private story between planning and running is
    not sent: the chunk fails with the rule's code and writes no invitation."""
    make_user(email="reader@example.test")
    story = Story.objects.create(title="Soon Private", owner=owner, is_public=True)
    spec = batch_validate(
        "invitation_batch",
        invitation_type="story_collaboration",
        story=story.pk,
        audience="all",
        channels="in_app",
    )
    job = batch_create(spec)
    Story.objects.filter(pk=story.pk).update(is_public=False)
    for chunk in job.chunks.all():
        batch_chunk_run(chunk.pk)
    job.refresh_from_db()
    assert job.failed_notifications == job.total_notifications > 0
    assert list(error_summary(job)) == ["CONTENT_NOT_FOUND"]
    assert StoryInvitation.objects.filter(batch_job=job).count() == 0


def test_a_forged_invitation_shows_no_title_in_lists_and_gets_no_reminder(
    api_client, mallory, private_story, settings
):
    from invitations.services import invitation_remind

    forged = StoryInvitation.objects.create(
        inviter=mallory,
        invitee_email="me@attacker.test",
        token=token_generate(),
        status="sent",
        expires_at=timezone.now() + timedelta(days=7),
        invitation_type="story_collaboration",
        content_type="story",
        content_id=private_story.pk,
        story=private_story,
        content_metadata={"story_title": SECRET_TITLE},
    )
    api_client.force_authenticate(mallory)
    listed = api_client.get("/api/v1/invitations/")
    assert [(r["id"], r["content_metadata"]) for r in listed.json()["results"]] == [
        (forged.pk, None)
    ]
    assert SECRET_TITLE not in listed.content.decode()
    assert api_client.get(f"/api/v1/invitations/{forged.pk}/").json()["content_metadata"] is None
    # the reminder that would mail the title is not sent
    settings.NP_INVITATION_REMINDER_AFTER = timedelta(0)
    assert invitation_remind(invitation=forged) is False
    assert forged.deliveries.count() == 0
