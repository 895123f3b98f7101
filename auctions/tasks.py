"""Celery beat tasks running the auction lifecycle. Thin: each calls a service whose
transitions are claimed with conditional UPDATEs / SKIP LOCKED, so overlapping runs
are harmless."""

from __future__ import annotations

from celery import shared_task

from . import services


@shared_task(name="auctions.start_auctions", ignore_result=True)
def start_auctions() -> int:
    """Start scheduled auctions whose start time has come."""
    return services.auctions_start_due()


@shared_task(name="auctions.send_auction_ending_notices", ignore_result=True)
def send_auction_ending_notices() -> int:
    """Warn watchers and bidders of auctions ending within NP_AUCTION_ENDING_NOTICE_SECONDS."""
    return services.auctions_send_ending_notices()


@shared_task(name="auctions.close_auctions", ignore_result=True)
def close_auctions() -> int:
    """Close ended auctions and pick their winners."""
    return services.auctions_close_due()


@shared_task(name="auctions.run_clocks", ignore_result=True)
def run_clocks() -> int:
    """Apply due Dutch/Japanese price ticks and put out due candles (clock_due_at)."""
    return services.auctions_run_clocks()
