"""The admin's "start a batch" form (fields by job type, audience picker, CSV upload,
preview of the first recipient's message, recipient count) and the audience admin's CSV
upload. Chromium checks the progressive script; the form itself works without it."""

from __future__ import annotations

import re

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

from campaigns.models import Audience, AudienceMember, NotificationBatchJob
from campaigns.services import audience_save
from campaigns.tests.test_batch_helpers import bulk_users, make_article
from deliveries.models import Notification

pytestmark = pytest.mark.django_db

START = "/admin/campaigns/notificationbatchjob/start/"
BROADCAST = {
    "job_type": "broadcast",
    "template": "auction_started",
    "context": '{"auction_title": "Vintage Watch"}',
    "channels": ["in_app"],
}


@pytest.fixture(autouse=True)
def _catalogue(catalogue) -> None:
    """The template catalogue (a data migration a transactional test may have flushed)."""


@pytest.fixture
def admin_client(client, staff_user):
    staff_user.is_superuser = True
    staff_user.save()
    client.force_login(staff_user)
    return client


def count_shown(html: str) -> int:
    found = re.search(r'<strong class="np-recipient-count">(\d+)</strong>', html)
    assert found, html
    return int(found.group(1))


def test_form_groups_fields_by_job_type_and_accepts_uploads(admin_client):
    html = admin_client.get(START).content.decode()
    assert 'enctype="multipart/form-data"' in html
    assert 'data-job-types="broadcast"' in html  # the template fields
    assert 'data-job-types="invitation_batch broadcast"' in html  # audience and channels
    assert 'data-job-types="cleanup_batch"' in html
    assert 'name="saved_audience"' in html and 'name="csv_file"' in html
    assert 'name="_preview"' in html and 'name="_start"' in html


def test_broadcast_preview_shows_count_and_first_recipient_message_and_creates_nothing(
    admin_client,
):
    users = bulk_users(7, region="eu")
    bulk_users(2, region="us")
    audience = audience_save(name="eu", kind="region", value="eu")

    page = admin_client.post(START, {**BROADCAST, "saved_audience": audience.pk, "_preview": "1"})

    html = page.content.decode()
    assert page.status_code == 200
    assert count_shown(html) == 7
    first = min(users, key=lambda u: u.pk)
    assert f"Message to the first recipient, {first.email}" in html
    assert 'data-channel="in_app"' in html and "Vintage Watch is now live" in html
    assert not NotificationBatchJob.objects.exists()
    assert not Notification.objects.exists()


def test_broadcast_start_from_the_form_runs_the_job(admin_client):
    bulk_users(4, region="eu")
    audience = audience_save(name="eu", kind="region", value="eu")
    page = admin_client.post(START, {**BROADCAST, "saved_audience": audience.pk, "_start": "1"})
    assert page.status_code == 302
    job = NotificationBatchJob.objects.get()
    assert (job.job_type, job.status, job.total_notifications) == ("broadcast", "running", 4)
    assert job.job_config["audience"] == f"audience:{audience.pk}"


def test_invitation_preview_renders_the_invitation_for_the_first_recipient(admin_client):
    bulk_users(3)
    article = make_article("Harbour festival returns")
    page = admin_client.post(START, {
        "job_type": "invitation_batch", "invitation_type": "news_feed", "article": article.pk,
        "audience": "all", "channels": ["in_app"], "_preview": "1",
    })
    html = page.content.decode()
    assert count_shown(html) == 3
    assert "Harbour festival returns" in html.split("Message to the first recipient")[1]
    assert not NotificationBatchJob.objects.exists()


def test_csv_upload_previews_without_saving_and_start_saves_it_as_a_list(admin_client):
    users = bulk_users(5)
    csv = "email\n" + "\n".join(u.email for u in users[:3]) + "\nnobody@x.test\n"

    def post(button: str):
        upload = SimpleUploadedFile("vips.csv", csv.encode(), content_type="text/csv")
        return admin_client.post(START, {**BROADCAST, "csv_file": upload, button: "1"})

    preview = post("_preview")
    assert count_shown(preview.content.decode()) == 3
    assert not Audience.objects.exists()  # the preview kept nothing

    started = post("_start")
    assert started.status_code == 302
    audience = Audience.objects.get()
    assert audience.kind == "list" and audience.name.startswith("CSV vips.csv")
    assert set(AudienceMember.objects.values_list("user_id", flat=True)) == {
        u.pk for u in users[:3]
    }
    assert NotificationBatchJob.objects.get().total_notifications == 3


@pytest.mark.parametrize(
    ("content", "fragment"),
    [
        (b"alice@x.test\nbob\n", "row 2: &#x27;bob&#x27;"),
        (b"\xff\xfe\x00bad", "not UTF-8"),
        (b"email\n", "no emails or user ids"),
    ],
)
def test_bad_csv_is_a_clear_error_on_the_upload_field(admin_client, content, fragment):
    bulk_users(2)
    upload = SimpleUploadedFile("bad.csv", content, content_type="text/csv")
    page = admin_client.post(START, {**BROADCAST, "csv_file": upload, "_start": "1"})
    html = page.content.decode()
    assert page.status_code == 200
    errors = html.split('name="csv_file"')[0].rsplit('<div class="form-row errors">', 1)[1]
    assert fragment in errors and "INVALID_AUDIENCE" in errors
    assert not Audience.objects.exists() and not NotificationBatchJob.objects.exists()


def test_two_audiences_at_once_are_refused(admin_client):
    audience = audience_save(name="all", kind="all")
    page = admin_client.post(
        START, {**BROADCAST, "saved_audience": audience.pk, "audience": "all", "_start": "1"}
    )
    assert "pick one audience" in page.content.decode()
    assert not NotificationBatchJob.objects.exists()


def test_missing_template_is_an_error_on_its_field(admin_client):
    bulk_users(1)
    page = admin_client.post(START, {**BROADCAST, "template": "", "audience": "all"})
    html = page.content.decode()
    assert "a template is required" in html.split('name="template"')[0]


def test_audience_admin_csv_upload_sets_members_and_bad_csv_changes_nothing(admin_client):
    users = bulk_users(4)
    audience = audience_save(name="vips", kind="list", user_ids=[users[0].pk])
    url = f"/admin/campaigns/audience/{audience.pk}/change/"
    good = SimpleUploadedFile("m.csv", f"{users[1].email}\n{users[2].pk}\n".encode())
    response = admin_client.post(
        url, {"name": "vips", "kind": "list", "value": "", "description": "", "csv_file": good,
              **_inline_management()},
    )
    assert response.status_code == 302, response.content.decode()[:3000]
    assert set(AudienceMember.objects.values_list("user_id", flat=True)) == {
        users[1].pk, users[2].pk
    }
    page = admin_client.get(url).content.decode()
    assert "Recipients now" in page and '<div class="readonly">2</div>' in page

    bad = SimpleUploadedFile("m.csv", b"not-a-user\n")
    response = admin_client.post(
        url, {"name": "vips", "kind": "list", "value": "", "description": "", "csv_file": bad,
              **_inline_management()},
    )
    assert response.status_code == 200
    assert "neither an email nor a user id" in response.content.decode()
    assert AudienceMember.objects.count() == 2


def _inline_management() -> dict[str, str]:
    prefix = "subscriptions"
    return {
        f"{prefix}-TOTAL_FORMS": "0", f"{prefix}-INITIAL_FORMS": "0",
        f"{prefix}-MIN_NUM_FORMS": "0", f"{prefix}-MAX_NUM_FORMS": "0",
    }


def test_audience_admin_adds_a_list_from_csv_and_refuses_a_topic_key_taken(admin_client):
    users = bulk_users(2)
    upload = SimpleUploadedFile("m.csv", f"email\n{users[0].email}\n".encode())
    response = admin_client.post(
        "/admin/campaigns/audience/add/",
        {"name": "from csv", "kind": "list", "value": "", "description": "", "csv_file": upload,
         **_inline_management()},
    )
    assert response.status_code == 302, response.content.decode()[:3000]
    audience = Audience.objects.get(name="from csv")
    assert list(AudienceMember.objects.filter(audience=audience).values_list(
        "user_id", flat=True)) == [users[0].pk]

    audience_save(name="news", kind="topic", value="news")
    response = admin_client.post(
        "/admin/campaigns/audience/add/",
        {"name": "news 2", "kind": "topic", "value": "news", "description": "",
         **_inline_management()},
    )
    assert response.status_code == 200
    assert "topic key &#x27;news&#x27; is taken" in response.content.decode()
    assert not Audience.objects.filter(name="news 2").exists()
