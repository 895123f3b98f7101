"""Auction test fixtures: users in their roles and auctions built through the service."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal
from typing import Any

import pytest
from django.utils import timezone

from auctions.tests.fixtures import (  # noqa: F401 - fixtures
    channel_providers,
    fast_password_hashing,
    smtp_server,
    template_catalogue,
)

DEFAULT_CONFIG: dict[str, dict[str, Any]] = {
    "dutch": {"decrement": "5.00", "tick_seconds": 10, "floor_price": "50.00"},
    "buy_it_now": {"buy_now_price": "250.00"},
}


@pytest.fixture
def seller(make_user):
    return make_user(email="seller@example.test", display_name="Sam Seller")


@pytest.fixture
def bidders(make_user):
    return [
        make_user(email=f"{name.lower()}@example.test", display_name=name)
        for name in ("Ann", "Ben", "Cat")
    ]


@pytest.fixture
def make_auction(seller):
    """An auction that is already running (started through the lifecycle service)."""
    from auctions.services import auction_create, auction_start

    def make(auction_type: str = "english", *, start: bool = True, **fields: Any):
        now = timezone.now()
        fields.setdefault("title", "Vintage Watch Collection")
        fields.setdefault("starts_at", now - timedelta(minutes=1))
        fields.setdefault("ends_at", now + timedelta(hours=1))
        fields.setdefault("starting_price", Decimal("100.00"))
        fields.setdefault("min_increment", Decimal("10.00"))
        fields.setdefault("items", [{"title": "1960 Omega Seamaster"}])
        fields.setdefault("config", DEFAULT_CONFIG.get(auction_type))
        auction = auction_create(seller=fields.pop("seller", seller), auction_type=auction_type, **fields)
        if start:
            assert auction_start(auction_id=auction.pk) is True
            auction.refresh_from_db()
        return auction

    return make
