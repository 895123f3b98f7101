"""The start-a-batch form in headless Chromium (Playwright on /usr/bin/chromium, a real
``live_server``): the progressive script shows only the selected job type's fieldsets and
the CSP lets it run; the preview then renders the first recipient's message. The form
without the script is covered in ``test_admin_campaigns.py``."""

from __future__ import annotations

import pytest
from playwright.sync_api import sync_playwright

from campaigns.models import NotificationBatchJob
from campaigns.services import audience_save
from campaigns.tests.test_batch_helpers import bulk_users
from notifyplatform.testing import CHROMIUM, CHROMIUM_ARGS
from templates.catalog import catalogue_rows
from templates.models import NotificationTemplate
from users.models import User

pytestmark = [
    pytest.mark.e2e,
    pytest.mark.xdist_group("admin_e2e"),
    pytest.mark.django_db(transaction=True),
]

PASSWORD = "browser-pass-phrase-1"
TIMEOUT_MS = 30_000


def _catalogue() -> None:
    existing = set(NotificationTemplate.objects.values_list("template_key", flat=True))
    NotificationTemplate.objects.bulk_create(
        [NotificationTemplate(**r) for r in catalogue_rows() if r["template_key"] not in existing]
    )


@pytest.fixture(autouse=True)
def restore_catalogue(transactional_db):
    _catalogue()
    yield
    _catalogue()


def test_job_type_switches_the_fieldsets_and_preview_renders(live_server):
    User.objects.create_superuser(email="console@example.test", password=PASSWORD)
    bulk_users(3, region="eu")
    audience = audience_save(name="Europe", kind="region", value="eu")
    base = live_server.url

    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        page = browser.new_page()
        errors: list[str] = []
        page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
        page.goto(f"{base}/admin/login/?next=/admin/campaigns/notificationbatchjob/start/")
        page.fill("#id_username", "console@example.test")
        page.fill("#id_password", PASSWORD)
        page.click("input[type=submit]")
        page.wait_for_selector("#id_job_type", timeout=TIMEOUT_MS)

        def visible(types: str) -> bool:
            return page.is_visible(f'fieldset[data-job-types="{types}"]')

        # invitation batch (the first choice): invitation fields, not the template's
        page.select_option("#id_job_type", "invitation_batch")
        assert visible("invitation_batch reminder_batch") and not visible("broadcast")
        assert not visible("cleanup_batch")
        # broadcast: template, audience and channels; no invitation or cleanup fields
        page.select_option("#id_job_type", "broadcast")
        assert visible("broadcast") and visible("invitation_batch broadcast")
        assert not visible("invitation_batch reminder_batch") and not visible("cleanup_batch")
        page.select_option("#id_job_type", "cleanup_batch")
        assert visible("cleanup_batch") and not visible("invitation_batch broadcast")

        # a broadcast preview: count and the first recipient's message
        page.select_option("#id_job_type", "broadcast")
        page.fill("#id_template", "auction_started")
        page.fill("#id_context", '{"auction_title": "Vintage Watch"}')
        page.select_option("#id_saved_audience", str(audience.pk))
        page.check("input[name=channels][value=in_app]")
        page.click("input[name=_preview]")
        page.wait_for_selector("#np-batch-preview", timeout=TIMEOUT_MS)
        count = page.inner_text(".np-recipient-count")
        message = page.inner_text('.np-preview-message[data-channel="in_app"]')
        # the page came back with broadcast selected: its fieldsets still shown
        still_broadcast = visible("broadcast") and not visible("cleanup_batch")
        browser.close()

    assert count == "3"
    assert "Vintage Watch is now live" in message
    assert still_broadcast
    assert not [e for e in errors if "Content Security Policy" in e], errors
    assert not NotificationBatchJob.objects.exists()
