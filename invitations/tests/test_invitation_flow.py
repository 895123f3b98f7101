"""Invite by email for each invitation type, read the mail at a real SMTP server (sent
by a real Celery worker through the pipeline), follow the link, accept, and find the
history rows and the analytics figures changed accordingly."""

from __future__ import annotations

import re
from decimal import Decimal

import pytest
from django.conf import settings

from invitations.models import (
    InvitationConversionFunnel,
    StoryInvitation,
    UserInvitationHistory,
    UserInvitationSummary,
)
from invitations.services import invitation_create
from invitations.tests.conftest import wait_for

pytestmark = pytest.mark.urls("invitations.tests.urls")

BROWSER = {
    "HTTP_USER_AGENT": "Mozilla/5.0 (InviteeBrowser)",
    "HTTP_REFERER": "https://mail.example.test/inbox",
    "REMOTE_ADDR": "203.0.113.7",
}


def content_kwargs(kind, story, article, roleplay):
    template, captain, _ = roleplay
    return {
        "story_collaboration": {"story": story},
        "news_feed": {"article": article},
        "roleplay_invitation": {"roleplay_template": template, "role": captain},
    }[kind]


EXPECTED_SUBJECT = {
    "story_collaboration": "Ivy invited you to write The Lighthouse Keeper",
    "news_feed": "Ivy shared a story with you: City opens new library",
    "roleplay_invitation": "Ivy cast you as Captain Reyes",
}


@pytest.mark.parametrize("kind", ["story_collaboration", "news_feed", "roleplay_invitation"])
def test_invite_by_email_read_mail_follow_link_accept(
    kind, client, inviter, story, article, roleplay, channel_providers, smtp_server,
    celery_worker_process,
):
    # Given no invitation of this type yet
    assert not InvitationConversionFunnel.objects.filter(invitation_type=kind).exists()

    # When Ivy invites a guest by email
    invitation = invitation_create(
        inviter=inviter, invitation_type=kind, invitee_email="Guest@Example.test",
        conversation_style="casual", message="Join me!",
        **content_kwargs(kind, story, article, roleplay),
    )

    # Then the worker sends the mail through the SMTP provider
    messages = wait_for(lambda: smtp_server.messages_to("guest@example.test"))
    assert len(messages) == 1, celery_worker_process
    mail = messages[0]
    assert mail["Subject"] == EXPECTED_SUBJECT[kind]
    text = mail.get_body(preferencelist=("plain",)).get_content()
    assert inviter.email not in mail.as_string()  # the inviter's address stays private
    base = re.escape(settings.NP_PUBLIC_BASE_URL.rstrip("/"))
    match = re.search(base + r"/i/([A-Za-z0-9_\-]+\.[A-Za-z0-9_\-]+)/", text)
    assert match, text
    link_token = match.group(1)
    assert invitation.token not in mail.as_string().replace(link_token, "")  # only signed
    delivery = invitation.deliveries.get()
    assert (delivery.delivery_type, delivery.recipient, delivery.notification_id) == (
        "email", "guest@example.test", None,
    )
    wait_for(lambda: type(delivery).objects.get(pk=delivery.pk).status == "sent")

    # When the guest follows the link and accepts
    page = client.get(f"/i/{link_token}/", **BROWSER)
    assert page.status_code == 200
    assert b"Accept" in page.content
    accepted = client.post(f"/i/{link_token}/accept/", **BROWSER)
    assert accepted.status_code == 200
    assert b'data-outcome="accepted"' in accepted.content

    # Then the invitation is accepted and every step is in the history
    invitation.refresh_from_db()
    assert invitation.status == "accepted"
    assert invitation.viewed_at is not None and invitation.responded_at is not None
    rows = list(
        UserInvitationHistory.objects.filter(invitation=invitation).order_by("action_timestamp", "id")
    )
    assert [(r.action, r.user_id) for r in rows] == [
        ("sent", inviter.pk), ("viewed", None), ("accepted", None),
    ]
    for row in rows[1:]:
        assert (row.user_agent, row.ip_address, row.referrer) == (
            "Mozilla/5.0 (InviteeBrowser)", "203.0.113.7", "https://mail.example.test/inbox",
        )
    # and the funnel counts it at every stage
    funnel = InvitationConversionFunnel.objects.get(invitation_type=kind, conversation_style="casual")
    assert (funnel.total_invitations, funnel.invitations_sent, funnel.invitations_viewed,
            funnel.invitations_accepted) == (1, 1, 1, 1)
    assert (funnel.view_rate, funnel.conversion_rate) == (Decimal("100.00"), Decimal("100.00"))
    assert UserInvitationSummary.objects.get(user=inviter).invitations_sent == 1


def test_invite_a_user_who_accepts_through_the_json_api(
    api_client, inviter, make_user, story, channel_providers, smtp_server, celery_worker_process,
):
    # Given a registered invitee
    guest = make_user(email="gil@example.test", display_name="Gil")

    # When Ivy invites Gil (email and in-app) and Gil accepts through the API
    invitation = invitation_create(
        inviter=inviter, invitation_type="story_collaboration", invitee_user=guest, story=story,
        delivery_preferences={"channels": ["email", "in_app"]},
    )
    [mail] = wait_for(lambda: smtp_server.messages_to("gil@example.test"))
    # a registered invitee's email is a notification: its invitation link is a tracked link
    # (/c/<token>/) that records the click and redirects to the signed /i/<token>/ page
    base = re.escape(settings.NP_PUBLIC_BASE_URL.rstrip("/"))
    text = mail.get_body(preferencelist=("plain",)).get_content()
    tracked = re.search(base + r"(/c/[^/\s]+/)", text)
    assert tracked, text
    followed = api_client.get(tracked.group(1))
    assert followed.status_code == 302, followed
    landing = re.fullmatch(base + r"/i/([A-Za-z0-9_\-]+\.[A-Za-z0-9_\-]+)/", followed["Location"])
    assert landing, followed["Location"]
    link_token = landing.group(1)
    viewed = api_client.get(f"/api/v1/invitations/by-token/{link_token}/", **BROWSER)
    answer = api_client.post(
        f"/api/v1/invitations/by-token/{link_token}/accept/",
        {"response_data": {"note": "count me in"}}, format="json", **BROWSER,
    )

    # Then the user's history and summary show it
    assert viewed.status_code == 200 and viewed.json()["inviter_name"] == "Ivy"
    assert "invitee_email" not in viewed.json() and "token" not in viewed.json()
    assert answer.status_code == 200 and answer.json()["status"] == "accepted"
    assert sorted(invitation.deliveries.values_list("delivery_type", flat=True)) == ["email", "in_app"]
    rows = UserInvitationHistory.objects.filter(invitation=invitation).order_by("action_timestamp", "id")
    assert [(r.action, r.user_id) for r in rows] == [
        ("sent", inviter.pk), ("received", guest.pk), ("viewed", guest.pk), ("accepted", guest.pk),
    ]
    assert rows.last().response_data == {"note": "count me in"}
    summary = UserInvitationSummary.objects.get(user=guest)
    assert (summary.invitations_received, summary.invitations_accepted, summary.acceptance_rate) == (
        1, 1, Decimal("100.00"),
    )
    assert StoryInvitation.objects.get(pk=invitation.pk).status == "accepted"
