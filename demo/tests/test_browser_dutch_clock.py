"""A Dutch clock falling on the demo page, in a real browser: a real Celery worker with
beat runs ``auctions.run_clocks`` as in production, real daphne fans its
``auction_price_changed`` events out through this run's Redis, and headless Chromium
shows the price fall tick by tick, to an anonymous visitor as to a signed-in bidder.
The bidder signs in at ``/accounts/login/`` from the page's link and takes the item at
the clock price: the auction ends at once and both boards show the winner."""

from __future__ import annotations

import re
import time
from datetime import timedelta
from decimal import Decimal

import pytest
from django.utils import timezone
from playwright.async_api import async_playwright

from auctions.models import Auction, AuctionRuleState, AuctionStatus
from auctions.services import auction_create, auction_start, bidder_pseudonym
from deliveries.tests.conftest import purge_queue, start_worker  # noqa: F401 - fixtures
from notifyplatform.testing import CHROMIUM, CHROMIUM_ARGS
from realtime.tests.conftest import run

pytestmark = [
    pytest.mark.e2e,
    pytest.mark.xdist_group("realtime_e2e"),
    pytest.mark.django_db(transaction=True),
]
TIMEOUT = 60_000
TITLE = "Tulip bulbs, lot 7"
# every price-clock sentence on the page, oldest first
CLOCK_SENTENCES = """() => Array.from(document.querySelectorAll(
  "#events li[data-event-type='auction_price_changed'] .sentence")).map(e => e.textContent).reverse()"""


def clock_sentence(price: int, was: int) -> str:
    return f"The Dutch clock on {TITLE} falls to {price}.00 EUR (was {was}.00 EUR)."


@pytest.mark.usefixtures("purge_queue")
def test_a_signed_in_bidder_watches_the_dutch_clock_fall_and_takes_the_lot(
    daphne_server, make_user, settings, start_worker  # noqa: F811
):
    server = daphne_server
    seller = make_user(email="seller@example.test", display_name="Sam")
    ann = make_user(email="ann@example.test", display_name="Ann")
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.PBKDF2PasswordHasher"]
    ann.set_password("pw-for-tests-1")
    ann.save(update_fields=["password"])
    # 100 EUR, -1 every 3 s down to 50: the clock runs from the database schedule
    auction = auction_create(
        seller=seller, auction_type="dutch", title=TITLE, currency="EUR",
        starts_at=timezone.now(), ends_at=timezone.now() + timedelta(hours=1),
        starting_price=Decimal("100.00"), min_increment=Decimal("1.00"),
        items=[{"title": TITLE}],
        config={"decrement": "1.00", "tick_seconds": 3, "floor_price": "50.00"},
    )
    assert auction_start(auction_id=auction.pk)
    row = f"#auctions tr[data-auction-id='{auction.pk}']"
    ann_name = bidder_pseudonym(auction.pk, ann.pk)

    async def open_page(browser, sign_in: bool = False):
        # bypass_csp: Playwright's wait_for_function evaluates strings, which the CSP forbids
        page = await (await browser.new_context(bypass_csp=True)).new_page()
        await page.goto(f"{server.origin}/realtime/demo/")
        if sign_in:  # the page's own link, to the one sign-in page and back
            await page.click("#sign-in")
            await page.wait_for_url(re.compile(r".*/accounts/login/\?next=/realtime/demo/$"),
                                        timeout=TIMEOUT)
            await page.fill("#id_username", "ann@example.test")
            await page.fill("#id_password", "pw-for-tests-1")
            await page.click("button[type=submit]")
            await page.wait_for_url(f"{server.origin}/realtime/demo/", timeout=TIMEOUT)
        await page.wait_for_function(
            "document.getElementById('status').textContent === 'open' && "
            "window.notifyRealtime.lastSeq !== null", timeout=TIMEOUT,
        )
        # the price cell as the eye sees it: every text it shows, in order
        await page.evaluate(f"""() => {{
            const cell = document.querySelector("{row} .price");
            window.shownPrices = [cell.textContent];
            new MutationObserver(() => window.shownPrices.push(cell.textContent))
              .observe(cell, {{childList: true, characterData: true, subtree: true}});
        }}""")
        return page

    async def scenario():
        async with async_playwright() as pw:
            browser = await pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
            try:
                visitor = await open_page(browser)
                bidder = await open_page(browser, sign_in=True)
                seen = {"start": await visitor.text_content(f"{row} .price")}
                # when: the worker's beat runs the clock
                start_worker(beat=True)
                for page in (visitor, bidder):
                    await page.wait_for_function(
                        f"({CLOCK_SENTENCES})().length >= 3", timeout=TIMEOUT
                    )
                # then: bid at the price just announced (a fresh tick: 2 s or more to go)
                for _attempt in range(3):
                    ticks = len(await bidder.evaluate(CLOCK_SENTENCES))
                    await bidder.wait_for_function(
                        f"({CLOCK_SENTENCES})().length > {ticks}", timeout=TIMEOUT
                    )
                    price = (await bidder.text_content(f"{row} .price")).split()[0]
                    await bidder.fill(f"{row} input[name=amount]", price)
                    await bidder.click(f"{row} form.bid-form button")
                    await bidder.wait_for_selector(
                        f"{row} .bid-result.ok, {row} .bid-result.refused", timeout=TIMEOUT
                    )
                    if await bidder.locator(f"{row} .bid-result.ok").count():
                        break
                seen["bid_price"] = price
                seen["bid_result"] = await bidder.text_content(f"{row} .bid-result")
                for name, page in (("visitor", visitor), ("bidder", bidder)):
                    await page.wait_for_function(
                        f"document.querySelector(\"{row} .status\").textContent === 'completed'",
                        timeout=TIMEOUT,
                    )
                    seen[name] = {
                        "clock": await page.evaluate(CLOCK_SENTENCES),
                        "shown": await page.evaluate("() => window.shownPrices"),
                        "price": await page.text_content(f"{row} .price"),
                        "leader": await page.text_content(f"{row} .leader"),
                        "time_left": await page.text_content(f"{row} .time-left"),
                        "ended": await page.text_content(
                            "#events li[data-event-type='auction_status_changed'] .sentence"),
                        "bid_buttons": await page.locator(
                            f"{row} form.bid-form button:not([disabled])").count(),
                    }
                seen["took"] = await bidder.text_content(
                    "#events li[data-event-type='bid_placed'] .sentence")
                seen["visitor_bids"] = await visitor.locator(
                    "#events li[data-event-type='bid_placed']").count()
                return seen
            finally:
                await browser.close()

    seen = run(scenario())
    bid_price = int(Decimal(seen["bid_price"]))
    final = f"{bid_price}.00 EUR"
    assert seen["start"] == "100.00 EUR"
    assert seen["bid_result"] == f"Your bid of {bid_price}.00 is in."
    for name in ("visitor", "bidder"):
        board = seen[name]
        # the clock fell tick by tick, 1.00 at a time, from 100 to the price taken
        assert board["clock"] == [clock_sentence(p, p + 1) for p in range(99, bid_price - 1, -1)]
        assert len(board["clock"]) >= 4
        # the price cell moved down with it (ticks published together may show as one)
        shown = [int(Decimal(text.split()[0])) for text in board["shown"]]
        falling = [p for i, p in enumerate(shown) if i == 0 or p != shown[i - 1]]
        assert falling == sorted(set(falling), reverse=True), board["shown"]
        assert falling[0] == 100 and falling[-1] == bid_price and len(falling) >= 4
        # and the bid ended the auction at once, on every board
        assert board["price"] == final
        assert board["leader"] == ann_name
        assert board["time_left"] == "ended"
        assert board["ended"] == f"{TITLE} has ended: {ann_name} won at {final}."
        assert board["bid_buttons"] == 0  # no more bids
    assert seen["took"] == f"{ann_name} took {TITLE} at the clock price, {final}."
    assert seen["visitor_bids"] == 0  # bids are shown to signed-in members only

    auction.refresh_from_db()
    assert auction.status == AuctionStatus.COMPLETED
    assert auction.winner_id == ann.pk
    assert auction.final_price == Decimal(bid_price)
    # the clock stopped with the sale: no tick is applied after it
    stopped_at = AuctionRuleState.objects.get(auction=auction).clock_tick
    time.sleep(4)
    assert AuctionRuleState.objects.get(auction=auction).clock_tick == stopped_at
    assert Auction.objects.get(pk=auction.pk).current_price == Decimal(bid_price)
