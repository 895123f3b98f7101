"""Abuse limits on invitations to addresses and numbers outside the platform (issue 15,
item 2): per inviter for new external recipients, per hour and day, SMS stricter and
separate; per destination for everyone together; 429 with a code and Retry-After."""

from __future__ import annotations

from datetime import timedelta

import pytest

from invitations.models import StoryInvitation

pytestmark = [pytest.mark.django_db, pytest.mark.urls("invitations.tests.urls")]


@pytest.fixture
def limits(settings):
    settings.NP_INVITE_NEW_EMAIL_PER_HOUR = 3
    settings.NP_INVITE_NEW_EMAIL_PER_DAY = 5
    settings.NP_INVITE_NEW_SMS_PER_HOUR = 2
    settings.NP_INVITE_NEW_SMS_PER_DAY = 3
    settings.NP_INVITE_PER_DESTINATION_PER_DAY = 3
    return settings


@pytest.fixture
def invite(api_client, story):
    def post(user, *, phone=None, email=None):
        api_client.force_authenticate(user)
        body = {"invitation_type": "story_collaboration", "story": story.pk}
        if phone:
            body.update(invitee_phone=phone, channels=["sms"])
        else:
            body.update(invitee_email=email)
        return api_client.post("/api/v1/invitations/", body, format="json")

    return post


def test_new_phone_numbers_are_limited_per_hour_with_retry_after(limits, invite, inviter):
    assert invite(inviter, phone="+14155550101").status_code == 201
    assert invite(inviter, phone="+14155550102").status_code == 201
    refused = invite(inviter, phone="+14155550103")
    assert refused.status_code == 429
    assert refused.json()["error"] == {
        "code": "INVITATION_LIMIT_REACHED",
        "message": "you may invite at most 2 new phone numbers per hour",
        "fields": {},
    }
    assert 3500 <= int(refused["Retry-After"]) <= 3600
    assert not StoryInvitation.objects.filter(invitee_phone="+14155550103").exists()
    # a number already invited is not new: inviting it again is fine
    assert invite(inviter, phone="+14155550101").status_code == 201
    # the SMS limit is separate from the email one
    assert invite(inviter, email="someone@example.test").status_code == 201


def test_the_day_limit_slides_and_frees_a_slot_when_the_oldest_leaves(limits, invite, inviter):
    limits.NP_INVITE_NEW_SMS_PER_HOUR = 10
    for n in range(3):
        assert invite(inviter, phone=f"+1415555020{n}").status_code == 201
    refused = invite(inviter, phone="+14155550299")
    assert refused.status_code == 429
    assert (
        refused.json()["error"]["message"] == "you may invite at most 3 new phone numbers per day"
    )
    assert 86000 <= int(refused["Retry-After"]) <= 86400
    # 25 hours later the first one no longer counts
    StoryInvitation.objects.filter(invitee_phone="+14155550200").update(
        created_at=StoryInvitation.objects.get(invitee_phone="+14155550200").created_at
        - timedelta(hours=25)
    )
    assert invite(inviter, phone="+14155550299").status_code == 201


def test_addresses_of_users_are_not_new_external_recipients(limits, invite, inviter, make_user):
    limits.NP_INVITE_NEW_EMAIL_PER_HOUR = 1
    members = [make_user(email=f"Member{n}@Example.test") for n in range(3)]
    for member in members:
        response = invite(inviter, email=member.email.lower())
        assert response.status_code == 201
    assert invite(inviter, email="stranger-1@example.test").status_code == 201
    assert invite(inviter, email="stranger-2@example.test").status_code == 429


def test_one_number_gets_at_most_n_invitations_a_day_from_everyone(
    limits, invite, make_user, story
):
    story.is_public = True  # anyone may invite to a public story
    story.save(update_fields=["is_public"])
    inviters = [make_user(email=f"inviter{n}@example.test") for n in range(4)]
    for inviter in inviters[:3]:
        assert invite(inviter, phone="+14155550300").status_code == 201
    refused = invite(inviters[3], phone="+14155550300")
    assert refused.status_code == 429
    assert refused.json()["error"]["code"] == "DESTINATION_LIMIT_REACHED"
    assert int(refused["Retry-After"]) > 86000
    # the same for an email address, and the first inviter is refused too
    for inviter in inviters[:3]:
        assert invite(inviter, email="popular@example.test").status_code == 201
    assert invite(inviters[0], email="popular@example.test").status_code == 429


def test_invitations_to_users_are_not_limited_here(
    limits, invite, inviter, make_user, api_client, story
):
    limits.NP_INVITE_PER_DESTINATION_PER_DAY = 0
    limits.NP_INVITE_NEW_EMAIL_PER_HOUR = 0
    guest = make_user(email="guest-user@example.test")
    api_client.force_authenticate(inviter)
    for _ in range(2):
        response = api_client.post(
            "/api/v1/invitations/",
            {
                "invitation_type": "story_collaboration",
                "story": story.pk,
                "invitee_user": str(guest.pk),
            },
            format="json",
        )
        assert response.status_code == 201
    assert invite(inviter, email="x@example.test").status_code == 429


@pytest.mark.django_db(transaction=True)
def test_two_requests_at_once_cannot_both_take_the_last_slot(limits, inviter, story):
    """The advisory lock per inviter: of two concurrent invitations to new numbers with one
    slot left, exactly one is created."""
    import threading

    from django.db import connection

    from invitations.errors import InvitationError
    from invitations.services import invitation_create

    limits.NP_INVITE_NEW_SMS_PER_HOUR = 1
    barrier = threading.Barrier(2)
    outcomes: list[str] = []

    def create(phone: str) -> None:
        barrier.wait()
        try:
            invitation_create(
                inviter=inviter,
                invitation_type="story_collaboration",
                story=story,
                invitee_phone=phone,
                delivery_preferences={"channels": ["sms"]},
            )
            outcomes.append("created")
        except InvitationError as exc:
            outcomes.append(exc.code)
        finally:
            connection.close()

    threads = [threading.Thread(target=create, args=(p,)) for p in ("+14155550401", "+14155550402")]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert sorted(outcomes) == ["INVITATION_LIMIT_REACHED", "created"]
    assert StoryInvitation.objects.filter(inviter=inviter).count() == 1


def test_staff_see_who_sent_what_in_the_invitation_admin(
    limits, invite, inviter, make_user, client, story
):
    # given one inviter with 3 invitations to addresses and another with 1
    story.is_public = True
    story.save(update_fields=["is_public"])
    other = make_user(email="other-inviter@example.test")
    invite(inviter, email="one@example.test")
    invite(inviter, phone="+14155550501")
    invite(inviter, email="three@example.test")
    invite(other, email="two@example.test")
    staff = make_user(email="staff@example.test", is_staff=True, is_superuser=True)
    client.force_login(staff)

    # when staff open the invitation list
    page = client.get("/admin/invitations/storyinvitation/").content.decode()

    # then the inviter filter lists the busiest first, with their counts
    busiest = page.index("ivy@example.test (3 sent, 3 external)")
    assert busiest < page.index("other-inviter@example.test (1 sent, 1 external)")
    # and filtering by one inviter and by kind of recipient narrows the list
    only = client.get(
        "/admin/invitations/storyinvitation/", {"inviter": str(inviter.pk), "recipient": "phone"}
    )
    assert list(only.context["cl"].queryset.values_list("invitee_phone", flat=True)) == [
        "+14155550501"
    ]
    assert client.get("/admin/invitations/storyinvitation/", {"inviter": "nope"}).status_code == 200
