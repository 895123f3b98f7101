"""Admin for auctions, their items, bids and watchers.

Bids are placed through the bidding rules (``auctions`` services), which emit the
real-time events and notifications; the admin shows them but does not place them. The
lifecycle (schedule, cancel, close now) runs through the same services as the API, as
admin actions, so the parties are told.
"""

from __future__ import annotations

from collections.abc import Callable

from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest

from notifyplatform.admin_utils import NPModelAdmin, NPTabularInline
from users.models import User

from . import services
from .errors import AuctionError
from .models import Auction, AuctionItem, AuctionRuleState, AuctionWatcher, Bid


class AuctionItemInline(NPTabularInline):
    model = AuctionItem
    fields = ("title", "quantity", "image_url")


class BidInline(NPTabularInline):
    model = Bid
    fields = ("bidder", "amount", "max_amount", "by_proxy", "status", "placed_at")
    readonly_fields = fields
    can_delete = False
    ordering = ("-amount",)

    def has_add_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False


class AuctionRuleStateInline(NPTabularInline):
    """The type's settings (checked by its rules when saved through the API) and its
    clock; the committed secret stays hidden until it is revealed at the end."""

    model = AuctionRuleState
    fields = ("config", "clock_tick", "clock_due_at", "commitment", "revealed_at")
    readonly_fields = ("clock_tick", "clock_due_at", "commitment", "revealed_at")
    can_delete = False
    extra = 0


@admin.register(AuctionRuleState)
class AuctionRuleStateAdmin(NPModelAdmin):
    list_display = ("auction", "clock_tick", "clock_due_at", "commitment", "revealed_at")
    list_select_related = ("auction",)
    search_fields = ("auction__title",)
    readonly_fields = ("auction", "clock_tick", "clock_due_at", "commitment", "secret_shown",
                       "revealed_at")
    fields = ("auction", "config", "clock_tick", "clock_due_at", "commitment", "secret_shown",
              "revealed_at")

    @admin.display(description="secret")
    def secret_shown(self, obj: AuctionRuleState) -> str:
        return obj.secret if obj.revealed_at else "(hidden until the end)"

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False


@admin.register(Auction)
class AuctionAdmin(NPModelAdmin):
    list_display = (
        "title",
        "auction_type",
        "status",
        "seller",
        "current_price",
        "bid_count",
        "currency",
        "starts_at",
        "ends_at",
        "winner",
    )
    list_filter = ("status", "auction_type", "currency")
    search_fields = ("title", "description", "seller__email")
    list_select_related = ("seller", "winner")
    date_hierarchy = "starts_at"
    autocomplete_fields = ("seller", "winner")
    readonly_fields = ("current_price", "bid_count", "ending_notice_sent_at", "final_price")
    inlines = (AuctionRuleStateInline, AuctionItemInline, BidInline)
    actions = ("schedule_selected", "cancel_selected", "close_selected")

    def _run(self, request: HttpRequest, queryset: QuerySet[Auction], verb: str,
             call: Callable[[Auction, User], object]) -> None:
        """Run a lifecycle service per auction as the staff user; report each refusal."""
        done = 0
        for auction in queryset:
            try:
                call(auction, request.user)  # type: ignore[arg-type]
                done += 1
            except AuctionError as exc:
                self.message_user(request, f"{auction}: {exc.message}", messages.WARNING)
        self.message_user(request, f"{verb} {done} auction(s).", messages.SUCCESS)

    @admin.action(description="Schedule selected drafts", permissions=["change"])
    def schedule_selected(self, request: HttpRequest, queryset: QuerySet[Auction]) -> None:
        self._run(request, queryset, "Scheduled",
                  lambda a, u: services.auction_schedule(auction_id=a.pk, user=u))

    @admin.action(description="Cancel selected auctions", permissions=["change"])
    def cancel_selected(self, request: HttpRequest, queryset: QuerySet[Auction]) -> None:
        self._run(request, queryset, "Cancelled",
                  lambda a, u: services.auction_cancel(auction_id=a.pk, user=u,
                                                       reason="cancelled by staff"))

    @admin.action(description="Close selected running auctions now", permissions=["change"])
    def close_selected(self, request: HttpRequest, queryset: QuerySet[Auction]) -> None:
        self._run(request, queryset, "Closed",
                  lambda a, u: services.auction_close_now(auction_id=a.pk, user=u))
    fieldsets = (
        (None, {"fields": ("title", "description", "seller", "auction_type", "status")}),
        (
            "Pricing",
            {
                "fields": (
                    "currency",
                    "starting_price",
                    "reserve_price",
                    "min_increment",
                    "bid_increment",
                    "extension_seconds",
                )
            },
        ),
        ("Schedule", {"fields": ("starts_at", "ends_at", "ending_notice_sent_at")}),
        ("Result", {"fields": ("current_price", "bid_count", "winner", "final_price")}),
        ("Timestamps", {"fields": ("created_at", "updated_at")}),
    )


@admin.register(AuctionItem)
class AuctionItemAdmin(NPModelAdmin):
    list_display = ("title", "auction", "quantity", "created_at")
    search_fields = ("title", "description", "auction__title")
    list_select_related = ("auction",)
    autocomplete_fields = ("auction",)


@admin.register(Bid)
class BidAdmin(NPModelAdmin):
    list_display = ("auction", "bidder", "amount", "status", "placed_at")
    list_filter = ("status", "auction__auction_type")
    search_fields = ("auction__title", "bidder__email")
    list_select_related = ("auction", "bidder")
    date_hierarchy = "placed_at"
    autocomplete_fields = ("auction", "bidder")
    raw_id_fields = ("item",)

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False


@admin.register(AuctionWatcher)
class AuctionWatcherAdmin(NPModelAdmin):
    list_display = ("auction", "user", "created_at")
    search_fields = ("auction__title", "user__email")
    list_select_related = ("auction", "user")
    autocomplete_fields = ("auction", "user")
