"""The demo page in real browsers (headless Chromium through Playwright) against a real
daphne server and this run's Redis: a signed-in bidder bids from the table in one
browser and the price, leader, bid count and a sentence move in another browser; a
public price-clock event moves every board, the anonymous visitor's too, who is told
what they cannot see and is offered no bid form."""

from __future__ import annotations

import re
from datetime import timedelta
from decimal import Decimal

import pytest
from django.conf import settings
from django.test import Client
from django.utils import timezone
from playwright.async_api import async_playwright

from auctions.services import auction_create, auction_start, bidder_pseudonym
from notifyplatform.testing import CHROMIUM, CHROMIUM_ARGS
from realtime.tests.conftest import run

pytestmark = [
    pytest.mark.e2e,
    pytest.mark.xdist_group("realtime_e2e"),
    pytest.mark.django_db(transaction=True),
]
TIMEOUT = 30_000


def session_cookie(user, origin: str) -> dict:
    client = Client()
    client.force_login(user)
    return {
        "name": settings.SESSION_COOKIE_NAME,
        "value": client.cookies[settings.SESSION_COOKIE_NAME].value,
        "url": origin,
    }


def test_a_bid_in_one_browser_moves_the_board_in_another(
    daphne_server, make_user, apublish, settings
):
    server = daphne_server
    seller = make_user(email="seller@example.test", display_name="Sam")
    ann = make_user(email="ann@example.test", display_name="Ann")
    # Ann signs in through the page: a hash the server's own (default) hashers check
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.PBKDF2PasswordHasher"]
    ann.set_password("pw-for-tests-1")
    ann.save(update_fields=["password"])
    ben = make_user(email="ben@example.test", display_name="Ben")
    now = timezone.now()
    auction = auction_create(
        seller=seller, auction_type="english", title="1962 Omega Seamaster",
        starts_at=now - timedelta(minutes=1), ends_at=now + timedelta(hours=2),
        starting_price=Decimal("100.00"), min_increment=Decimal("5.00"),
        items=[{"title": "1962 Omega Seamaster"}],
    )
    assert auction_start(auction_id=auction.pk)
    row = f"#auctions tr[data-auction-id='{auction.pk}']"
    ann_name = bidder_pseudonym(auction.pk, ann.pk)
    ben_cookie = session_cookie(ben, server.origin)

    async def open_page(browser, cookie=None, sign_in=None):
        # bypass_csp: Playwright's wait_for_function evaluates strings, which the CSP forbids
        context = await browser.new_context(bypass_csp=True)
        if cookie:
            await context.add_cookies([cookie])
        page = await context.new_page()
        if sign_in:  # through the page's own sign-in form
            await page.goto(f"{server.origin}/realtime/demo/")
            await page.click("#sign-in")
            await page.fill("#id_username", sign_in)
            await page.fill("#id_password", "pw-for-tests-1")
            await page.click("button[type=submit]")
            await page.wait_for_url(f"{server.origin}/realtime/demo/", timeout=TIMEOUT)
        else:
            await page.goto(f"{server.origin}/realtime/demo/")
        await page.wait_for_function(
            "document.getElementById('status').textContent === 'open' && "
            "window.notifyRealtime.lastSeq !== null",
            timeout=TIMEOUT,
        )
        return page

    async def scenario():
        async with async_playwright() as pw:
            browser = await pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
            try:
                bidder = await open_page(browser, sign_in="ann@example.test")
                watcher = await open_page(browser, ben_cookie)
                visitor = await open_page(browser)
                seen = {
                    "before": await watcher.text_content(f"{row} .price"),
                    "time_left": await watcher.text_content(f"{row} .time-left"),
                    "visitor_notice": await visitor.text_content("#visitor-notice"),
                    "visitor_forms": await visitor.locator("form.bid-form").count(),
                    "bidder_notice": await bidder.text_content("#visitor-notice"),
                }
                # when: Ann bids 165 from the table in her browser
                await bidder.fill(f"{row} input[name=amount]", "165")
                await bidder.click(f"{row} form.bid-form button")
                await bidder.wait_for_selector(f"{row} .bid-result.ok", timeout=TIMEOUT)
                seen["bid_result"] = await bidder.text_content(f"{row} .bid-result")
                # then: Ben's board moves without a reload
                await watcher.wait_for_function(
                    f"document.querySelector(\"{row} .price\").textContent === '165.00 USD'",
                    timeout=TIMEOUT,
                )
                seen["price"] = await watcher.text_content(f"{row} .price")
                seen["leader"] = await watcher.text_content(f"{row} .leader")
                seen["bids"] = await watcher.text_content(f"{row} .bids")
                sentence = watcher.locator("#events li[data-event-type='bid_placed'] .sentence")
                seen["sentence"] = await sentence.first.text_content()
                seen["raw_json"] = "{" in await watcher.text_content("#events")
                # a price clock ticks (a public event): every board follows, anonymous too
                await apublish(
                    event_type="auction_price_changed", category="auction",
                    data={"auction_id": str(auction.pk), "auction_title": auction.title,
                          "current_price": "150.00", "previous_price": "165.00",
                          "currency": "USD"},
                    visibility="public", topics=[f"auction.{auction.pk}"],
                )
                for page in (watcher, visitor):
                    await page.wait_for_function(
                        f"document.querySelector(\"{row} .price\").textContent === '150.00 USD'",
                        timeout=TIMEOUT,
                    )
                seen["clock_sentence"] = await visitor.text_content(
                    "#events li[data-event-type='auction_price_changed'] .sentence"
                )
                seen["visitor_bid_events"] = await visitor.locator(
                    "#events li[data-event-type='bid_placed']"
                ).count()
                # every other event type reads as a sentence too (the known ones worded,
                # any new one from its type and fields)
                seen["described"] = await visitor.evaluate(
                    """() => [
                      {event_type: "bid_placed", data: {bidder: "Bidder 1a2b3c", sealed: true,
                        auction_title: "Vase"}},
                      {event_type: "auction_status_changed", data: {auction_title: "Vase",
                        new_status: "completed", winner: "Bidder 1a2b3c", final_price: "90.00",
                        currency: "EUR"}},
                      {event_type: "auction_status_changed", data: {auction_title: "Vase",
                        new_status: "completed", winner: null}},
                      {event_type: "auction_ending", data: {auction_title: "Vase",
                        time_remaining: "5 minutes"}},
                      {event_type: "auction_price_changed", data: {auction_title: "Clock",
                        price: "80.00", currency: "USD"}},
                      {event_type: "bidder_dropped_out", data: {auction_title: "Vase",
                        bidder: "Bidder 1a2b3c", remaining: 2, details: {x: 1}}},
                    ].map(e => NotifyDemo.describe(e, {}))"""
                )
                return seen
            finally:
                await browser.close()

    seen = run(scenario())
    assert seen["before"] == "100.00 USD"
    assert re.fullmatch(r"[12] h \d+ min", seen["time_left"]), seen["time_left"]
    assert "signed in as" in seen["bidder_notice"] and "Ann" in seen["bidder_notice"]
    assert "not signed in" in seen["visitor_notice"]
    assert "signed-in members only" in seen["visitor_notice"]
    assert seen["visitor_forms"] == 0
    assert seen["bid_result"] == "Your bid of 165.00 is in."
    assert seen["price"] == "165.00 USD"
    assert seen["leader"] == ann_name
    assert seen["bids"] == "1"
    assert seen["sentence"] == f"{ann_name} bid 165.00 USD on 1962 Omega Seamaster."
    assert seen["raw_json"] is False
    assert seen["clock_sentence"] == (
        "The price of 1962 Omega Seamaster is now 150.00 USD (was 165.00 USD)."
    )
    assert seen["visitor_bid_events"] == 0  # bids are for signed-in members
    assert seen["described"] == [
        "Bidder 1a2b3c placed a sealed bid on Vase.",
        "Vase has ended: Bidder 1a2b3c won at 90.00 EUR.",
        "Vase has ended without a winner.",
        "Vase ends in 5 minutes.",
        "The price of Clock is now 80.00 USD.",
        "Bidder dropped out on Vase (bidder Bidder 1a2b3c, remaining 2).",
    ]
