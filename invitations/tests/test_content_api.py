"""The content API: news articles (staff write, duplicates 409), roleplay templates and
their roles (owner-only roles, taken roles flagged, free roles listed, a role accepted
once), and who sees what."""

from __future__ import annotations

import pytest

from invitations.errors import InvitationError
from invitations.models import RoleplayTemplate
from invitations.services import invitation_accept, invitation_create
from invitations.tokens import token_sign

pytestmark = [pytest.mark.django_db, pytest.mark.urls("invitations.tests.urls")]

ARTICLE = {
    "title": "Harbour bridge reopens",
    "summary": "The bridge reopens after repairs.",
    "full_content": "The harbour bridge reopens on Friday. Traffic returns at noon.",
    "category": "local",
    "tags": ["traffic"],
}


def error(response):
    return response.json()["error"]


def test_staff_create_articles_and_duplicates_are_409(api_client, staff_user, user):
    api_client.force_authenticate(staff_user)
    created = api_client.post("/api/v1/news-articles/", ARTICLE, format="json")
    assert created.status_code == 201, created.content
    article = created.json()
    assert len(article["content_hash"]) == 64 and article["language"] == "en"
    # the same text with other spacing and case is the same article
    again = api_client.post(
        "/api/v1/news-articles/",
        {**ARTICLE, "title": "  HARBOUR bridge   reopens"},
        format="json",
    )
    assert again.status_code == 409
    assert error(again)["code"] == "DUPLICATE_ARTICLE"
    assert f"(article {article['id']})" in error(again)["message"]
    # a user reads them but may not write
    api_client.force_authenticate(user)
    listed = api_client.get("/api/v1/news-articles/").json()["results"]
    assert [a["id"] for a in listed] == [article["id"]]
    assert api_client.get(f"/api/v1/news-articles/{article['id']}/").status_code == 200
    refused = api_client.post("/api/v1/news-articles/", {**ARTICLE, "title": "x"}, format="json")
    assert refused.status_code == 403


def test_bad_articles_are_400_with_the_field(api_client, staff_user):
    api_client.force_authenticate(staff_user)
    response = api_client.post(
        "/api/v1/news-articles/", {"title": "No summary", "tags": "not-a-list"}, format="json"
    )
    assert response.status_code == 400
    assert set(error(response)["fields"]) >= {"summary", "tags"}


def test_inactive_articles_are_staff_only(api_client, staff_user, user, article):
    article.is_active = False
    article.save()
    api_client.force_authenticate(user)
    assert api_client.get(f"/api/v1/news-articles/{article.pk}/").status_code == 404
    api_client.force_authenticate(staff_user)
    assert api_client.get(f"/api/v1/news-articles/{article.pk}/").status_code == 200


def test_anonymous_callers_see_no_content(api_client, article):
    assert api_client.get("/api/v1/news-articles/").status_code in (401, 403)
    assert api_client.get("/api/v1/roleplay-templates/").status_code in (401, 403)


def test_narrations_are_their_authors(api_client, user, other_user, article, audio_dir_setting):
    api_client.force_authenticate(user)
    mine = api_client.post("/api/v1/news-narrations/", {"article": article.pk}, format="json")
    assert mine.status_code == 202
    assert mine.json()["narrator_profile"] == "anchor"
    bad = api_client.post(
        "/api/v1/news-narrations/", {"article": article.pk, "narrator_profile": "opera"},
        format="json",
    )
    assert bad.status_code == 400 and "narrator_profile" in error(bad)["fields"]
    api_client.force_authenticate(other_user)
    assert api_client.get(f"/api/v1/news-narrations/{mine.json()['id']}/").status_code == 404


@pytest.fixture
def audio_dir_setting(tmp_path, settings):
    settings.NP_NARRATION_AUDIO_DIR = tmp_path


def create_template(api_client, **extra):
    return api_client.post(
        "/api/v1/roleplay-templates/",
        {
            "template_name": "Heist at the Opera",
            "total_characters": 3,
            "difficulty_level": "intermediate",
            "roles": [
                {"role_name": "The Mastermind", "is_protagonist": True},
                {"role_name": "The Driver", "required_voice_emotions": ["calm", "urgent"]},
            ],
            **extra,
        },
        format="json",
    )


def test_roleplay_templates_and_roles_through_the_api(api_client, user, other_user):
    api_client.force_authenticate(user)
    created = create_template(api_client)
    assert created.status_code == 201, created.content
    body = created.json()
    assert body["created_by"] == str(user.pk)
    assert [(r["role_name"], r["is_taken"]) for r in body["roles"]] == [
        ("The Driver", False), ("The Mastermind", False),
    ]
    pk = body["id"]
    # the owner adds the third role; a fourth is one too many; names are unique
    added = api_client.post(f"/api/v1/roleplay-templates/{pk}/roles/", {"role_name": "The Inside Man"}, format="json")
    assert added.status_code == 201
    dup = api_client.post(f"/api/v1/roleplay-templates/{pk}/roles/", {"role_name": "the driver"}, format="json")
    assert dup.status_code == 400
    full = api_client.post(f"/api/v1/roleplay-templates/{pk}/roles/", {"role_name": "Extra"}, format="json")
    assert (full.status_code, error(full)["code"]) == (400, "TOO_MANY_ROLES")
    # a private template is invisible to others; a public one is visible but not theirs
    api_client.force_authenticate(other_user)
    assert api_client.get(f"/api/v1/roleplay-templates/{pk}/").status_code == 404
    RoleplayTemplate.objects.filter(pk=pk).update(is_public=True)
    assert api_client.get(f"/api/v1/roleplay-templates/{pk}/").status_code == 200
    theirs = api_client.post(f"/api/v1/roleplay-templates/{pk}/roles/", {"role_name": "Thief"}, format="json")
    assert (theirs.status_code, error(theirs)["code"]) == (403, "CONTENT_FORBIDDEN")


def test_too_many_roles_for_the_characters_is_400(api_client, user):
    api_client.force_authenticate(user)
    response = create_template(api_client, total_characters=1)
    assert (response.status_code, error(response)["code"]) == (400, "TOO_MANY_ROLES")
    assert not RoleplayTemplate.objects.exists()


def test_a_role_is_accepted_once_and_the_invitee_sees_the_roles_still_free(
    api_client, client, inviter, make_user, roleplay
):
    template, captain, mate = roleplay
    first, second = make_user(display_name="Ann"), make_user(display_name="Ben")
    offers = [
        invitation_create(inviter=inviter, invitation_type="roleplay_invitation",
                          invitee_user=guest, roleplay_template=template, role=captain)
        for guest in (first, second)
    ]
    mate_offer = invitation_create(
        inviter=inviter, invitation_type="roleplay_invitation", invitee_email="cy@example.test",
        roleplay_template=template, role=mate,
    )
    api_client.force_authenticate(inviter)
    free = api_client.get(f"/api/v1/roleplay-templates/{template.pk}/free-roles/").json()
    assert [r["role_name"] for r in free] == ["Captain Reyes", "First Mate"]

    invitation_accept(invitation=offers[0])
    with pytest.raises(InvitationError) as exc:
        invitation_accept(invitation=offers[1])
    assert (exc.value.code, exc.value.status) == ("ROLE_TAKEN", 409)

    free = api_client.get(f"/api/v1/roleplay-templates/{template.pk}/free-roles/").json()
    assert [r["role_name"] for r in free] == ["First Mate"]
    detail = api_client.get(f"/api/v1/roleplay-templates/{template.pk}/").json()
    assert {r["role_name"]: r["is_taken"] for r in detail["roles"]} == {
        "Captain Reyes": True, "First Mate": False,
    }
    # the invitee offered the other role sees what is still free, on the page and by token
    token = token_sign(mate_offer.token)
    page = client.get(f"/i/{token}/").content.decode()
    assert 'id="free-roles">Roles still free:' in page
    assert "<strong>First Mate</strong>" in page and "Captain Reyes</strong>." not in page
    assert client.get(f"/api/v1/invitations/by-token/{token}/").json()["free_roles"] == [
        "First Mate"
    ]
