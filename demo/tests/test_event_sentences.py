"""Every event the auctions services publish, for all 13 types, reads as a sentence on
the demo page: the events are made by the real services (bids, clocks, entries and
drop-outs, starts, schedules, cancels, ending notices, results) and worded by the
page's own ``demo/static/demo/sentences.js``, run in Node."""

from __future__ import annotations

import json
import re
import subprocess
from datetime import timedelta
from pathlib import Path

import playwright
import pytest
from django.utils import timezone

from auctions.models import AuctionType
from auctions.services import (
    auction_cancel,
    auction_clock_run,
    auction_close_now,
    auction_create,
    auction_drop_out,
    auction_enter,
    auction_schedule,
    auction_send_ending_notice,
    auction_start,
    bid_place,
)
from auctions.tests.conftest import bidders, make_auction, seller  # noqa: F401 - fixtures
from realtime.models import RealTimeEvent

pytestmark = pytest.mark.django_db

SENTENCES_JS = Path(__file__).resolve().parents[1] / "static" / "demo" / "sentences.js"
NODE = """
const fs = require("fs");
global.window = {};
eval(fs.readFileSync(process.argv[1], "utf8"));
const events = JSON.parse(fs.readFileSync(0, "utf8"));
process.stdout.write(JSON.stringify(events.map(e => window.NotifyDemoSentences.describe(e, {}))));
"""
# type → the bids of Ann, Ben (amounts), on a running auction at 100 USD, +10
BIDS = {
    "english": ["110", "120"],
    "sealed_first_price": ["120", "130"],
    "vickrey": ["120", "130"],
    "penny": ["110", "120"],
    "reverse": ["90", "80"],
    "all_pay": ["110", "120"],
    "top_up": ["110", "120"],
    "candle": ["110", "120"],
    "silent": ["110", "120"],
    "chinese": ["200", "100"],
    "buy_it_now": ["250"],
}


# Playwright's own Node (the browser tests' dependency): a fresh machine needs no other
NODE_BINARY = Path(playwright.__file__).parent / "driver" / "node"


def describe(events: list[dict]) -> list[str]:
    done = subprocess.run(
        [str(NODE_BINARY), "-e", NODE, str(SENTENCES_JS)], input=json.dumps(events),
        capture_output=True, text=True, check=True, timeout=30,
    )
    return json.loads(done.stdout)


def test_every_auction_event_of_every_type_reads_as_a_sentence(
    make_auction, bidders, seller  # noqa: F811
):
    ann, ben, cat = bidders
    for auction_type, amounts in BIDS.items():
        auction = make_auction(auction_type, title=f"Lot {auction_type.replace('_', ' ')}")
        for who, amount in zip((ann, ben), amounts, strict=False):
            bid_place(auction_id=auction.pk, bidder=who, amount=amount)
        auction.refresh_from_db()
        if auction.status == "active":
            auction_close_now(auction_id=auction.pk, user=seller)
    # Dutch: two ticks of the clock, then a bid at the clock price
    dutch = make_auction("dutch", title="Lot dutch", starts_at=timezone.now())
    auction_clock_run(auction_id=dutch.pk, now=timezone.now() + timedelta(seconds=21))
    bid_place(auction_id=dutch.pk, bidder=ann, amount="90.00")
    # Japanese: three enter, the clock rises, two drop out
    japanese = make_auction("japanese", title="Lot japanese", start=False,
                            starts_at=timezone.now() + timedelta(seconds=1),
                            config={"tick_seconds": 10, "increment": "10.00"})
    for who in bidders:
        auction_enter(auction_id=japanese.pk, bidder=who)
    japanese.starts_at = timezone.now() - timedelta(seconds=25)
    japanese.save(update_fields=["starts_at"])
    assert auction_start(auction_id=japanese.pk)
    auction_clock_run(auction_id=japanese.pk)
    auction_drop_out(auction_id=japanese.pk, bidder=ben)
    auction_drop_out(auction_id=japanese.pk, bidder=cat)
    # a draft scheduled, then cancelled; a running one warned of its end
    draft = auction_create(
        seller=seller, auction_type="english", title="Lot later",
        starts_at=timezone.now() + timedelta(hours=1), ends_at=timezone.now() + timedelta(hours=2),
        starting_price="100.00", min_increment="10.00", items=[{"title": "Lot later"}], draft=True,
    )
    auction_schedule(auction_id=draft.pk, user=seller)
    auction_cancel(auction_id=draft.pk, user=seller, reason="the lot was withdrawn")
    ending = make_auction("english", title="Lot ending", ends_at=timezone.now() + timedelta(minutes=4))
    assert auction_send_ending_notice(auction_id=ending.pk)

    rows = list(RealTimeEvent.objects.order_by("sequence_number"))
    events = [{"event_type": e.event_type, "data": e.event_data} for e in rows]
    sentences = describe(events)
    by_type: dict[str, list[str]] = {}
    for event, sentence in zip(events, sentences, strict=True):
        by_type.setdefault(event["event_type"], []).append(sentence)

    # every type took part, every event type the services publish has its own wording
    types = {e["data"].get("auction_type") for e in events} - {None}
    assert types == set(AuctionType.values)
    assert set(by_type) == {
        "auction_status_changed", "bid_placed", "outbid", "auction_price_changed",
        "auction_entered", "auction_dropped_out", "auction_ending",
    }
    for sentence in sentences:
        assert sentence.endswith("."), sentence
        for bad in ("undefined", "null", "NaN", "[object", "{", "an auction", "_"):
            assert bad not in sentence, sentence
    # fallback wording is "<Type humanized> on <title> (...)": none of these needs it
    assert not [s for s in sentences if s.startswith(("Bid placed", "Auction ", "Outbid on"))]

    def one(event_type: str, needle: str) -> str:
        found = [s for s in by_type[event_type] if needle in s]
        assert found, (needle, by_type[event_type])
        return found[0]

    assert one("auction_price_changed", "falls to 90") == (
        "The Dutch clock on Lot dutch falls to 90.00 USD (was 95.00 USD)."
    )
    assert one("auction_price_changed", "rises to 120") == (
        "The clock on Lot japanese rises to 120.00 USD (was 110.00 USD)."
    )
    assert one("bid_placed", "Lot dutch").endswith(
        " took Lot dutch at the clock price, 90.00 USD."
    )
    assert "placed a sealed bid on Lot vickrey." in one("bid_placed", "Lot vickrey")
    assert " offered to supply Lot reverse for 80.00 USD." in one("bid_placed", "80.00")
    assert "bought entries worth 200.00 USD in Lot chinese" in one("bid_placed", "Lot chinese")
    assert one("auction_entered", "3 entrants").endswith(" entered Lot japanese (3 entrants).")
    assert one("auction_dropped_out", "1 still in").endswith(
        " dropped out of Lot japanese at 120.00 USD; 1 still in."
    )
    assert one("auction_status_changed", "Lot dutch has started") == (
        "Lot dutch has started: the clock starts at 100.00 USD and falls every 10 s."
    )
    assert "the random value is committed: sha256 " in one(
        "auction_status_changed", "Lot candle has started")
    assert one("auction_status_changed", "Lot later is scheduled").startswith(
        "Lot later is scheduled to start at ")
    assert one("auction_status_changed", "cancelled") == (
        "Lot later was cancelled (the lot was withdrawn)."
    )
    assert " won at 90.00 USD." in one("auction_status_changed", "Lot dutch has ended")
    assert re.search(r"won at 120\.00 USD; under the rules Bidder \w+ pays 110\.00 USD\.$",
                     one("auction_status_changed", "Lot all pay has ended"))
    assert "checked against the commitment" in one("auction_status_changed", "Lot chinese has ended")
    assert one("auction_ending", "Lot ending").startswith("Lot ending ends in ")
    assert one("outbid", "Lot english").startswith("You were outbid on Lot english")
    assert one("outbid", "Lot reverse").startswith("You were underbid on Lot reverse")
