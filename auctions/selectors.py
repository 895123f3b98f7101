"""Read paths for auctions."""

from __future__ import annotations

from typing import Any

from django.db.models import Exists, OuterRef, Q, QuerySet

from users.models import User

from .filters import AuctionFilter, AuctionItemFilter
from .models import (
    Auction,
    AuctionItem,
    AuctionRuleState,
    AuctionStatus,
    AuctionWatcher,
    Bid,
    BidStatus,
)
from .rules import rules_for


def _is_staff(viewer: Any) -> bool:
    return bool(viewer is not None and viewer.is_authenticated and viewer.is_staff)


def auction_visible_q(viewer: Any, *, prefix: str = "") -> Q:
    """Which auctions ``viewer`` may see: every one but drafts; a draft only to its seller
    and staff (a draft is the seller's unpublished work)."""
    if _is_staff(viewer):
        return Q()
    visible = ~Q(**{f"{prefix}status": AuctionStatus.DRAFT})
    if viewer is not None and viewer.is_authenticated:
        visible |= Q(**{f"{prefix}seller_id": viewer.pk})
    return visible


def auction_visible(auction: Auction, viewer: Any) -> bool:
    if auction.status != AuctionStatus.DRAFT or _is_staff(viewer):
        return True
    return bool(viewer is not None and viewer.is_authenticated and auction.seller_id == viewer.pk)


def reserve_visible(auction: Auction, viewer: Any) -> bool:
    """The reserve price is the seller's secret: shown to the seller and staff only, during
    the auction and after it (the close event tells everyone ``reserve_met``, never the
    amount)."""
    if _is_staff(viewer):
        return True
    return bool(viewer is not None and viewer.is_authenticated and auction.seller_id == viewer.pk)


def auction_list(*, filters: dict[str, Any] | None = None, viewer: User | None = None) -> QuerySet[Auction]:
    """The auctions ``viewer`` may see (``auction_visible_q``)."""
    qs = (
        Auction.objects.filter(auction_visible_q(viewer))
        .select_related("seller", "rule_state")
        .prefetch_related("items")
    )
    if viewer is not None and viewer.is_authenticated:
        qs = qs.annotate(
            is_watching=Exists(AuctionWatcher.objects.filter(auction=OuterRef("pk"), user=viewer))
        )
    filtered: QuerySet[Auction] = AuctionFilter(filters or {}, queryset=qs).qs
    return filtered


def auction_item_list(
    *, filters: dict[str, Any] | None = None, viewer: User | None = None
) -> QuerySet[AuctionItem]:
    """Items of the auctions ``viewer`` may see (a draft's items are as private as it)."""
    qs = AuctionItem.objects.filter(auction_visible_q(viewer, prefix="auction__"))
    filtered: QuerySet[AuctionItem] = AuctionItemFilter(filters or {}, queryset=qs).qs
    return filtered


def bid_list_for_bidder(*, auction: Auction, bidder: User) -> QuerySet[Bid]:
    """A bidder's own bids (sealed ones included: they are theirs)."""
    return Bid.objects.filter(auction=auction, bidder=bidder).order_by("-placed_at")


def leading_bid(*, auction: Auction) -> Bid | None:
    return auction.bids.filter(status__in=[BidStatus.LEADING, BidStatus.WON]).first()


def rules_view(auction: Auction) -> dict[str, Any]:
    """What anyone may know of an auction's rule state: its settings, the clock tick and
    next due time, the commitment, and the secret once revealed (never before)."""
    try:
        state = auction.rule_state
    except AuctionRuleState.DoesNotExist:
        return {"config": {}}
    view: dict[str, Any] = {"config": state.config, "clock_tick": state.clock_tick}
    if state.clock_due_at is not None and auction.auction_type != "candle":
        view["next_tick_at"] = state.clock_due_at.isoformat()
    if state.commitment:
        view["commitment"] = state.commitment
    if state.revealed_at is not None:
        view["secret"] = state.secret
    return view


def bid_list_visible(*, auction: Auction, viewer: User) -> QuerySet[Bid]:
    """The bids ``viewer`` may see on ``auction``: all of them for the seller, staff and,
    on open (not sealed) auctions, any signed-in attendee (a silent auction's sheet); a
    sealed auction's bids only to their own bidder until it ends."""
    everyone = auction.bids.order_by("-placed_at", "-amount")
    if _is_staff(viewer) or auction.seller_id == viewer.pk:
        return everyone
    if rules_for(auction.auction_type).sealed and auction.status != AuctionStatus.COMPLETED:
        return everyone.filter(bidder=viewer)
    return everyone
