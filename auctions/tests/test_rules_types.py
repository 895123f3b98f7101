"""The rules of the nine types beyond English/penny/sealed/Vickrey, and English proxy
bidding and anti-sniping, at their edges — pure functions over unsaved rows."""

from __future__ import annotations

import hashlib
from datetime import timedelta
from decimal import Decimal

import pytest

from auctions.models import AuctionRuleState
from auctions.rules import (
    RULES,
    BidContext,
    candle_end,
    commitment_of,
    draw_ticket,
    rules_for,
    tick_at,
)
from auctions.tests.test_rules import ALICE, BOB, CAROL, T0, auction, bid, error_of

D = Decimal


def state(a, config=None, secret="") -> AuctionRuleState:
    cleaned = rules_for(a.auction_type).validate_config(a, config or {})
    return AuctionRuleState(
        auction=a, config=cleaned, secret=secret, commitment=commitment_of(secret) if secret else ""
    )


def check(a, amount, *, bidder=ALICE, leading=None, has_bid=False, ctx=None):
    return rules_for(a.auction_type).check(
        a, D(amount), bidder_id=bidder, leading=leading, bidder_has_bid=has_bid, ctx=ctx
    )


def test_all_thirteen_types_have_rules():
    assert len(RULES) == 13


# --- English: proxies and anti-sniping ------------------------------------------------


def test_english_proxy_answers_a_lower_bid_one_increment_above_it():
    a = auction(current_price=D("120.00"))
    leader = bid(BOB, "120.00")
    leader.max_amount = D("200.00")
    outcome = check(a, "150.00", leading=leader)
    assert (outcome.status, outcome.new_price, outcome.displaced) == ("outbid", D("155.00"), None)
    assert (outcome.proxy.bidder_id, outcome.proxy.amount) == (BOB, D("155.00"))


def test_english_equal_maximums_the_earlier_proxy_holds_at_its_maximum():
    a = auction(current_price=D("120.00"))
    leader = bid(BOB, "120.00")
    leader.max_amount = D("200.00")
    outcome = check(a, "130.00", leading=leader, ctx=BidContext(now=T0, max_amount=D("200.00")))
    assert (outcome.status, outcome.new_price, outcome.proxy.amount) == (
        "outbid", D("200.00"), D("200.00"))


def test_english_bid_over_a_proxy_leads_one_increment_above_its_maximum():
    a = auction(current_price=D("120.00"))
    leader = bid(BOB, "120.00")
    leader.max_amount = D("200.00")
    outcome = check(a, "130.00", leading=leader, ctx=BidContext(now=T0, max_amount=D("500.00")))
    assert (outcome.status, outcome.new_price, outcome.displaced, outcome.proxy_exceeded) == (
        "leading", D("205.00"), leader, True)


def test_english_max_amount_below_the_bid_is_refused():
    err = error_of(check, auction(), "150.00", ctx=BidContext(now=T0, max_amount=D("140.00")))
    assert (err.code, err.field) == ("BID_AMOUNT_INVALID", "max_amount")


def test_english_last_second_bid_extends_to_the_anti_sniping_window():
    a = auction()
    st = state(a, {"anti_sniping_seconds": 60})
    last_second = a.ends_at - timedelta(seconds=1)
    outcome = check(a, "100.00", ctx=BidContext(now=last_second, state=st))
    assert outcome.extend_by == timedelta(seconds=59)
    early = check(a, "100.00", ctx=BidContext(now=a.ends_at - timedelta(minutes=5), state=st))
    assert early.extend_by == timedelta(0)


# --- Dutch ------------------------------------------------------------------------------


def test_dutch_clock_falls_by_the_decrement_to_the_floor_and_stops():
    a = auction("dutch")
    rules = rules_for("dutch")
    config = state(a, {"decrement": "7.00", "tick_seconds": 10, "floor_price": "80.00"}).config
    assert [rules.price_at(a, config, t) for t in range(5)] == [
        D("100.00"), D("93.00"), D("86.00"), D("80.00"), D("80.00")]
    assert rules.last_tick(a, config) == 3
    assert rules.due_at(a, config, 2) == T0 + timedelta(seconds=30)
    assert rules.due_at(a, config, 3) is None  # the floor: no more ticks
    assert tick_at(a, config, T0 + timedelta(seconds=29)) == 2


def test_dutch_bid_must_be_the_clock_price_and_wins_at_once():
    a = auction("dutch", current_price=D("93.00"))
    assert error_of(check, a, "100.00").code == "BID_NOT_CLOCK_PRICE"
    outcome = check(a, "93.00")
    assert (outcome.status, outcome.close_now) == ("leading", True)


def test_dutch_floor_must_be_below_the_start():
    err = error_of(state, auction("dutch"), {"decrement": "5", "floor_price": "100.00"})
    assert (err.code, err.field) == ("AUCTION_CONFIG_INVALID", "config.floor_price")
    assert state(auction("dutch"), {}).config["decrement"] == "5.00"  # the min increment


def test_dutch_no_bid_at_the_floor_does_not_sell():
    result = rules_for("dutch").settle(auction("dutch", current_price=D("50.00")), [])
    assert (result.winning_bid, result.reserve_met) == (None, False)


# --- Japanese ----------------------------------------------------------------------------


def test_japanese_takes_no_bids():
    assert error_of(check, auction("japanese"), "100.00").code == "ENTRY_ONLY"


def test_japanese_last_one_in_pays_where_the_runner_up_left():
    a = auction("japanese", current_price=D("150.00"))
    bids = [bid(ALICE, "100.00", status="active"), bid(BOB, "130.00", status="dropped"),
            bid(CAROL, "145.00", status="dropped", minutes=1)]
    result = rules_for("japanese").settle(a, bids)
    assert (result.winning_bid.bidder_id, result.price) == (ALICE, D("145.00"))


def test_japanese_ties_at_the_end_go_to_the_earliest_entrant_at_the_clock_price():
    a = auction("japanese", current_price=D("160.00"))
    bids = [bid(BOB, "100.00", status="active", minutes=2), bid(ALICE, "100.00", status="active")]
    result = rules_for("japanese").settle(a, bids)
    assert (result.winning_bid.bidder_id, result.price) == (ALICE, D("160.00"))


def test_japanese_reserve_not_met_and_everyone_out():
    a = auction("japanese", reserve_price=D("200.00"))
    one = rules_for("japanese").settle(a, [bid(ALICE, "100.00", status="active")])
    assert (one.winning_bid, one.reserve_met) == (None, False)
    out = rules_for("japanese").settle(auction("japanese"), [bid(ALICE, "120", status="dropped")])
    assert out.winning_bid is None
    assert rules_for("japanese").decided(1, 3) and not rules_for("japanese").decided(2, 3)


# --- reverse ------------------------------------------------------------------------------


def test_reverse_bids_go_down_and_the_lowest_wins():
    a = auction("reverse", starting_price=D("500.00"))
    assert error_of(check, a, "500.01").code == "BID_TOO_HIGH"
    assert check(a, "500.00").new_price == D("500.00")
    later = auction("reverse", starting_price=D("500.00"), current_price=D("400.00"))
    err = error_of(check, later, "396.00", leading=bid(BOB, "400.00"))
    assert err.message == "amount must be at most 395.00 USD"
    bids = [bid(ALICE, "380.00", minutes=1), bid(BOB, "380.00"), bid(CAROL, "390.00")]
    result = rules_for("reverse").settle(later, bids)
    assert (result.winning_bid.bidder_id, result.price) == (BOB, D("380.00"))  # tie: earlier


def test_reverse_reserve_is_the_most_the_buyer_pays():
    a = auction("reverse", starting_price=D("500.00"), reserve_price=D("300.00"))
    result = rules_for("reverse").settle(a, [bid(ALICE, "350.00")])
    assert (result.winning_bid, result.reserve_met) == (None, False)


# --- all-pay, top-up, silent ----------------------------------------------------------------


def test_all_pay_every_loser_pays_their_highest_bid_even_without_a_sale():
    a = auction("all_pay")
    bids = [bid(ALICE, "100.00"), bid(BOB, "110.00", minutes=1), bid(ALICE, "120.00", minutes=2)]
    result = rules_for("all_pay").settle(a, bids)
    assert (result.winning_bid.bidder_id, result.price, result.payments) == (
        ALICE, D("120.00"), {BOB: D("110.00")})
    unsold = rules_for("all_pay").settle(auction("all_pay", reserve_price=D("500")), bids)
    assert unsold.winning_bid is None and unsold.payments == {ALICE: D("120.00"), BOB: D("110.00")}
    assert error_of(check, a, "150", ctx=BidContext(now=T0, max_amount=D("300"))).field == (
        "max_amount")


def test_top_up_losers_pay_the_difference_to_the_next_lower_bid():
    a = auction("top_up")  # starting price 100
    bids = [bid(ALICE, "100.00"), bid(BOB, "110.00", minutes=1), bid(ALICE, "125.00", minutes=2),
            bid(BOB, "140.00", minutes=3), bid(CAROL, "150.00", minutes=4)]
    result = rules_for("top_up").settle(a, bids)
    assert (result.winning_bid.bidder_id, result.price) == (CAROL, D("150.00"))
    # Bob 140 − Alice 125; Alice, the lowest, 125 − the starting price 100
    assert result.payments == {BOB: D("15.00"), ALICE: D("25.00")}
    unsold = rules_for("top_up").settle(auction("top_up", reserve_price=D("500")), bids)
    assert unsold.winning_bid is None
    assert unsold.payments == {CAROL: D("10.00"), BOB: D("15.00"), ALICE: D("25.00")}


def test_silent_takes_no_proxies_and_never_extends():
    a = auction("silent")
    st = state(a)
    outcome = check(a, "100.00", ctx=BidContext(now=a.ends_at - timedelta(seconds=1), state=st))
    assert outcome.extend_by == timedelta(0)
    assert error_of(check, a, "100.00", ctx=BidContext(max_amount=D("200"))).field == "max_amount"


# --- penny fees ----------------------------------------------------------------------------


def test_penny_fees_are_owed_per_bid_by_every_bidder():
    a = auction("penny", starting_price=D("0.00"), bid_increment=D("0.01"))
    st = state(a, {"bid_fee": "0.50"})
    bids = [bid(ALICE, "0.01"), bid(BOB, "0.02", minutes=1), bid(ALICE, "0.03", minutes=2)]
    result = rules_for("penny").settle(a, bids, st)
    assert (result.winning_bid.bidder_id, result.price) == (ALICE, D("0.03"))
    assert result.payments == {ALICE: D("1.00"), BOB: D("0.50")}


# --- candle -----------------------------------------------------------------------------------


def test_candle_end_is_fixed_by_the_committed_secret_and_verifiable():
    a = auction("candle")
    secret = "ab" * 32
    st = state(a, {"window_seconds": 600}, secret=secret)
    end = candle_end(a, 600, secret)
    offset = int(hashlib.sha256(f"{secret}:end".encode()).hexdigest(), 16) % 601
    assert end == a.ends_at - timedelta(seconds=600 - offset)
    assert hashlib.sha256(secret.encode()).hexdigest() == st.commitment
    # a bid after the candle went out is refused; the one before it wins
    err = error_of(check, a, "100.00", ctx=BidContext(now=end, state=st))
    assert (err.code, err.status) == ("AUCTION_ENDED", 409)
    bids = [bid(ALICE, "150.00"), bid(BOB, "999.00")]
    bids[0].placed_at = end - timedelta(seconds=1)
    bids[1].placed_at = end + timedelta(seconds=1)  # too late: the candle was out
    result = rules_for("candle").settle(a, bids, st)
    assert (result.winning_bid.bidder_id, result.price) == (ALICE, D("150.00"))
    assert result.proof["secret"] == secret and result.proof["candle_end"] == end.isoformat()


def test_candle_window_must_fit_in_the_auction():
    err = error_of(state, auction("candle"), {"window_seconds": 7200})
    assert err.field == "config.window_seconds"


# --- Chinese ---------------------------------------------------------------------------------


def test_chinese_entries_are_whole_multiples_of_the_entry_price():
    a = auction("chinese", starting_price=D("0.00"))
    st = state(a, {"entry_price": "5.00"})
    assert error_of(check, a, "7.00", ctx=BidContext(state=st)).code == "BID_NOT_ENTRY_MULTIPLE"
    outcome = check(a, "15.00", ctx=BidContext(state=st))
    assert (outcome.status, outcome.new_price) == ("entry", D("15.00"))


def test_chinese_draw_is_weighted_by_entries_and_verifiable():
    a = auction("chinese", starting_price=D("0.00"))
    secret = "cd" * 32
    st = state(a, {"entry_price": "5.00"}, secret=secret)
    bids = [bid(ALICE, "5.00"), bid(BOB, "45.00", minutes=1)]  # 1 entry vs 9
    result = rules_for("chinese").settle(a, bids, st)
    entries = [(str(bids[0].id), 1), (str(bids[1].id), 9)]
    ticket = draw_ticket(secret, entries)
    assert result.proof["ticket"] == ticket
    expected = ALICE if ticket < 1 else BOB
    assert result.winning_bid.bidder_id == expected
    loser = BOB if expected == ALICE else ALICE
    assert result.payments == {loser: D("45.00") if loser == BOB else D("5.00")}
    # weighting: over many secrets, nine entries win about nine times in ten
    wins = sum(draw_ticket(f"{n:064x}", entries) >= 1 for n in range(2000))
    assert 1700 < wins < 1900


def test_chinese_takings_under_the_reserve_no_draw():
    a = auction("chinese", starting_price=D("0.00"), reserve_price=D("100.00"))
    st = state(a, {"entry_price": "5.00"}, secret="ef" * 32)
    result = rules_for("chinese").settle(a, [bid(ALICE, "50.00")], st)
    assert (result.winning_bid, result.payments) == (None, {})


# --- buy it now -------------------------------------------------------------------------------


def test_buy_it_now_only_at_the_price_when_bidding_is_off():
    a = auction("buy_it_now")
    st = state(a, {"buy_now_price": "250.00"})
    assert error_of(check, a, "200.00", ctx=BidContext(state=st)).code == "BID_NOT_BUY_NOW_PRICE"
    assert check(a, "250.00", ctx=BidContext(state=st)).close_now is True


def test_buy_it_now_first_bid_closes_the_buy_now_option():
    a = auction("buy_it_now")
    st = state(a, {"buy_now_price": "250.00", "bidding": True})
    first = check(a, "120.00", ctx=BidContext(state=st))
    assert (first.status, first.close_now) == ("leading", False)
    assert error_of(check, a, "260.00", ctx=BidContext(state=st)).code == "BID_NOT_BUY_NOW_PRICE"
    a.bid_count, a.current_price = 1, D("120.00")
    late = check(a, "250.00", leading=bid(BOB, "120.00"), ctx=BidContext(state=st))
    assert late.close_now is False  # the option is gone: an ordinary bid now
    kept = state(a, {"buy_now_price": "250.00", "bidding": True, "closes_on_first_bid": False})
    assert check(a, "250.00", leading=bid(BOB, "120.00"), ctx=BidContext(state=kept)).close_now


def test_buy_it_now_requires_a_price_and_the_first_buyer_wins():
    err = error_of(state, auction("buy_it_now", starting_price=D("0")), {})
    assert err.field == "config.buy_now_price"
    a = auction("buy_it_now")
    st = state(a, {"buy_now_price": "250.00"})
    result = rules_for("buy_it_now").settle(
        a, [bid(BOB, "250.00", minutes=1), bid(ALICE, "250.00")], st)
    assert result.winning_bid.bidder_id == ALICE


def test_unknown_setting_is_refused_naming_it():
    err = error_of(state, auction("english"), {"decrement": "5"})
    assert (err.code, err.field) == ("AUCTION_CONFIG_INVALID", "config.decrement")
    assert "is not a setting of english auctions" in err.message


@pytest.mark.parametrize("value", ["x", -1, 1.5, True])
def test_bad_seconds_setting_is_refused(value):
    err = error_of(state, auction("english"), {"anti_sniping_seconds": value})
    assert err.field == "config.anti_sniping_seconds"
