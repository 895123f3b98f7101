"""What a bid tells: the notifications to the parties and the bid's real-time events.

The ``bid_placed`` event (one per bid, correlation ``bid:<id>``) is the cause of what
follows from it: an ``auction_price_changed`` event when the open price moved and a
private ``outbid`` event to each bidder it beat; both list it in ``causal_events``.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from realtime.models import RealTimeEvent

from ..models import Auction, AuctionType, Bid
from ..rules import BidOutcome, BidRules
from .chain import correlation, impacts, publish_chained
from .events import amount_text, base_context, bidder_pseudonym, money, notify_user


def emit_bid_events(
    auction: Auction,
    bid: Bid,
    outcome: BidOutcome,
    previous_price: Decimal | None,
    *,
    rules: BidRules,
    proxy_bid: Bid | None = None,
) -> RealTimeEvent:
    """Notify the parties of ``bid`` and publish its events; returns the bid event."""
    bidder = bid.bidder
    pseudonym = bidder_pseudonym(auction.pk, bidder.pk)
    context = {**base_context(auction, bid.item), "bidder": pseudonym}
    key = f"bid:{bid.pk}"
    links: dict[str, Any] = {"auction": auction, "bid": bid, "item": bid.item}
    sent: list[str | None] = []
    own = {**context, "amount": amount_text(bid.amount, auction.currency)}

    # To the bidder: their own amount is theirs to see, sealed or not. The seed's
    # "Your bid extended … by Ns" is the penny text: other types confirm the bid.
    penny = auction.auction_type == AuctionType.PENNY
    sent.append(notify_user(
        bidder, template_key="bid_placed" if penny else "bid_confirmed", context=own,
        channels=["in_app"], category="bid", priority="normal",
        idempotency_key=f"{key}:bid_placed", **links,
    ))
    beaten: list[tuple[Bid | Any, str]] = []
    if not rules.sealed:
        # Open auctions: the seller hears of every bid, the displaced leader is outbid.
        sent.append(notify_user(
            auction.seller, template_key="new_bid", context=own, channels=["in_app", "push"],
            category="bid", priority="normal", idempotency_key=f"{key}:new_bid", **links,
        ))
        # a reverse auction's bids go down: a beaten seller was underbid
        beaten_template = "underbid" if auction.auction_type == AuctionType.REVERSE else "outbid"
        displaced = outcome.displaced
        if displaced is not None and displaced.bidder_id != bidder.pk:
            template = "proxy_bid_exceeded" if outcome.proxy_exceeded else beaten_template
            shown = displaced.max_amount if outcome.proxy_exceeded else displaced.amount
            sent.append(_tell_outbid(auction, displaced.bidder, template, shown, context, key,
                                     links))
            beaten.append((displaced, template))
        if proxy_bid is not None:
            # the leader's proxy answered at once: the new bid is beaten already
            sent.append(_tell_outbid(auction, bidder, "outbid", bid.amount, context, key, links))
            beaten.append((bid, "outbid"))

    data: dict[str, Any] = {
        "auction_id": str(auction.pk),
        "auction_title": auction.title,
        "auction_type": auction.auction_type,
        "bidder": pseudonym,
        "bid_count": auction.bid_count,
        "ends_at": auction.ends_at.isoformat(),
        "currency": auction.currency,
    }
    if rules.sealed:
        data["sealed"] = True
    else:
        data.update(
            bid_amount=money(bid.amount),
            current_price=money(auction.current_price),
            previous_price=money(previous_price),
            leader=bidder_pseudonym(auction.pk, proxy_bid.bidder_id) if proxy_bid else pseudonym,
        )
    if outcome.extend_by:
        data["extended_by_seconds"] = int(outcome.extend_by.total_seconds())
    price_moved = not rules.sealed and previous_price != auction.current_price
    corr = correlation("bid", bid.pk)
    bid_event = publish_chained(
        auction, "bid_placed", category="bid", data=data, visibility="authenticated",
        priority="high", correlation_id=corr, bid=bid, item=bid.item,
        expected=impacts(
            [t for t in sent if t],
            price=(money(previous_price), money(auction.current_price)) if price_moved else None,
            extends_by_seconds=int(outcome.extend_by.total_seconds()) or None,
            ends_auction=outcome.close_now or None,
        ),
    )
    if price_moved:
        publish_price_changed(auction, previous_price, cause=bid_event, correlation_id=corr,
                              reason="bid")
    for beaten_bid, template in beaten:
        publish_chained(
            auction, "outbid", category="bid", visibility="private", user=beaten_bid.bidder_id,
            data={"auction_id": str(auction.pk), "auction_title": auction.title,
                  "auction_type": auction.auction_type, "currency": auction.currency,
                  "your_amount": money(beaten_bid.amount),
                  "current_price": money(auction.current_price), "kind": template},
            correlation_id=corr, causes=[bid_event], priority="high",
            expected=impacts([template]),
        )
    return bid_event


def _tell_outbid(
    auction: Auction, user: Any, template: str, amount: Decimal | None,
    context: dict[str, Any], key: str, links: dict[str, Any],
) -> str | None:
    # a plain outbid joins the per-auction ``outbid`` digest workflow (NP_AUCTION_WORKFLOWS)
    return notify_user(
        user, template_key=template,
        context={**context, "amount": amount_text(amount, auction.currency)},
        channels=["in_app", "push", "email"], category="bid", priority="high",
        idempotency_key=f"{key}:outbid:{user.pk}",
        workflow="outbid" if template == "outbid" else None, **links,
    )


def publish_price_changed(
    auction: Auction,
    previous_price: Decimal | None,
    *,
    cause: RealTimeEvent | None,
    correlation_id: str,
    reason: str,
    tick: int | None = None,
    notified: list[str] | None = None,
) -> RealTimeEvent:
    """``auction_price_changed``: the latest price, whole. Each event carries the full
    state (price, tick), so the per-connection ``latest``-only throttle can drop all but
    the newest for the auction without losing anything."""
    data: dict[str, Any] = {
        "auction_id": str(auction.pk),
        "auction_title": auction.title,
        "auction_type": auction.auction_type,
        "price": money(auction.current_price),
        "previous_price": money(previous_price),
        "currency": auction.currency,
        "reason": reason,
        "bid_count": auction.bid_count,
        "ends_at": auction.ends_at.isoformat(),
    }
    if tick is not None:
        data["tick"] = tick
    return publish_chained(
        auction, "auction_price_changed", category="auction", data=data,
        correlation_id=correlation_id, causes=[cause] if cause is not None else [],
        expected=impacts(notified or [], price=(money(previous_price),
                                                money(auction.current_price))),
        tags=[reason],
    )
