"""Bidding rules per auction type: which bids are acceptable, what a bid changes, and
who wins at what price — one ``BidRules`` class per type, one module per family.

Pure functions over an auction's state: no database access here, so every rule is
tested without fixtures and the service (``auctions.services``) owns locking and
writes. Types without rules are stored and listed but refuse bids with
``BID_RULES_UNAVAILABLE``.
"""

from __future__ import annotations

from .. import errors
from ..errors import AuctionError
from .base import CENT, MAX_AMOUNT, BidOutcome, BidRules, Settlement, parse_amount
from .english import EnglishRules
from .penny import PennyRules
from .sealed import SealedFirstPriceRules, VickreyRules

RULES: dict[str, BidRules] = {
    rules.auction_type: rules
    for rules in (EnglishRules(), PennyRules(), SealedFirstPriceRules(), VickreyRules())
}


def supports_bidding(auction_type: str) -> bool:
    return auction_type in RULES


def rules_for(auction_type: str) -> BidRules:
    try:
        return RULES[auction_type]
    except KeyError:
        raise AuctionError(
            errors.BID_RULES_UNAVAILABLE,
            f"bidding on {auction_type} auctions is not supported yet",
            field="auction_type",
        ) from None


__all__ = [
    "CENT",
    "MAX_AMOUNT",
    "RULES",
    "BidOutcome",
    "BidRules",
    "Settlement",
    "parse_amount",
    "rules_for",
    "supports_bidding",
]
