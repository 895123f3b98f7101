"""The demo page's auction board: one row per running or upcoming auction, as the page
first shows it (the live events move it from there)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any

from auctions.models import Auction, AuctionStatus, Bid, BidStatus
from auctions.services import bidder_pseudonym


@dataclass(frozen=True)
class BoardRow:
    id: str
    title: str
    auction_type: str
    type_label: str
    status: str
    price: Decimal | None
    currency: str
    bid_count: int
    leader: str
    starts_at: datetime
    ends_at: datetime


def board_rows(limit: int = 20) -> list[BoardRow]:
    """Active and scheduled public auctions, the soonest ending first, with their leader
    (the pseudonym of the leading bid's bidder: never a name)."""
    auctions = list(
        Auction.objects.filter(status__in=[AuctionStatus.ACTIVE, AuctionStatus.SCHEDULED])
        .order_by("ends_at")[:limit]
    )
    leading: dict[Any, Any] = {}
    for bid in Bid.objects.filter(
        auction__in=auctions, status=BidStatus.LEADING
    ).order_by("auction_id", "-placed_at"):
        leading.setdefault(bid.auction_id, bid.bidder_id)
    return [
        BoardRow(
            id=str(a.pk),
            title=a.title,
            auction_type=a.auction_type,
            type_label=a.get_auction_type_display(),
            status=a.status,
            price=a.current_price if a.current_price is not None else a.starting_price,
            currency=a.currency,
            bid_count=a.bid_count,
            leader=(bidder_pseudonym(a.pk, leading[a.pk]) if a.pk in leading else ""),
            starts_at=a.starts_at,
            ends_at=a.ends_at,
        )
        for a in auctions
    ]
