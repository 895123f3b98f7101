"""Invitations over HTTP: a user's own list, creating, the token actions' errors in
JSON and on the invitee page, and the analytics views for staff only."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from invitations.models import StoryInvitation
from invitations.services import invitation_accept, invitation_create
from invitations.tokens import token_sign

pytestmark = [pytest.mark.django_db, pytest.mark.urls("invitations.tests.urls")]


@pytest.fixture
def sent(inviter, story):
    return invitation_create(inviter=inviter, invitation_type="story_collaboration",
                             invitee_email="guest@example.test", story=story)


def test_users_list_their_sent_and_received_invitations(api_client, inviter, make_user, story, sent):
    guest = make_user(email="gil@example.test")
    received = invitation_create(inviter=inviter, invitation_type="story_collaboration",
                                 invitee_user=guest, story=story)
    api_client.force_authenticate(guest)
    body = api_client.get("/api/v1/invitations/").json()
    assert [(r["id"], r["direction"]) for r in body["results"]] == [(received.pk, "received")]
    assert "token" not in body["results"][0]
    api_client.force_authenticate(inviter)
    sent_ids = [r["id"] for r in api_client.get("/api/v1/invitations/", {"direction": "sent"}).json()["results"]]
    assert sorted(sent_ids) == sorted([sent.pk, received.pk])
    assert api_client.get("/api/v1/invitations/", {"direction": "received"}).json()["results"] == []


def test_create_through_the_api(api_client, inviter, article):
    api_client.force_authenticate(inviter)
    response = api_client.post("/api/v1/invitations/", {
        "invitation_type": "news_feed", "invitee_email": "reader@example.test",
        "article": article.pk, "conversation_style": "formal",
    }, format="json")
    assert response.status_code == 201
    body = response.json()
    assert (body["status"], body["content_type"], body["content_id"], body["direction"]) == (
        "sent", "news_article", article.pk, "sent",
    )


def test_create_with_missing_content_is_400_naming_the_field(api_client, inviter):
    api_client.force_authenticate(inviter)
    response = api_client.post("/api/v1/invitations/", {
        "invitation_type": "roleplay_invitation", "invitee_email": "x@example.test",
    }, format="json")
    assert response.status_code == 400
    assert response.json()["error"] == {
        "code": "CONTENT_REQUIRED",
        "message": "a roleplay invitation needs a roleplay template",
        "fields": {"roleplay_template": ["a roleplay invitation needs a roleplay template"]},
    }
    assert StoryInvitation.objects.count() == 0


def test_token_api_errors(api_client, sent, inviter, roleplay):
    link = token_sign(sent.token)
    # a made-up token
    response = api_client.post("/api/v1/invitations/by-token/nope.nope/accept/")
    assert response.status_code == 404
    assert response.json()["error"]["code"] == "INVITATION_NOT_FOUND"
    # expired: 410
    StoryInvitation.objects.filter(pk=sent.pk).update(expires_at=timezone.now() - timedelta(seconds=1))
    response = api_client.post(f"/api/v1/invitations/by-token/{link}/accept/")
    assert response.status_code == 410
    assert response.json()["error"] == {
        "code": "INVITATION_EXPIRED", "message": "this invitation has expired", "fields": {},
    }
    # a taken role: 409
    template, captain, _ = roleplay
    first, second = (
        invitation_create(inviter=inviter, invitation_type="roleplay_invitation",
                          invitee_email=f"{n}@example.test", roleplay_template=template, role=captain)
        for n in ("one", "two")
    )
    invitation_accept(invitation=first)
    response = api_client.post(f"/api/v1/invitations/by-token/{token_sign(second.token)}/accept/")
    assert response.status_code == 409
    assert response.json()["error"]["code"] == "ROLE_TAKEN"
    # declining an accepted one: 409
    response = api_client.post(f"/api/v1/invitations/by-token/{token_sign(first.token)}/decline/")
    assert response.status_code == 409
    assert response.json()["error"]["code"] == "INVITATION_ALREADY_ANSWERED"


def test_invitee_page_shows_errors_with_their_status(client, sent):
    link = token_sign(sent.token)
    assert client.get("/i/forged.token/").status_code == 404
    page = client.get(f"/i/{link}/accept/")  # GET never answers
    assert page.status_code == 200 and b"Accept" in page.content
    assert StoryInvitation.objects.get(pk=sent.pk).status == "sent"
    assert client.post(f"/i/{link}/decline/").status_code == 200
    again = client.post(f"/i/{link}/accept/")
    assert again.status_code == 409
    assert b'data-code="INVITATION_ALREADY_ANSWERED"' in again.content


@pytest.mark.parametrize(
    "path",
    [
        "/api/v1/analytics/user-invitation-summary/",
        "/api/v1/analytics/provider-performance/",
        "/api/v1/analytics/invitation-funnel/",
    ],
)
def test_analytics_are_for_staff_only(api_client, inviter, staff_user, sent, path):
    api_client.force_authenticate(inviter)
    assert api_client.get(path).status_code == 403
    api_client.force_authenticate(staff_user)
    response = api_client.get(path)
    assert response.status_code == 200
    assert api_client.post(path, {}).status_code == 405


def test_funnel_api_reports_the_figures(api_client, staff_user, sent):
    api_client.force_authenticate(staff_user)
    rows = api_client.get("/api/v1/analytics/invitation-funnel/",
                          {"invitation_type": "story_collaboration"}).json()["results"]
    assert rows == [{
        "invitation_type": "story_collaboration", "conversation_style": "neutral",
        "total_invitations": 1, "invitations_sent": 1, "invitations_viewed": 0,
        "invitations_accepted": 0, "view_rate": "0.00", "conversion_rate": None,
    }]
