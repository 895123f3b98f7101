"""Write paths for auctions, by job: ``lifecycle`` (create, start, ending notice,
close), ``bidding`` (bids and watching) and ``events`` (the notifications and
real-time events each of them tells)."""

from .bidding import auction_unwatch, auction_watch, bid_place
from .events import auction_topic, bidder_pseudonym
from .lifecycle import (
    CloseResult,
    auction_close,
    auction_create,
    auction_send_ending_notice,
    auction_start,
    auctions_close_due,
    auctions_send_ending_notices,
    auctions_start_due,
)

__all__ = [
    "CloseResult",
    "auction_close",
    "auction_create",
    "auction_send_ending_notice",
    "auction_start",
    "auction_topic",
    "auction_unwatch",
    "auction_watch",
    "auctions_close_due",
    "auctions_send_ending_notices",
    "auctions_start_due",
    "bid_place",
    "bidder_pseudonym",
]
