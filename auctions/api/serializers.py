from __future__ import annotations

from typing import Any

from rest_framework import serializers

from ..models import Auction, AuctionItem, Bid
from ..rules import supports_bidding
from ..selectors import reserve_visible, rules_view
from ..services import bidder_pseudonym


class AuctionItemSerializer(serializers.ModelSerializer):
    class Meta:
        model = AuctionItem
        fields = ["id", "auction", "title", "description", "quantity", "image_url", "metadata",
                  "created_at"]
        read_only_fields = fields


class AuctionSerializer(serializers.ModelSerializer):
    items = AuctionItemSerializer(many=True, read_only=True)
    bidding_supported = serializers.SerializerMethodField()
    is_watching = serializers.SerializerMethodField()
    winner = serializers.SerializerMethodField()
    you_won = serializers.SerializerMethodField()
    rules = serializers.SerializerMethodField()

    class Meta:
        model = Auction
        fields = [
            "id", "title", "description", "seller", "auction_type", "status", "currency",
            "starting_price", "reserve_price", "min_increment", "bid_increment",
            "extension_seconds", "current_price", "bid_count", "starts_at", "ends_at",
            "final_price", "winner", "you_won", "bidding_supported", "rules", "is_watching", "items",
            "created_at", "updated_at",
        ]
        read_only_fields = fields

    def to_representation(self, instance: Auction) -> dict[str, Any]:
        data = super().to_representation(instance)
        request = self.context.get("request")
        if not reserve_visible(instance, getattr(request, "user", None)):
            data["reserve_price"] = None  # the seller's secret (auctions.selectors)
        return data

    def get_rules(self, obj: Auction) -> dict[str, Any]:
        """The type's settings, its clock tick, the commitment and (after the end) the
        revealed secret."""
        return rules_view(obj)

    def get_bidding_supported(self, obj: Auction) -> bool:
        return supports_bidding(obj.auction_type)

    def get_is_watching(self, obj: Auction) -> bool:
        return bool(getattr(obj, "is_watching", False))

    def get_winner(self, obj: Auction) -> str | None:
        # The pseudonym the auction's events used; never the winner's account.
        return bidder_pseudonym(obj.pk, obj.winner_id) if obj.winner_id else None

    def get_you_won(self, obj: Auction) -> bool:
        request = self.context.get("request")
        user = getattr(request, "user", None)
        return bool(obj.winner_id and user is not None and obj.winner_id == user.pk)


class BidCreateSerializer(serializers.Serializer):
    # A string keeps the client's exact digits; the rules module validates it as money.
    amount = serializers.CharField(max_length=32)
    item = serializers.UUIDField(required=False, allow_null=True)
    max_amount = serializers.CharField(
        max_length=32, required=False, allow_null=True,
        help_text="English only: the most your proxy may bid for you (kept private)",
    )


class OpenBidSerializer(serializers.ModelSerializer):
    """A bid as others see it on an open sheet: a pseudonym, never the account."""

    bidder = serializers.SerializerMethodField()

    class Meta:
        model = Bid
        fields = ["id", "bidder", "amount", "status", "placed_at", "by_proxy"]
        read_only_fields = fields

    def get_bidder(self, obj: Bid) -> str:
        return bidder_pseudonym(obj.auction_id, obj.bidder_id)


class BidSerializer(serializers.ModelSerializer):
    current_price = serializers.SerializerMethodField()
    ends_at = serializers.SerializerMethodField()

    class Meta:
        model = Bid
        fields = ["id", "auction", "item", "amount", "status", "placed_at", "current_price",
                  "ends_at"]
        read_only_fields = fields

    def get_current_price(self, obj: Bid) -> Any:
        price = obj.auction.current_price
        return None if price is None else f"{price:.2f}"

    def get_ends_at(self, obj: Bid) -> str:
        return obj.auction.ends_at.isoformat()
