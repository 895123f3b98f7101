"""A real browser (headless Chromium through Playwright) on the demo page sets a throttle:
the bundled client sends a ``preferences`` frame, the page shows what is in force, and
a burst of events arrives complete, coalesced into arrays."""

from __future__ import annotations

import json

import pytest
from playwright.async_api import async_playwright

from notifyplatform.testing import CHROMIUM, CHROMIUM_ARGS
from realtime.models import WebsocketConnection

from .conftest import run

pytestmark = [
    pytest.mark.e2e,
    pytest.mark.xdist_group("realtime_e2e"),
    pytest.mark.django_db(transaction=True),
]


def test_demo_page_sets_a_throttle_shows_it_and_receives_a_burst_coalesced(daphne_server, apublish):
    async def scenario():
        async with async_playwright() as pw:
            browser = await pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
            try:
                page = await browser.new_page()
                await page.goto(f"{daphne_server.origin}/realtime/demo/?topics=demo-throttle")
                await page.wait_for_function(
                    "window.notifyRealtime && window.notifyRealtime.preferencesInForce",
                    timeout=30_000,
                )
                # when: the user sets a throttle of 1 event/s in the form
                await page.fill("#throttle", "1")
                await page.click("#throttle-form button")
                await page.wait_for_function(
                    "document.getElementById('preferences').textContent.includes('\"rate\":1')",
                    timeout=30_000,
                )
                shown_prefs = json.loads(await page.text_content("#preferences"))
                connection_id = await page.evaluate("window.notifyRealtime.connectionId")
                # and a burst of events is published
                burst = [
                    await apublish(
                        event_type="bid.placed",
                        category="bid",
                        data={"n": n},
                        visibility="public",
                        topics=["demo-throttle"],
                    )
                    for n in range(12)
                ]
                last = burst[-1].sequence_number
                await page.wait_for_selector(f"#events li[data-seq='{last}']", timeout=30_000)
                seqs = await page.eval_on_selector_all(
                    "#events li.event", "items => items.map(li => Number(li.dataset.seq))"
                )
                batches = await page.evaluate("window.notifyRealtime.batches")
                return shown_prefs, connection_id, burst, seqs, batches
            finally:
                await browser.close()

    shown_prefs, connection_id, burst, seqs, batches = run(scenario())
    # then: the page shows the throttle in force, and the server stored it
    assert shown_prefs == {"rate": 1, "coalesce": True}
    stored = WebsocketConnection.objects.get(pk=connection_id).user_preferences
    assert stored["rate"] == 1
    # every event of the burst, once, in order (newest first on the page), coalesced
    assert seqs == [e.sequence_number for e in reversed(burst)]
    assert batches >= 1
