"""Auctions API: browse auctions and items, bid, watch."""

from __future__ import annotations

from typing import Any

from drf_spectacular.utils import extend_schema
from rest_framework import mixins, status, viewsets
from rest_framework.decorators import action
from rest_framework.request import Request
from rest_framework.response import Response

from users.authentication import request_user

from .. import selectors, services
from ..filters import AuctionFilter, AuctionItemFilter
from .serializers import (
    AuctionItemSerializer,
    AuctionSerializer,
    BidCreateSerializer,
    BidSerializer,
)


class AuctionViewSet(viewsets.ReadOnlyModelViewSet):
    """Auctions, filterable by ``status`` and ``type`` (repeatable)."""

    serializer_class = AuctionSerializer
    filterset_class = AuctionFilter
    ordering_fields = ["starts_at", "ends_at", "created_at", "current_price"]

    def get_queryset(self) -> Any:
        return selectors.auction_list(viewer=request_user(self.request))

    @extend_schema(request=BidCreateSerializer, responses={201: BidSerializer})
    @action(detail=True, methods=["post"], url_path="bids")
    def bids(self, request: Request, pk: str | None = None) -> Response:
        serializer = BidCreateSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        bid = services.bid_place(
            auction_id=pk,
            bidder=request_user(request),
            amount=serializer.validated_data["amount"],
            item=serializer.validated_data.get("item"),
        )
        return Response(BidSerializer(bid).data, status=status.HTTP_201_CREATED)

    @extend_schema(request=None, responses={200: None, 204: None})
    @action(detail=True, methods=["post", "delete"], url_path="watch")
    def watch(self, request: Request, pk: str | None = None) -> Response:
        if request.method == "DELETE":
            services.auction_unwatch(auction_id=pk, user=request_user(request))
            return Response(status=status.HTTP_204_NO_CONTENT)
        services.auction_watch(auction_id=pk, user=request_user(request))
        return Response({"auction": pk, "watching": True}, status=status.HTTP_200_OK)


class AuctionItemViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet):
    serializer_class = AuctionItemSerializer
    filterset_class = AuctionItemFilter

    def get_queryset(self) -> Any:
        return selectors.auction_item_list(viewer=request_user(self.request))
