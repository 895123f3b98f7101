"""Auctions API: browse, create and run auctions (seller or staff), bid, enter and drop
out (Japanese), watch."""

from __future__ import annotations

from typing import Any

from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import mixins, status, viewsets
from rest_framework.decorators import action
from rest_framework.request import Request
from rest_framework.response import Response

from notifyplatform.schema import error_response
from users.authentication import request_user

from .. import selectors, services
from ..filters import AuctionFilter, AuctionItemFilter
from ..models import Auction, AuctionItem
from .serializers import (
    AuctionItemSerializer,
    AuctionSerializer,
    BidCreateSerializer,
    BidSerializer,
    OpenBidSerializer,
)
from .write_serializers import (
    AuctionUpdateSerializer,
    AuctionWriteSerializer,
    CancelSerializer,
    ItemInputSerializer,
)

# Domain errors the schema must name (services raise AuctionError with these statuses)
_STATE = {409: error_response("The auction's state forbids it (e.g. AUCTION_TRANSITION_INVALID).")}
_BIDDING = {
    400: error_response("A bidding rule refuses it (e.g. SELLER_CANNOT_BID, NOT_ENTERED)."),
    409: error_response("The auction is not open for it (AUCTION_ENDED, ENTRY_CLOSED, ...)."),
}


class AuctionViewSet(
    mixins.CreateModelMixin,
    mixins.UpdateModelMixin,
    viewsets.ReadOnlyModelViewSet,
):
    """Auctions, filterable by ``status`` and ``type`` (repeatable). Anyone signed in
    may create one (as its seller); only the seller or staff change, schedule, cancel or
    close it."""

    serializer_class = AuctionSerializer
    filterset_class = AuctionFilter
    ordering_fields = ["starts_at", "ends_at", "created_at", "current_price"]
    http_method_names = ["get", "post", "patch", "delete", "head", "options"]

    def get_queryset(self) -> Any:
        if getattr(self, "swagger_fake_view", False):  # the OpenAPI generator asks anonymously
            return Auction.objects.none()
        return selectors.auction_list(viewer=request_user(self.request))

    def _show(self, request: Request, auction: Auction, code: int = 200) -> Response:
        fresh = selectors.auction_list(viewer=request_user(request)).get(pk=auction.pk)
        return Response(AuctionSerializer(fresh, context={"request": request}).data, status=code)

    @extend_schema(request=AuctionWriteSerializer, responses={201: AuctionSerializer})
    def create(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        data = AuctionWriteSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        auction = services.auction_create(seller=request_user(request), **data.validated_data)
        return self._show(request, auction, status.HTTP_201_CREATED)

    @extend_schema(request=AuctionUpdateSerializer, responses={200: AuctionSerializer, **_STATE})
    def partial_update(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        data = AuctionUpdateSerializer(data=request.data, partial=True)
        data.is_valid(raise_exception=True)
        auction = services.auction_update(
            auction_id=kwargs["pk"], user=request_user(request), changes=dict(data.validated_data)
        )
        return self._show(request, auction)

    @extend_schema(exclude=True)
    def update(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        return self.partial_update(request, *args, **kwargs)

    @extend_schema(
        request=None,
        responses={
            200: AuctionSerializer,
            400: error_response("Its dates no longer work (AUCTION_DATES_INVALID)."),
            **_STATE,
        },
    )
    @action(detail=True, methods=["post"], url_path="schedule")
    def schedule(self, request: Request, pk: str | None = None) -> Response:
        """Publish a draft: it becomes visible and starts at ``starts_at``."""
        auction = services.auction_schedule(auction_id=pk, user=request_user(request))
        return self._show(request, auction)

    @extend_schema(request=CancelSerializer, responses={200: AuctionSerializer, **_STATE})
    @action(detail=True, methods=["post"], url_path="cancel")
    def cancel(self, request: Request, pk: str | None = None) -> Response:
        data = CancelSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        auction = services.auction_cancel(
            auction_id=pk, user=request_user(request), reason=data.validated_data["reason"]
        )
        return self._show(request, auction)

    @extend_schema(request=None, responses={200: AuctionSerializer, **_STATE})
    @action(detail=True, methods=["post"], url_path="close")
    def close(self, request: Request, pk: str | None = None) -> Response:
        """End a running auction now and settle it under its type's rules."""
        result = services.auction_close_now(auction_id=pk, user=request_user(request))
        return self._show(request, result.auction)

    @extend_schema(request=ItemInputSerializer, responses={201: AuctionItemSerializer, **_STATE})
    @action(detail=True, methods=["post"], url_path="items")
    def items(self, request: Request, pk: str | None = None) -> Response:
        data = ItemInputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        item = services.auction_item_add(
            auction_id=pk, user=request_user(request), **data.validated_data
        )
        return Response(AuctionItemSerializer(item).data, status=status.HTTP_201_CREATED)

    @extend_schema(
        methods=["POST"], request=BidCreateSerializer, responses={201: BidSerializer, **_BIDDING}
    )
    @extend_schema(methods=["GET"], responses={200: OpenBidSerializer(many=True)})
    @action(detail=True, methods=["get", "post"], url_path="bids")
    def bids(self, request: Request, pk: str | None = None) -> Response:
        """POST: bid. GET: the bids you may see (a silent or other open auction's sheet
        to any signed-in attendee; a sealed auction's only your own until it ends)."""
        user = request_user(request)
        if request.method == "GET":
            auction = self.get_object()
            rows = selectors.bid_list_visible(auction=auction, viewer=user)
            page = self.paginate_queryset(rows)
            serialized = OpenBidSerializer(page if page is not None else rows, many=True).data
            return self.get_paginated_response(serialized) if page is not None else Response(
                serialized)
        serializer = BidCreateSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        bid = services.bid_place(
            auction_id=pk,
            bidder=user,
            amount=serializer.validated_data["amount"],
            item=serializer.validated_data.get("item"),
            max_amount=serializer.validated_data.get("max_amount"),
        )
        return Response(BidSerializer(bid).data, status=status.HTTP_201_CREATED)

    @extend_schema(request=None, responses={201: BidSerializer, **_BIDDING})
    @action(detail=True, methods=["post"], url_path="enter")
    def enter(self, request: Request, pk: str | None = None) -> Response:
        """Japanese: enter before the clock starts."""
        entry = services.auction_enter(auction_id=pk, bidder=request_user(request))
        return Response(BidSerializer(entry).data, status=status.HTTP_201_CREATED)

    @extend_schema(request=None, responses={200: BidSerializer, **_BIDDING})
    @action(detail=True, methods=["post"], url_path="drop-out")
    def drop_out(self, request: Request, pk: str | None = None) -> Response:
        """Japanese: leave at the current clock price."""
        entry = services.auction_drop_out(auction_id=pk, bidder=request_user(request))
        return Response(BidSerializer(entry).data)

    @extend_schema(
        request=None,
        responses={200: OpenApiResponse(description="watching"), 204: None},
    )
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
        if getattr(self, "swagger_fake_view", False):
            return AuctionItem.objects.none()
        return selectors.auction_item_list(viewer=request_user(self.request))
