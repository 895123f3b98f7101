"""One running auction of each of the 13 types, with its type's settings and clock, so
the demo shows every rule (``seed_auction_types``; called by ``seed.seed_demo``).

Written straight through the ORM like the rest of the demo data: the rule state is
what ``auctions.services`` would have written when the auction started (the clock's
current tick and next due time, a committed secret for candle and Chinese auctions),
so the beat takes the clocks from there.
"""

from __future__ import annotations

import secrets
from datetime import timedelta
from decimal import Decimal
from typing import Any

from auctions.models import Auction, AuctionItem, AuctionRuleState, Bid, BidStatus
from auctions.rules import ClockRules, candle_end, commitment_of, rules_for, tick_at

from .base import Seeder, seed_uuid

D = Decimal

# type → (title, item, starting price, settings, bids as (user, amount, status))
TYPE_DEMOS: dict[str, tuple[str, str, str, dict[str, Any], list[tuple[str, str, str]]]] = {
    "english": ("Eames lounge chair", "Eames 670/671, 1970s", "800", {"anti_sniping_seconds": 120},
                [("alice", "850", "outbid"), ("bob", "900", "leading")]),
    "dutch": ("Fresh tulips, 200 stems", "200 mixed tulips", "300",
              {"decrement": "5.00", "tick_seconds": 10, "floor_price": "100.00"}, []),
    "japanese": ("Racing bicycle", "Colnago Master, 1989", "400",
                 {"tick_seconds": 15, "increment": "10.00"},
                 [("alice", "400", "active"), ("carol", "400", "active"), ("erin", "400", "active")]),
    "sealed_first_price": ("Harbour view painting", "Oil on canvas, 1921", "1000", {},
                           [("bob", "1200", "sealed")]),
    "vickrey": ("Mid-century sideboard", "Teak sideboard", "500", {},
                [("carol", "650", "sealed"), ("dave", "700", "sealed")]),
    "penny": ("Noise-cancelling headphones", "Headphones, boxed", "0", {"bid_fee": "0.50"},
              [("dave", "0.01", "outbid"), ("erin", "0.02", "leading")]),
    "reverse": ("Office cleaning contract (procurement)", "12 months, 3 floors", "5000", {},
                [("bob", "4800", "outbid"), ("carol", "4650", "leading")]),
    "all_pay": ("Charity dinner with a chef", "Dinner for four", "50", {},
                [("alice", "60", "outbid"), ("dave", "75", "leading")]),
    "candle": ("Antique ship's bell", "Bronze bell, 1890", "150", {"window_seconds": 1800},
               [("erin", "160", "leading")]),
    "silent": ("Gala silent auction: spa weekend", "Two nights, two people", "200", {},
               [("carol", "220", "outbid"), ("alice", "240", "leading")]),
    "chinese": ("Raffle: signed football", "Match ball, signed", "0", {"entry_price": "2.00"},
                [("bob", "10.00", "entry"), ("dave", "4.00", "entry")]),
    "top_up": ("Vintage typewriter", "Olivetti Lettera 22", "60", {},
               [("erin", "65", "outbid"), ("bob", "72", "leading")]),
    "buy_it_now": ("Espresso machine (buy it now)", "Lever espresso machine", "350",
                   {"buy_now_price": "350.00", "bidding": True}, []),
}


def type_demo_id(auction_type: str) -> Any:
    return seed_uuid(f"auction-type:{auction_type}")


def seed_auction_types(s: Seeder) -> None:
    """One active auction per type (found, not re-created, on a second run)."""
    seller = s.users["sam"]
    for auction_type, (title, item_title, start, config, bids) in TYPE_DEMOS.items():
        starts_at = s.ago(minutes=3)
        ends_at = s.ahead(hours=2)
        visible = [D(a) for _, a, st in bids if st in ("leading", "outbid")]
        auction = s.get(
            Auction,
            id=type_demo_id(auction_type),
            defaults={
                "title": title, "seller": seller, "auction_type": auction_type,
                "status": "active", "starting_price": D(start), "currency": "USD",
                "min_increment": D("0.01") if auction_type == "penny" else D("5"),
                "bid_increment": D("0.01") if auction_type == "penny" else None,
                "extension_seconds": 15 if auction_type == "penny" else None,
                "current_price": (
                    (min(visible) if auction_type == "reverse" else max(visible)) if visible
                    else None),
                "bid_count": len(bids), "starts_at": starts_at, "ends_at": ends_at,
                "description": f"Demo of the {auction_type.replace('_', ' ')} rules.",
            },
        )
        s.auctions[f"type:{auction_type}"] = auction
        item = s.get(AuctionItem, id=seed_uuid(f"item-type:{auction_type}"),
                     defaults={"auction": auction, "title": item_title})
        for n, (bidder, amount, status) in enumerate(bids):
            s.get(Bid, id=seed_uuid(f"bid-type:{auction_type}:{n}"), defaults={
                "auction": auction, "item": item, "bidder": s.users[bidder],
                "amount": D(amount), "status": status,
                "placed_at": auction.starts_at + timedelta(seconds=20 * (n + 1)),
            })
        if not AuctionRuleState.objects.filter(auction=auction).exists():
            _state(s, auction, config)
        else:
            s.count(AuctionRuleState, created=False)
    if "type:chinese" in s.auctions:
        chinese = s.auctions["type:chinese"]
        takings = sum((b.amount for b in chinese.bids.filter(status=BidStatus.ENTRY)), D("0"))
        Auction.objects.filter(pk=chinese.pk, current_price__isnull=True).update(
            current_price=takings)


def _state(s: Seeder, auction: Auction, config: dict[str, Any]) -> None:
    rules = rules_for(auction.auction_type)
    state = AuctionRuleState(auction=auction, config=rules.validate_config(auction, config))
    if rules.committed:
        state.secret = secrets.token_hex(32)
        state.commitment = commitment_of(state.secret)
    if isinstance(rules, ClockRules):
        tick = tick_at(auction, state.config, s.now)
        state.clock_tick = tick
        state.clock_due_at = rules.due_at(auction, state.config, tick)
        Auction.objects.filter(pk=auction.pk).update(
            current_price=rules.price_at(auction, state.config, tick))
    elif auction.auction_type == "candle":
        state.clock_due_at = candle_end(auction, int(state.config["window_seconds"]), state.secret)
    state.save()
    s.count(AuctionRuleState, created=True)
