"""Read paths for auctions."""

from __future__ import annotations

from typing import Any

from django.db.models import Exists, OuterRef, QuerySet

from users.models import User

from .filters import AuctionFilter, AuctionItemFilter
from .models import Auction, AuctionItem, AuctionWatcher, Bid, BidStatus


def auction_list(*, filters: dict[str, Any] | None = None, viewer: User | None = None) -> QuerySet[Auction]:
    qs = Auction.objects.select_related("seller").prefetch_related("items")
    if viewer is not None and viewer.is_authenticated:
        qs = qs.annotate(
            is_watching=Exists(AuctionWatcher.objects.filter(auction=OuterRef("pk"), user=viewer))
        )
    return AuctionFilter(filters or {}, queryset=qs).qs


def auction_item_list(*, filters: dict[str, Any] | None = None) -> QuerySet[AuctionItem]:
    return AuctionItemFilter(filters or {}, queryset=AuctionItem.objects.all()).qs


def bid_list_for_bidder(*, auction: Auction, bidder: User) -> QuerySet[Bid]:
    """A bidder's own bids (sealed ones included: they are theirs)."""
    return Bid.objects.filter(auction=auction, bidder=bidder).order_by("-placed_at")


def leading_bid(*, auction: Auction) -> Bid | None:
    return auction.bids.filter(status__in=[BidStatus.LEADING, BidStatus.WON]).first()
