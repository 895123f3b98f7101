"""A real browser (headless Chromium through Playwright) on the demo page: it receives a
published event, loses its connection when the server restarts, and shows the events
published meanwhile once the client has reconnected and resumed from its sequence."""

from __future__ import annotations

import asyncio

import pytest
from playwright.async_api import async_playwright

from notifyplatform.testing import CHROMIUM, CHROMIUM_ARGS

from .conftest import DaphneServer, run

pytestmark = [
    pytest.mark.e2e,
    pytest.mark.xdist_group("realtime_e2e"),
    pytest.mark.django_db(transaction=True),
]


@pytest.fixture
def restartable_server(django_db_setup):
    server = DaphneServer()
    server.start()
    yield server
    server.stop()


def test_demo_page_shows_live_events_and_those_published_while_the_server_was_down(
    restartable_server, apublish
):
    server = restartable_server

    async def shown(page) -> list[int]:
        return await page.eval_on_selector_all(
            "#events li.event", "items => items.map(li => Number(li.dataset.seq))"
        )

    async def scenario():
        async with async_playwright() as pw:
            browser = await pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
            try:
                # Playwright polls wait_for_function predicates with eval, which the
                # page's CSP forbids; the policy itself is tested in test_csp_browser.py
                page = await browser.new_page(bypass_csp=True)
                await page.goto(f"{server.origin}/realtime/demo/?topics=demo")
                await page.wait_for_function(
                    "document.getElementById('status').textContent === 'open'", timeout=30_000
                )
                # the page subscribed (the subscribe rides on the connect URL)
                await page.wait_for_function(
                    "window.notifyRealtime && window.notifyRealtime.lastSeq !== null",
                    timeout=30_000,
                )
                live = await apublish(
                    event_type="bid.placed",
                    category="bid",
                    data={"amount": "10.00"},
                    visibility="public",
                    topics=["demo"],
                )
                await page.wait_for_selector(
                    f"#events li[data-seq='{live.sequence_number}']", timeout=30_000
                )
                # when: the server goes away and events are published meanwhile
                await asyncio.to_thread(server.stop)
                await page.wait_for_function(
                    "document.getElementById('status').textContent !== 'open'", timeout=30_000
                )
                missed = [
                    await apublish(
                        event_type="bid.placed",
                        category="bid",
                        data={"amount": f"{11 + n}.00"},
                        visibility="public",
                        topics=["demo"],
                    )
                    for n in range(3)
                ]
                await asyncio.to_thread(server.start)
                last = missed[-1].sequence_number
                await page.wait_for_selector(f"#events li[data-seq='{last}']", timeout=60_000)
                status = await page.text_content("#status")
                return live, missed, await shown(page), status
            finally:
                await browser.close()

    live, missed, seqs, status = run(scenario())
    # newest first on the page
    assert seqs == [e.sequence_number for e in reversed([live, *missed])]
    assert status == "open"


def test_demo_page_client_unpacks_coalesced_frames_of_a_replay_in_order(
    restartable_server, apublish
):
    """The JS client asks for coalesced frames (``batch=1``); a replay of 250 events
    arrives as two JSON arrays (200 + 50, ``NP_WS_BATCH_MAX_EVENTS``) and the page shows
    every event once, in sequence order."""
    server = restartable_server

    async def scenario():
        async with async_playwright() as pw:
            browser = await pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
            try:
                # Playwright polls wait_for_function predicates with eval, which the
                # page's CSP forbids; the policy itself is tested in test_csp_browser.py
                page = await browser.new_page(bypass_csp=True)
                await page.goto(f"{server.origin}/realtime/demo/?topics=demo-batch")
                await page.wait_for_function(
                    "window.notifyRealtime && window.notifyRealtime.lastSeq !== null",
                    timeout=30_000,
                )
                # given: the server is down while 250 events are published
                await asyncio.to_thread(server.stop)
                await page.wait_for_function(
                    "document.getElementById('status').textContent !== 'open'", timeout=30_000
                )
                missed = [
                    await apublish(
                        event_type="bid.placed",
                        category="bid",
                        data={"n": n},
                        visibility="public",
                        topics=["demo-batch"],
                    )
                    for n in range(250)
                ]
                # when: it comes back and the client resumes from its position
                await asyncio.to_thread(server.start)
                last = missed[-1].sequence_number
                await page.wait_for_selector(f"#events li[data-seq='{last}']", timeout=60_000)
                batches = await page.evaluate("window.notifyRealtime.batches")
                return missed, await shown(page), batches
            finally:
                await browser.close()

    async def shown(page) -> list[int]:
        return await page.eval_on_selector_all(
            "#events li.event", "items => items.map(li => Number(li.dataset.seq))"
        )

    missed, seqs, batches = run(scenario())
    # then: all of them, once, in order (newest first on the page), from two arrays
    assert seqs == [e.sequence_number for e in reversed(missed)]
    assert batches == 2
