"""FilterSets for auctions and their items (used by the selectors and the API)."""

from __future__ import annotations

import django_filters

from .models import Auction, AuctionItem, AuctionStatus, AuctionType


class AuctionFilter(django_filters.FilterSet):
    status = django_filters.MultipleChoiceFilter(choices=AuctionStatus.choices)
    type = django_filters.MultipleChoiceFilter(field_name="auction_type", choices=AuctionType.choices)
    seller = django_filters.UUIDFilter(field_name="seller_id")
    ends_before = django_filters.IsoDateTimeFilter(field_name="ends_at", lookup_expr="lte")
    ends_after = django_filters.IsoDateTimeFilter(field_name="ends_at", lookup_expr="gte")

    class Meta:
        model = Auction
        fields = ["status", "type", "seller"]


class AuctionItemFilter(django_filters.FilterSet):
    auction = django_filters.UUIDFilter(field_name="auction_id")

    class Meta:
        model = AuctionItem
        fields = ["auction"]
