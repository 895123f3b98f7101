"""Write paths for auctions, by job: ``manage`` (create, change, schedule, cancel, close
now — the seller's and staff's), ``lifecycle`` (start, ending notice, close when due),
``closing`` (settle and announce), ``bidding`` (bids and watching), ``entries``
(Japanese entries and drop-outs), ``clocks`` (price ticks and candle ends from the
schedule), ``events``/``bid_events``/``chain`` (the notifications and real-time events
each of them tells)."""

from .bidding import auction_unwatch, auction_watch, bid_place
from .clocks import auction_clock_run, auctions_run_clocks
from .entries import auction_drop_out, auction_enter
from .events import auction_topic, auction_url, bidder_pseudonym
from .lifecycle import (
    CloseResult,
    auction_close,
    auction_send_ending_notice,
    auction_start,
    auctions_close_due,
    auctions_send_ending_notices,
    auctions_start_due,
)
from .manage import (
    auction_cancel,
    auction_close_now,
    auction_create,
    auction_item_add,
    auction_schedule,
    auction_update,
)

__all__ = [
    "CloseResult",
    "auction_cancel",
    "auction_clock_run",
    "auction_close",
    "auction_close_now",
    "auction_create",
    "auction_drop_out",
    "auction_enter",
    "auction_item_add",
    "auction_schedule",
    "auction_send_ending_notice",
    "auction_start",
    "auction_topic",
    "auction_unwatch",
    "auction_update",
    "auction_url",
    "auction_watch",
    "auctions_close_due",
    "auctions_run_clocks",
    "auctions_send_ending_notices",
    "auctions_start_due",
    "bid_place",
    "bidder_pseudonym",
]
