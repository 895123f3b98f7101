"""The preference page in a real browser (headless Chromium through Playwright, the system's
/usr/bin/chromium) against a real HTTP server (pytest-django's ``live_server``): a real email
goes out over SMTP to the in-process aiosmtpd sink, the browser opens the link in its footer,
switches one type off on email with the keyboard and saves; the next notification of that type
is skipped on email (decision ``opt_out``) and still goes in-app. Once with JavaScript off.

The Playwright sync API runs an event loop in the test's thread while it is open, so all ORM
work happens before or after the browser session."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import sync_playwright

from deliveries.models import UserNotificationPreference
from deliveries.services import delivery_send, notify
from notifyplatform.testing import CHROMIUM, CHROMIUM_ARGS

pytestmark = [
    pytest.mark.e2e,
    pytest.mark.xdist_group("preference_page_e2e"),
    pytest.mark.django_db(transaction=True),
]

TYPE = "auction_ended"
CONTEXT = {"auction_title": "Clocks", "winner": "Bob"}
TIMEOUT_MS = 30_000


def _put_back_catalogue() -> None:
    from templates.catalog import catalogue_rows
    from templates.models import NotificationTemplate

    existing = set(NotificationTemplate.objects.values_list("template_key", flat=True))
    NotificationTemplate.objects.bulk_create(
        [NotificationTemplate(**r) for r in catalogue_rows() if r["template_key"] not in existing]
    )


@pytest.fixture(autouse=True)
def restore_catalogue(transactional_db):
    """Transactional tests truncate every table, the catalogue's rows too: there before the
    test, and put back for the tests that run next in this process."""
    _put_back_catalogue()
    yield
    _put_back_catalogue()


def _footer_link(mail) -> str:
    [text] = [
        p.get_payload(decode=True).decode(p.get_content_charset() or "utf-8")
        for p in mail.walk()
        if p.get_content_type() == "text/plain"
    ]
    [link] = re.findall(r"Manage your notification preferences: (\S+)", text)
    return link


@pytest.mark.parametrize("javascript", [True, False], ids=["js", "no-js"])
def test_the_link_in_a_received_email_opens_the_page_and_a_switched_off_type_is_skipped(
    user, pipeline_providers, smtp_server, live_server, settings, javascript
):
    settings.NP_PUBLIC_BASE_URL = live_server.url
    sink, _port = smtp_server
    result = notify(user, template_key=TYPE, context=CONTEXT, channels=["email"])
    [delivery] = result.deliveries
    assert delivery_send(delivery.pk).outcome == "sent"
    link = _footer_link(sink.messages[-1])
    assert link.startswith(f"{live_server.url}/p/")

    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            context = browser.new_context(java_script_enabled=javascript)
            page = context.new_page()
            page.goto(link)
            assert page.title() == "Notification preferences"
            toggle = page.locator(f"#on-email-{TYPE}")
            label_text = page.locator(f"label[for='on-email-{TYPE}']").inner_text()
            in_app_before = page.locator(f"#on-in_app-{TYPE}").is_checked()
            was_checked = toggle.is_checked()
            # keyboard only: focus the checkbox, Space toggles it, Enter on the button saves
            toggle.focus()
            page.keyboard.press("Space")
            now_checked = toggle.is_checked()
            page.locator("#save").focus()
            page.keyboard.press("Enter")
            page.wait_for_selector("#saved", timeout=TIMEOUT_MS)
            saved_url = page.url
            after_email = page.locator(f"#on-email-{TYPE}").is_checked()
            after_in_app = page.locator(f"#on-in_app-{TYPE}").is_checked()
        finally:
            browser.close()

    assert label_text == TYPE
    assert (was_checked, now_checked) == (True, False)
    assert saved_url.endswith("?saved=1") and "/p/" in saved_url
    assert (after_email, after_in_app, in_app_before) == (False, True, True)

    pref = UserNotificationPreference.objects.get(user=user)
    assert (pref.invitation_type, pref.delivery_method, pref.is_enabled) == (TYPE, "email", False)
    email, in_app = notify(
        user, template_key=TYPE, context=CONTEXT, channels=["email", "in_app"]
    ).deliveries
    assert email.status == "skipped"
    assert email.delivery_metadata["decision"]["rule"] == "opt_out"
    assert email.delivery_metadata["decision"]["preference_id"] == pref.pk
    assert in_app.status == "sent"  # the other channel goes out (in-app: written sent)
