"""The Content-Security-Policy (issue 15, item 7) in a real browser: headless Chromium
(Playwright, /usr/bin/chromium) against pytest-django's live server. The admin, its
dashboard, the batch-job list (an inline script with the response's nonce), Swagger UI
and the realtime demo page must work with no policy violation; an inline script
without the nonce must be blocked (the policy is enforced, not just sent)."""

from __future__ import annotations

import pytest
from playwright.sync_api import Page, sync_playwright

from notifyplatform.testing import CHROMIUM, CHROMIUM_ARGS
from users.models import User

pytestmark = [
    pytest.mark.e2e,
    pytest.mark.xdist_group("admin_e2e"),
    pytest.mark.django_db(transaction=True),
]

PASSWORD = "csp-browser-pass-phrase-1"
TIMEOUT_MS = 30_000
# Collects violations before any page script runs (Playwright's init scripts are not
# subject to the page's policy).
WATCH = """
window.__csp = [];
document.addEventListener("securitypolicyviolation", function (e) {
  window.__csp.push(e.violatedDirective + " " + e.blockedURI);
});
"""


@pytest.fixture
def staff_member(transactional_db) -> User:
    return User.objects.create_superuser(email="csp@example.test", password=PASSWORD)


def visit(page: Page, url: str, ready: str) -> list[str]:
    page.goto(url)
    page.wait_for_selector(ready, timeout=TIMEOUT_MS)
    return page.evaluate("window.__csp")


def test_pages_work_under_the_policy_and_an_injected_script_is_blocked(live_server, staff_member):
    base = live_server.url
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            page = browser.new_page()
            page.add_init_script(WATCH)
            console: list[str] = []
            page.on("console", lambda msg: console.append(msg.text))

            page.goto(f"{base}/admin/login/?next=/admin/")
            page.fill("#id_username", staff_member.email)
            page.fill("#id_password", PASSWORD)
            page.click("input[type=submit]")
            page.wait_for_selector("#np-dashboard-link", timeout=TIMEOUT_MS)
            violations = {"/admin/": page.evaluate("window.__csp")}
            violations["dashboard"] = visit(page, f"{base}/admin/dashboard/", "svg")
            violations["batch jobs"] = visit(
                page, f"{base}/admin/campaigns/notificationbatchjob/", "#changelist"
            )
            # the batch list's inline script ran: it is the one that defines no global,
            # so check its nonce made it through instead
            nonce_ok = page.evaluate(
                "Array.from(document.scripts).filter(s => !s.src)"
                ".every(s => s.nonce && s.nonce.length > 10)"
            )
            violations["providers"] = visit(
                page, f"{base}/admin/providers/provider/", "#changelist"
            )
            violations["swagger"] = visit(page, f"{base}/api/v1/docs/", ".swagger-ui .info")
            violations["demo"] = visit(page, f"{base}/realtime/demo/", "#status")
            # the demo's inline script ran (it drives the status line; no websocket here)
            page.wait_for_function(
                "document.getElementById('status').className !== ''", timeout=TIMEOUT_MS
            )

            # an injected inline script without the nonce is refused
            page.evaluate(
                "() => { const s = document.createElement('script');"
                " s.textContent = 'window.__injected = true'; document.body.appendChild(s); }"
            )
            injected = page.evaluate("window.__injected === true")
            blocked = page.evaluate("window.__csp")
        finally:
            browser.close()

    assert {name: v for name, v in violations.items() if v} == {}, console
    assert nonce_ok is True
    assert injected is False
    assert any(v.startswith("script-src") for v in blocked), blocked


def test_the_demo_page_opens_its_websocket_under_the_policy_on_daphne(django_db_setup):
    """connect-src 'self' must cover ws:// to the same host (CSP level 3): the demo page on a
    real daphne reaches "open" with no violation."""
    from realtime.tests.conftest import DaphneServer

    server = DaphneServer()
    server.start()
    try:
        with sync_playwright() as pw:
            browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
            try:
                page = browser.new_page()
                page.add_init_script(WATCH)
                page.goto(f"{server.origin}/realtime/demo/?topics=demo")
                page.wait_for_selector("#status.open", timeout=TIMEOUT_MS)
                violations = page.evaluate("window.__csp")
                policy = (
                    page.evaluate("document.readyState")
                    and page.request.get(f"{server.origin}/realtime/demo/").headers[
                        "content-security-policy"
                    ]
                )
            finally:
                browser.close()
    finally:
        server.stop()
    assert violations == []
    assert "connect-src 'self'" in policy
