"""Auctions, their items and bids — the base tables seed 004 references by UUID.

Thirteen auction types are stored; bidding rules exist for some of them (see
``auctions.rules``). Money is ``numeric(12,2)``.
"""

from __future__ import annotations

import uuid
from typing import TYPE_CHECKING

from django.conf import settings
from django.db import models

from notifyplatform.db import SeedIndex, choices_check, created_at, seed_default, updated_at

if TYPE_CHECKING:
    from users.models import User


class AuctionType(models.TextChoices):
    ENGLISH = "english", "English (ascending)"
    DUTCH = "dutch", "Dutch (descending)"
    JAPANESE = "japanese", "Japanese (ascending clock)"
    SEALED_FIRST_PRICE = "sealed_first_price", "Sealed-bid first-price"
    VICKREY = "vickrey", "Vickrey (sealed second-price)"
    PENNY = "penny", "Penny (pay-per-bid)"
    REVERSE = "reverse", "Reverse (procurement)"
    ALL_PAY = "all_pay", "All-pay"
    CANDLE = "candle", "Candle (random end)"
    SILENT = "silent", "Silent"
    CHINESE = "chinese", "Chinese (lottery)"
    TOP_UP = "top_up", "Top-up"
    BUY_IT_NOW = "buy_it_now", "Buy it now"


class AuctionStatus(models.TextChoices):
    DRAFT = "draft", "Draft"
    SCHEDULED = "scheduled", "Scheduled"
    ACTIVE = "active", "Active"
    COMPLETED = "completed", "Completed"
    CANCELLED = "cancelled", "Cancelled"


class Auction(models.Model):
    id = models.UUIDField(
        primary_key=True, default=uuid.uuid4, editable=False, db_column="auction_id"
    )
    title = models.CharField(max_length=255)
    description = models.TextField(blank=True, default="")
    seller = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="auctions_selling",
        db_index=False,  # the seed's named index (Meta.indexes) is the one
    )
    auction_type = models.CharField(max_length=30, choices=AuctionType.choices)
    status = models.CharField(
        max_length=20, choices=AuctionStatus.choices, **seed_default(AuctionStatus.SCHEDULED)
    )
    currency = models.CharField(max_length=3, **seed_default("USD"))
    starting_price = models.DecimalField(max_digits=12, decimal_places=2, **seed_default(0))
    reserve_price = models.DecimalField(max_digits=12, decimal_places=2, null=True, blank=True)
    min_increment = models.DecimalField(
        max_digits=12, decimal_places=2, **seed_default(1), help_text="English: minimum raise"
    )
    bid_increment = models.DecimalField(
        max_digits=12, decimal_places=2, null=True, blank=True, help_text="Penny: fixed step"
    )
    extension_seconds = models.IntegerField(
        null=True, blank=True, help_text="Penny: each bid extends the end by this much"
    )
    current_price = models.DecimalField(max_digits=12, decimal_places=2, null=True, blank=True)
    bid_count = models.IntegerField(**seed_default(0))
    starts_at = models.DateTimeField()
    ends_at = models.DateTimeField()
    ending_notice_sent_at = models.DateTimeField(null=True, blank=True)
    winner = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="auctions_won",
    )
    final_price = models.DecimalField(max_digits=12, decimal_places=2, null=True, blank=True)
    watchers: models.ManyToManyField[User, AuctionWatcher] = models.ManyToManyField(
        settings.AUTH_USER_MODEL,
        through="AuctionWatcher",
        related_name="watched_auctions",
        blank=True,
    )
    created_at = created_at()
    updated_at = updated_at()

    class Meta:
        db_table = "auctions"
        ordering = ["-starts_at"]
        indexes = [
            SeedIndex(fields=["status", "starts_at"], name="idx_auctions_status_starts"),
            SeedIndex(fields=["status", "ends_at"], name="idx_auctions_status_ends"),
            SeedIndex(fields=["seller"], name="idx_auctions_seller"),
        ]
        constraints = [
            choices_check("auction_type", AuctionType, "auctions_auction_type_valid"),
            choices_check("status", AuctionStatus, "auctions_status_valid"),
            models.CheckConstraint(
                condition=models.Q(ends_at__gt=models.F("starts_at")),
                name="auctions_ends_after_start",
            ),
        ]

    def __str__(self) -> str:
        return self.title


class AuctionItem(models.Model):
    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False, db_column="item_id")
    auction = models.ForeignKey(
        Auction, on_delete=models.CASCADE, related_name="items",
        db_index=False,  # the seed's named index (Meta.indexes) is the one
    )
    title = models.CharField(max_length=255)
    description = models.TextField(blank=True, default="")
    quantity = models.PositiveIntegerField(**seed_default(1))
    image_url = models.URLField(max_length=500, null=True, blank=True)
    metadata = models.JSONField(null=True, blank=True)
    created_at = created_at()

    class Meta:
        db_table = "auction_items"
        ordering = ["created_at"]
        indexes = [SeedIndex(fields=["auction"], name="idx_auction_items_auction")]

    def __str__(self) -> str:
        return self.title


class BidStatus(models.TextChoices):
    LEADING = "leading", "Leading"
    OUTBID = "outbid", "Outbid"
    SEALED = "sealed", "Sealed (hidden until the end)"
    WON = "won", "Won"
    LOST = "lost", "Lost"
    ACTIVE = "active", "In (Japanese clock)"
    DROPPED = "dropped", "Dropped out (Japanese clock)"
    ENTRY = "entry", "Entries (Chinese draw)"


class Bid(models.Model):
    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False, db_column="bid_id")
    auction = models.ForeignKey(Auction, on_delete=models.CASCADE, related_name="bids")
    item = models.ForeignKey(
        AuctionItem, on_delete=models.SET_NULL, null=True, blank=True, related_name="bids"
    )
    bidder = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="bids",
        db_index=False,  # the seed's named index (Meta.indexes) is the one
    )
    amount = models.DecimalField(max_digits=12, decimal_places=2)
    max_amount = models.DecimalField(
        max_digits=12,
        decimal_places=2,
        null=True,
        blank=True,
        help_text="English proxy bid: the most the platform bids for this bidder (private)",
    )
    by_proxy = models.BooleanField(
        default=False,
        db_default=False,
        help_text="Placed automatically by the bidder's proxy (maximum) bid"
    )
    status = models.CharField(max_length=20, choices=BidStatus.choices)
    placed_at = models.DateTimeField()
    created_at = created_at()

    class Meta:
        db_table = "bids"
        ordering = ["-placed_at"]
        indexes = [
            SeedIndex(fields=["auction", "-amount"], name="idx_bids_auction_amount"),
            SeedIndex(fields=["bidder"], name="idx_bids_bidder"),
        ]
        constraints = [
            choices_check("status", BidStatus, "bids_status_valid"),
            models.CheckConstraint(condition=models.Q(amount__gt=0), name="bids_amount_positive"),
        ]

    def __str__(self) -> str:
        return f"{self.amount} on {self.auction_id}"


class AuctionWatcher(models.Model):
    auction = models.ForeignKey(Auction, on_delete=models.CASCADE)
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE)
    created_at = created_at()

    class Meta:
        db_table = "auction_watchers"
        constraints = [
            models.UniqueConstraint(fields=["auction", "user"], name="auction_watchers_uniq")
        ]

    def __str__(self) -> str:
        return f"{self.user_id} watches {self.auction_id}"


class AuctionRuleState(models.Model):
    """What a type's rules need beyond the seed's ``auctions`` columns: its settings
    (``config``, validated by the type's rules) and its clock.

    ``clock_due_at`` is when the clock next needs the beat (a Dutch/Japanese price tick,
    a candle going out); ``clock_tick`` the last tick applied, advanced with a conditional
    UPDATE so a restarted or doubled worker neither skips nor repeats a tick.
    ``commitment`` is the SHA-256 of ``secret`` (hex), published when the auction starts;
    the secret is revealed when it ends (candle end, Chinese draw) so anyone can check.
    """

    auction = models.OneToOneField(
        Auction, on_delete=models.CASCADE, primary_key=True, related_name="rule_state"
    )
    config = models.JSONField(default=dict, blank=True)
    clock_due_at = models.DateTimeField(null=True, blank=True)
    clock_tick = models.IntegerField(default=0, db_default=0)
    commitment = models.CharField(max_length=64, blank=True, default="")
    secret = models.CharField(max_length=64, blank=True, default="")
    revealed_at = models.DateTimeField(null=True, blank=True)
    updated_at = updated_at()

    class Meta:
        db_table = "auction_rule_states"
        indexes = [models.Index(fields=["clock_due_at"], name="idx_auction_rules_clock_due")]

    def __str__(self) -> str:
        return f"rules of {self.auction_id}"
