"""The admin console in a real browser: headless Chromium (Playwright, the system's
/usr/bin/chromium, nothing downloaded) against a real HTTP server (pytest-django's
``live_server``, serving the test database). A staff member logs in through the login
form, previews a template, disables a provider with the list action and opens the
dashboard, whose screenshot is saved to ``test-artifacts/dashboard.png``.

The Playwright sync API runs an event loop in the test's thread while it is open, so all
ORM work (seeding, final checks) happens before or after the browser session."""

from __future__ import annotations

import re
from datetime import timedelta
from decimal import Decimal
from pathlib import Path

import pytest
from django.utils import timezone
from playwright.sync_api import Page, sync_playwright

from deliveries.models import NotificationDelivery
from notifyplatform.testing import CHROMIUM, CHROMIUM_ARGS
from providers.models import Provider
from templates.models import NotificationTemplate
from users.models import User

pytestmark = [
    pytest.mark.e2e,
    pytest.mark.xdist_group("admin_e2e"),
    pytest.mark.django_db(transaction=True),
]

ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"
PASSWORD = "browser-pass-phrase-1"
TIMEOUT_MS = 30_000


@pytest.fixture
def staff_member(transactional_db) -> User:
    return User.objects.create_superuser(email="console@example.test", password=PASSWORD)


def _put_back_catalogue() -> None:
    from templates.catalog import catalogue_rows

    existing = set(NotificationTemplate.objects.values_list("template_key", flat=True))
    NotificationTemplate.objects.bulk_create(
        [NotificationTemplate(**r) for r in catalogue_rows() if r["template_key"] not in existing]
    )


@pytest.fixture(autouse=True)
def restore_catalogue(transactional_db):
    """Transactional tests truncate every table, the catalogue's data-migration rows too:
    the catalogue is there before each test here (a batch is validated against it) and put
    back after it for the tests that run next in the same process."""
    _put_back_catalogue()
    yield
    _put_back_catalogue()


def open_browser(pw):
    return pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)


def log_in(page: Page, base: str) -> None:
    page.goto(f"{base}/admin/login/?next=/admin/")
    page.fill("#id_username", "console@example.test")
    page.fill("#id_password", PASSWORD)
    page.click("input[type=submit]")
    page.wait_for_selector("#np-dashboard-link", timeout=TIMEOUT_MS)


def seed_dashboard_rows() -> None:
    now = timezone.now()
    for status, provider, cost in (
        ("delivered", "b-mail", "0.010000"),
        ("delivered", "b-mail", "0.010000"),
        ("failed", "b-sms", "0.050000"),
        ("sent", "b-sms", "0.050000"),
    ):
        NotificationDelivery.objects.create(
            delivery_type="email",
            provider_type="email",
            provider_name=provider,
            provider_priority=10,
            recipient="guest@example.test",
            recipient_type="email",
            status=status,
            sent_at=now,
            cost_per_message=Decimal(cost),
        )
    earlier = NotificationDelivery.objects.create(
        delivery_type="sms",
        provider_type="sms",
        provider_name="b-sms",
        provider_priority=10,
        recipient="+15550100",
        recipient_type="phone",
        status="pending",
    )
    NotificationDelivery.objects.filter(pk=earlier.pk).update(created_at=now - timedelta(hours=5))


def test_log_in_preview_a_template_disable_a_provider_and_open_the_dashboard(
    live_server, staff_member
):
    # given: a template, two enabled providers and a few deliveries
    template = NotificationTemplate.objects.create(
        template_key="browser_demo.email.en",
        template_name="Browser demo",
        invitation_type="browser_demo",
        delivery_type="email",
        language="en",
        subject_template="Hello {{ name }}",
        content_template="{{ name }} bid {{ amount }}",
        html_template="<p>Bid by <b>{{ name }}</b></p>",
        template_variables={
            "name": {"required": True, "example": "Grace"},
            "amount": {"required": True, "example": "42.00"},
        },
    )
    target = Provider.objects.create(
        provider_name="b-webhook", provider_type="webhook", provider_class="webhook"
    )
    Provider.objects.create(
        provider_name="b-other", provider_type="webhook", provider_class="webhook"
    )
    seed_dashboard_rows()
    base = live_server.url
    ARTIFACTS.mkdir(exist_ok=True)
    screenshot = ARTIFACTS / "dashboard.png"
    screenshot.unlink(missing_ok=True)

    with sync_playwright() as pw:
        browser = open_browser(pw)
        try:
            page = browser.new_page(viewport={"width": 1400, "height": 1000})
            # when: the staff member logs in with the form
            log_in(page, base)

            # ... previews the template from its change page
            page.goto(f"{base}/admin/templates/notificationtemplate/{template.pk}/change/")
            page.click("a.np-preview-link")
            card = page.locator('.np-preview-card[data-key="browser_demo.email.en"]')
            card.wait_for(timeout=TIMEOUT_MS)
            subject = card.locator(".np-subject").text_content()
            text = card.locator("pre.np-text").text_content()
            html_bold = (
                page.frame_locator("iframe.np-html").locator("b").text_content(timeout=TIMEOUT_MS)
            )

            # ... disables one provider with the list action
            page.goto(f"{base}/admin/providers/provider/")
            page.check(f'input[name="_selected_action"][value="{target.pk}"]')
            page.select_option('select[name="action"]', "disable_providers")
            page.click('button[name="index"]')
            page.wait_for_selector("ul.messagelist li.success", timeout=TIMEOUT_MS)
            message = page.locator("ul.messagelist li.success").text_content()
            badge = page.locator("tr:has(a:text-is('b-webhook')) .np-badge").text_content()

            # ... and opens the dashboard from the admin index
            page.goto(f"{base}/admin/")
            page.click("#np-dashboard-link")
            page.wait_for_selector("svg#chart-deliveries-per-hour", timeout=TIMEOUT_MS)
            hour_bars = page.locator("svg#chart-deliveries-per-hour rect.np-bar").count()
            funnel_charts = page.locator("svg#chart-invitation-funnel").count()
            deliveries_kpi = page.locator("#kpi-deliveries b").text_content()
            success_bars = {
                el.get_attribute("data-label"): el.get_attribute("data-value")
                for el in page.locator("svg#chart-provider-success rect.np-bar").all()
            }
            page.screenshot(path=str(screenshot), full_page=True)
        finally:
            browser.close()

    # then: the preview showed the example values, escaped HTML rendered in its frame
    assert subject == "Hello Grace"
    assert text == "Grace bid 42.00"
    assert html_bold == "Grace"
    # the provider is disabled (and only that one)
    assert message == "Disabled 1 provider(s)."
    assert badge == "disabled"
    assert dict(
        Provider.objects.filter(provider_name__startswith="b-").values_list(
            "provider_name", "is_enabled"
        )
    ) == {"b-webhook": False, "b-other": True}
    # the dashboard drew the deliveries: 4 sent ones this hour + 1 pending 5 h ago
    assert deliveries_kpi == "5"
    # this hour: delivered and failed and sent segments; 5 h ago: pending
    assert hour_bars == 4
    assert funnel_charts == 1
    assert success_bars == {"b-mail (email)": "100.00", "b-sms (email)": "0.00"}
    data = screenshot.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    assert len(data) > 10_000


def test_start_a_batch_with_the_form_then_cancel_it(live_server, staff_member, make_user):
    """No Celery worker runs here: the started job's chunks wait in the broker, so the
    cancel always lands on a running job, and afterwards no chunk may do any work."""
    from campaigns.models import BatchChunk, NotificationBatchJob
    from invitations.models import NewsArticle, StoryInvitation

    # given: an article to invite to and three more active users
    article = NewsArticle.objects.create(title="Rates cut", summary="The bank cut rates.")
    for _ in range(3):
        make_user()
    base = live_server.url

    with sync_playwright() as pw:
        browser = open_browser(pw)
        try:
            page = browser.new_page()
            log_in(page, base)
            # when: the batch is started with the admin's form ...
            page.goto(f"{base}/admin/campaigns/notificationbatchjob/start/")
            page.select_option("#id_job_type", "invitation_batch")
            page.select_option("#id_invitation_type", "news_feed")
            page.fill("#id_article", str(article.pk))
            page.fill("#id_audience", "all")
            page.check('input[name="channels"][value="in_app"]')
            page.fill("#id_name", "browser batch")
            # (the form's first button is "Preview and count", which creates nothing)
            page.click('form:has(#id_job_type) input[type=submit][name="_start"]')
            page.wait_for_selector("ul.messagelist li", timeout=TIMEOUT_MS)
            started = page.locator("ul.messagelist li").first.text_content()
            job_id = re.search(r"[Bb]atch job (\d+) started", started).group(1)
            # ... and cancelled with the list action
            page.check(f'input[name="_selected_action"][value="{job_id}"]')
            page.select_option('select[name="action"]', "cancel_jobs")
            page.click('button[name="index"]')
            page.wait_for_selector(
                f"ul.messagelist li:has-text('job {job_id} cancelled')", timeout=TIMEOUT_MS
            )
            cancelled = page.locator("ul.messagelist li").first.text_content()
        finally:
            browser.close()

    # then: the job was created for the 3 users (the inviter, the staff member, is not
    # invited), is cancelled, and did nothing
    job = NotificationBatchJob.objects.get(pk=int(job_id))
    # (the wording of the batch admin's messages is theirs; only case may vary)
    assert started.lower() == f"batch job {job.pk} started: browser batch"
    assert cancelled.lower() == f"job {job.pk} cancelled"
    assert (job.job_type, job.invitation_type, job.status) == (
        "invitation_batch",
        "news_feed",
        "cancelled",
    )
    assert job.total_notifications == 3
    assert job.processed_notifications == 0
    assert job.completed_at is not None
    assert BatchChunk.objects.filter(job=job).exclude(status="pending").count() == 0
    assert StoryInvitation.objects.count() == 0
