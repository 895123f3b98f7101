"""The demo page (``/realtime/demo/``): live auction events through the websocket client
(``realtime/client.js``). It lives in the demo app because it lists auctions, which
``realtime`` must not import."""

from __future__ import annotations

from django.http import HttpRequest, HttpResponse
from django.shortcuts import render

from auctions.models import Auction, AuctionStatus
from realtime import groups


def demo(request: HttpRequest) -> HttpResponse:
    """Subscribes to the active and scheduled auctions' topics, ``system`` and any
    ``?topics=a,b`` given (invalid names are dropped)."""
    auctions = list(
        Auction.objects.filter(status__in=[AuctionStatus.ACTIVE, AuctionStatus.SCHEDULED])
        .order_by("ends_at")
        .only("id", "title", "status", "current_price", "currency", "ends_at")[:20]
    )
    extra = [t for t in request.GET.get("topics", "").split(",") if groups.is_valid_topic(t)]
    topics = list(
        dict.fromkeys(
            [groups.auction_topic(a.pk) for a in auctions] + ["system", "auctions", *extra]
        )
    )
    return render(request, "demo/realtime.html", {"auctions": auctions, "topics": topics})
