"""Bidding rules per auction type, as pure functions over unsaved rows (no database)."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest

from auctions.errors import AuctionError
from auctions.models import Auction, Bid, BidStatus
from auctions.rules import parse_amount, rules_for

T0 = datetime(2030, 1, 1, 12, 0, tzinfo=UTC)
ALICE, BOB, CAROL = uuid.uuid4(), uuid.uuid4(), uuid.uuid4()


def auction(auction_type="english", **fields) -> Auction:
    defaults = dict(
        title="Vintage Watch", auction_type=auction_type, currency="USD",
        starting_price=Decimal("100.00"), min_increment=Decimal("5.00"),
        starts_at=T0, ends_at=T0 + timedelta(hours=1),
    )
    defaults.update(fields)
    return Auction(**defaults)


def bid(bidder_id, amount, *, minutes=0, status=BidStatus.LEADING) -> Bid:
    return Bid(
        id=uuid.uuid4(), bidder_id=bidder_id, amount=Decimal(amount), status=status,
        placed_at=T0 + timedelta(minutes=minutes),
    )


def check(a, amount, *, bidder=ALICE, leading=None, has_bid=False):
    return rules_for(a.auction_type).check(
        a, Decimal(amount), bidder_id=bidder, leading=leading, bidder_has_bid=has_bid
    )


def error_of(fn, *args, **kwargs) -> AuctionError:
    with pytest.raises(AuctionError) as info:
        fn(*args, **kwargs)
    return info.value


# --- amounts ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "reason"),
    [
        ("abc", "amount must be a number"),
        ("NaN", "amount must be a number"),
        ("0", "amount must be greater than zero"),
        ("-5", "amount must be greater than zero"),
        ("10.001", "amount can have at most two decimals"),
        ("10000000000.00", "amount can be at most 9999999999.99"),
    ],
)
def test_bad_amounts_are_refused_naming_the_field(raw, reason):
    err = error_of(parse_amount, raw)
    assert (err.code, err.field, err.message, err.status) == ("BID_AMOUNT_INVALID", "amount", reason, 400)


def test_amounts_are_normalised_to_cents():
    assert parse_amount("12.5") == Decimal("12.50")
    assert parse_amount(7) == Decimal("7.00")


# --- english ----------------------------------------------------------------------


def test_english_first_bid_needs_the_starting_price():
    a = auction()
    err = error_of(check, a, "99.99")
    assert (err.code, err.field) == ("BID_TOO_LOW", "amount")
    assert err.message == "amount must be at least 100.00 USD"
    outcome = check(a, "100.00")
    assert (outcome.status, outcome.new_price, outcome.extend_by, outcome.displaced) == (
        "leading", Decimal("100.00"), timedelta(0), None,
    )


def test_english_later_bids_need_the_minimum_increment_and_displace_the_leader():
    a = auction(current_price=Decimal("120.00"))
    leader = bid(BOB, "120.00")
    err = error_of(check, a, "124.99", leading=leader)
    assert err.message == "amount must be at least 125.00 USD"
    outcome = check(a, "125.00", leading=leader)
    assert outcome.new_price == Decimal("125.00")
    assert outcome.displaced is leader


def test_english_leader_cannot_outbid_themself():
    a = auction(current_price=Decimal("120.00"))
    err = error_of(check, a, "200.00", bidder=BOB, leading=bid(BOB, "120.00"))
    assert (err.code, err.field) == ("ALREADY_LEADING", "amount")


def test_english_settles_to_the_highest_bid_when_the_reserve_is_met():
    a = auction(reserve_price=Decimal("150.00"))
    bids = [bid(ALICE, "140.00"), bid(BOB, "155.00", minutes=1), bid(CAROL, "150.00", minutes=2)]
    result = rules_for("english").settle(a, bids)
    assert (result.winning_bid.bidder_id, result.price, result.reserve_met) == (
        BOB, Decimal("155.00"), True,
    )


def test_english_below_reserve_does_not_sell():
    a = auction(reserve_price=Decimal("500.00"))
    result = rules_for("english").settle(a, [bid(ALICE, "140.00")])
    assert (result.winning_bid, result.price, result.reserve_met) == (None, None, False)


def test_no_bids_no_winner():
    result = rules_for("english").settle(auction(), [])
    assert (result.winning_bid, result.price) == (None, None)


# --- penny ------------------------------------------------------------------------


def test_penny_bid_must_be_exactly_the_next_price_and_extends_the_end():
    a = auction("penny", starting_price=Decimal("0.00"), bid_increment=Decimal("0.01"),
                extension_seconds=15)
    err = error_of(check, a, "0.02")
    assert (err.code, err.field) == ("BID_NOT_NEXT_PRICE", "amount")
    assert err.message == "a penny-auction bid must be exactly the next price, 0.01 USD"
    outcome = check(a, "0.01")
    assert (outcome.status, outcome.new_price, outcome.extend_by) == (
        "leading", Decimal("0.01"), timedelta(seconds=15),
    )


def test_penny_next_price_follows_the_current_price():
    a = auction("penny", starting_price=Decimal("0.00"), bid_increment=Decimal("0.01"),
                extension_seconds=10, current_price=Decimal("0.07"))
    leader = bid(BOB, "0.07")
    assert check(a, "0.08", leading=leader).displaced is leader
    assert error_of(check, a, "0.08", bidder=BOB, leading=leader).code == "ALREADY_LEADING"


def test_penny_last_bidder_wins_at_the_final_price():
    a = auction("penny", starting_price=Decimal("0.00"), bid_increment=Decimal("0.01"))
    bids = [bid(ALICE, "0.01"), bid(BOB, "0.02", minutes=1), bid(ALICE, "0.03", minutes=2)]
    result = rules_for("penny").settle(a, bids)
    assert (result.winning_bid.bidder_id, result.price) == (ALICE, Decimal("0.03"))


# --- sealed first-price -------------------------------------------------------------


def test_sealed_bids_are_hidden_one_per_bidder_at_least_the_starting_price():
    a = auction("sealed_first_price")
    outcome = check(a, "100.00")
    assert (outcome.status, outcome.new_price, outcome.displaced) == ("sealed", None, None)
    assert error_of(check, a, "99.00").code == "BID_TOO_LOW"
    err = error_of(check, a, "300.00", has_bid=True)
    assert (err.code, err.field) == ("SEALED_BID_EXISTS", "amount")


def test_sealed_first_price_winner_pays_their_bid_and_earlier_wins_a_tie():
    a = auction("sealed_first_price")
    bids = [bid(ALICE, "180.00", minutes=2), bid(BOB, "180.00", minutes=1), bid(CAROL, "120.00")]
    result = rules_for("sealed_first_price").settle(a, bids)
    assert (result.winning_bid.bidder_id, result.price) == (BOB, Decimal("180.00"))


# --- vickrey --------------------------------------------------------------------------


def test_vickrey_winner_pays_the_second_highest_bid():
    a = auction("vickrey")
    bids = [bid(ALICE, "200.00"), bid(BOB, "150.00"), bid(CAROL, "120.00")]
    result = rules_for("vickrey").settle(a, bids)
    assert (result.winning_bid.bidder_id, result.price) == (ALICE, Decimal("150.00"))


def test_vickrey_single_bid_pays_the_reserve_else_the_starting_price():
    with_reserve = auction("vickrey", reserve_price=Decimal("130.00"))
    result = rules_for("vickrey").settle(with_reserve, [bid(ALICE, "200.00")])
    assert (result.winning_bid.bidder_id, result.price) == (ALICE, Decimal("130.00"))
    without = auction("vickrey")
    assert rules_for("vickrey").settle(without, [bid(ALICE, "200.00")]).price == Decimal("100.00")


def test_vickrey_price_is_never_below_the_reserve():
    a = auction("vickrey", reserve_price=Decimal("170.00"))
    result = rules_for("vickrey").settle(a, [bid(ALICE, "200.00"), bid(BOB, "150.00")])
    assert result.price == Decimal("170.00")
    below = rules_for("vickrey").settle(a, [bid(ALICE, "160.00")])
    assert (below.winning_bid, below.reserve_met) == (None, False)


