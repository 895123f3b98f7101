"""Input of the auction lifecycle endpoints (create, change, items, bids, cancel)."""

from __future__ import annotations

from typing import Any

from rest_framework import serializers

from ..models import AuctionType


class ItemInputSerializer(serializers.Serializer):
    title = serializers.CharField(max_length=255)
    description = serializers.CharField(required=False, allow_blank=True, default="")
    quantity = serializers.IntegerField(required=False, min_value=1, max_value=1_000_000,
                                        default=1)
    image_url = serializers.URLField(required=False, allow_null=True, max_length=500)


class AuctionWriteSerializer(serializers.Serializer):
    """An auction as the seller writes it. Money as strings (exact digits); type settings
    in ``config`` (see the README's auction rules: e.g. Dutch ``decrement``)."""

    title = serializers.CharField(max_length=255)
    description = serializers.CharField(required=False, allow_blank=True, default="")
    auction_type = serializers.ChoiceField(choices=AuctionType.choices)
    starts_at = serializers.DateTimeField()
    ends_at = serializers.DateTimeField()
    currency = serializers.CharField(required=False, max_length=3, min_length=3, default="USD")
    starting_price = serializers.CharField(required=False, max_length=32, default="0")
    reserve_price = serializers.CharField(required=False, max_length=32, allow_null=True,
                                          default=None)
    min_increment = serializers.CharField(required=False, max_length=32, default="1")
    bid_increment = serializers.CharField(required=False, max_length=32, allow_null=True,
                                          default=None)
    extension_seconds = serializers.IntegerField(required=False, min_value=0, max_value=86_400,
                                                 allow_null=True, default=None)
    config = serializers.DictField(required=False, default=dict)
    items = ItemInputSerializer(many=True, required=False, default=list)
    draft = serializers.BooleanField(required=False, default=False,
                                     help_text="Create as a draft only you and staff see")


class AuctionUpdateSerializer(AuctionWriteSerializer):
    """Changes to a draft or scheduled auction (every field optional)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        for name in ("items", "draft", "auction_type"):
            self.fields.pop(name)
        for field in self.fields.values():
            field.required = False


class CancelSerializer(serializers.Serializer):
    reason = serializers.CharField(required=False, allow_blank=True, max_length=500, default="")
