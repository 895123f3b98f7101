"""The demo page (``/realtime/demo/``) in headless Chromium shows an arriving in-app
notification with its rich content: the image, and each button linking to its tracked
link (the payload is the real in-app payload of a notification made by ``notify()``)."""

from __future__ import annotations

import pytest
from asgiref.sync import sync_to_async
from playwright.async_api import async_playwright

from deliveries.payloads import inbox_payload
from deliveries.services import notify
from notifyplatform.testing import CHROMIUM, CHROMIUM_ARGS
from realtime.services import publish
from realtime.tests.conftest import DaphneServer, run

pytestmark = [
    pytest.mark.e2e,
    pytest.mark.xdist_group("realtime_e2e"),
    pytest.mark.django_db(transaction=True),
]

IMAGE = "https://cdn.example/vase.png"
BUTTONS = [
    {"label": "View order", "url": "https://shop.example/orders/7"},
    {"label": "Get help", "url": "https://help.example/chat"},
]


@pytest.fixture
def server(django_db_setup):
    daphne = DaphneServer()
    daphne.start()
    yield daphne
    daphne.stop()


def test_the_demo_inbox_shows_the_image_and_tracked_buttons(server, user):
    result = notify(
        user,
        title="Shipped",
        message="On its way",
        channels=["in_app"],
        action_url="https://shop.example/orders/7",
        action_label="Track",
        rich_content={"image": {"url": IMAGE, "alt": "Blue vase"}, "buttons": BUTTONS},
    )
    payload = inbox_payload(result.notification)

    async def scenario():
        async with async_playwright() as pw:
            browser = await pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
            try:
                page = await browser.new_page(bypass_csp=True)
                await page.goto(f"{server.origin}/realtime/demo/?topics=demo-inbox")
                await page.wait_for_function(
                    "window.notifyRealtime && window.notifyRealtime.lastSeq !== null",
                    timeout=30_000,
                )
                await sync_to_async(publish)(
                    event_type="notification.created",
                    category="notification",
                    data=payload,
                    visibility="public",
                    topics=["demo-inbox"],
                )
                card = await page.wait_for_selector(".inbox-card", timeout=30_000)
                image = await card.eval_on_selector(
                    "img.inbox-image", "img => [img.getAttribute('src'), img.alt]"
                )
                buttons = await card.eval_on_selector_all(
                    "a.inbox-button", "as => as.map(a => [a.textContent, a.href])"
                )
                title = await card.eval_on_selector(".inbox-title", "e => e.textContent")
                return image, buttons, title
            finally:
                await browser.close()

    image, buttons, title = run(scenario())

    assert title == "Shipped"
    assert image == [IMAGE, "Blue vase"]
    expected = [("Track", payload["tracked_action_url"])] + [
        (b["label"], b["tracked_url"]) for b in payload["rich_content"]["buttons"]
    ]
    assert [tuple(b) for b in buttons] == expected
    assert all("/c/" in href for _label, href in buttons)
