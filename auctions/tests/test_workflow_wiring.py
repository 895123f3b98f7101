"""Auctions start workflows for their catalogue events (NP_AUCTION_WORKFLOWS, on by
default): an outbid joins the per-auction ``outbid`` digest, an ending notice starts the
``auction_ending`` escalation — through ``notify(..., workflow=key)``, the engine campaigns
registers in deliveries (auctions never import campaigns). Real pipeline, real SMTP."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from auctions.models import Auction
from auctions.services import auction_send_ending_notice, auction_watch, bid_place
from campaigns.models import WorkflowDigest, WorkflowRun, WorkflowRunStep
from campaigns.services.workflows import step_execute, workflow_save
from campaigns.workflow_catalogue import CATALOGUE_WORKFLOWS
from deliveries.models import Notification, NotificationDelivery
from deliveries.services import delivery_send, inbox_mark_read
from realtime.models import RealTimeEvent

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def catalogue_workflows(db):
    """The shipped workflows (migration data; reinstalled if a flush removed them)."""
    for key, entry in CATALOGUE_WORKFLOWS.items():
        workflow_save(key=key, name=entry["name"], steps=entry["steps"])


def send_pending() -> None:
    pending = NotificationDelivery.objects.filter(status="pending").order_by("pk")
    for delivery_id in pending.values_list("pk", flat=True):
        delivery_send(delivery_id)


def outbid_runs(user):
    return WorkflowRun.objects.filter(user=user, workflow__key="outbid").order_by("pk")


def test_outbids_in_one_auction_become_one_digest_email(
    make_auction, bidders, channel_providers, smtp_server
):
    ann, ben, _ = bidders
    auction = make_auction("english")
    bid_place(auction_id=auction.pk, bidder=ann, amount="100")
    bid_place(auction_id=auction.pk, bidder=ben, amount="110")
    bid_place(auction_id=auction.pk, bidder=ann, amount="120")
    bid_place(auction_id=auction.pk, bidder=ben, amount="130")  # Ann outbid twice

    # no immediate outbid notice: two runs, the first collects, the second joined it
    assert not Notification.objects.filter(user=ann, title__startswith="You've been outbid")
    first, second = outbid_runs(ann)
    assert first.data["auction_id"] == str(auction.pk)
    assert (first.data["amount"], second.data["amount"]) == ("100.00 USD", "120.00 USD")
    assert second.decision == "digested"
    digest = WorkflowDigest.objects.get(user=ann)
    assert (digest.count, digest.digest_key) == (2, f"auction_id={auction.pk}")

    # the window closes: the leader sends once, listing both bids, in-app and by email
    leader = WorkflowRunStep.objects.get(run=first, index=0)
    assert step_execute(leader.pk, now=timezone.now() + timedelta(minutes=5, seconds=1)) == "ran"
    [note] = Notification.objects.filter(user=ann, title__startswith="You've been outbid")
    assert note.title == "You've been outbid (2)"
    assert note.message == (
        "New bids beat yours:\nYour 100.00 USD bid was beaten\nYour 120.00 USD bid was beaten"
    )
    send_pending()
    [mail] = smtp_server.messages_to(ann.email)
    assert mail["Subject"] == "You've been outbid (2)"
    # ... and a repeat of the leader's step sends nothing more
    step_execute(leader.pk, now=timezone.now() + timedelta(minutes=6))
    assert Notification.objects.filter(user=ann, title__startswith="You've been outbid").count() == 1


def test_digests_are_per_auction(make_auction, bidders):
    ann, ben, _ = bidders
    one, two = make_auction("english"), make_auction("english", title="Second")
    for auction in (one, two):
        bid_place(auction_id=auction.pk, bidder=ann, amount="100")
        bid_place(auction_id=auction.pk, bidder=ben, amount="110")
    keys = sorted(WorkflowDigest.objects.filter(user=ann).values_list("digest_key", "count"))
    assert keys == sorted([(f"auction_id={one.pk}", 1), (f"auction_id={two.pk}", 1)])


def test_the_private_outbid_event_still_goes_out_at_once(make_auction, bidders):
    ann, ben, _ = bidders
    auction = make_auction("english")
    bid_place(auction_id=auction.pk, bidder=ann, amount="100")
    bid_place(auction_id=auction.pk, bidder=ben, amount="110")
    event = RealTimeEvent.objects.get(event_type="outbid")
    assert (event.user_id, event.visibility) == (ann.pk, "private")
    assert event.expected_impacts["notifications"] == {"outbid": 1}


def test_proxy_exceeded_is_not_digested(make_auction, bidders):
    ann, ben, _ = bidders
    auction = make_auction("english")
    bid_place(auction_id=auction.pk, bidder=ann, amount="100", max_amount="150")
    bid_place(auction_id=auction.pk, bidder=ben, amount="140", max_amount="300")
    assert Notification.objects.filter(user=ann, event_type="proxy_bid_exceeded").count() == 1
    assert not outbid_runs(ann).exists()


def test_setting_off_sends_outbid_directly(make_auction, bidders, settings):
    settings.NP_AUCTION_WORKFLOWS = False
    ann, ben, _ = bidders
    auction = make_auction("english")
    bid_place(auction_id=auction.pk, bidder=ann, amount="100")
    bid_place(auction_id=auction.pk, bidder=ben, amount="110")
    assert Notification.objects.filter(user=ann, event_type="outbid").count() == 1
    assert not WorkflowRun.objects.exists()


def _ending_auction(make_auction, watcher):
    auction = make_auction("english", ends_at=timezone.now() + timedelta(minutes=4))
    auction_watch(auction_id=auction.pk, user=watcher)
    assert auction_send_ending_notice(auction_id=auction.pk) is True
    return Auction.objects.get(pk=auction.pk)


def test_ending_notice_escalates_to_email_when_unread(
    make_auction, make_user, channel_providers, smtp_server
):
    wes = make_user(email="wes@example.test", display_name="Wes")
    _ending_auction(make_auction, wes)
    # level one now: the in-app notice and an ack_required event to Wes's devices
    [note] = Notification.objects.filter(user=wes, event_type="auction_ending")
    assert [d.delivery_type for d in note.deliveries.all()] == ["in_app"]
    assert RealTimeEvent.objects.filter(
        user_id=wes.pk, ack_required=True, correlation_id=str(note.pk)
    ).exists()
    step = WorkflowRunStep.objects.get(run__user=wes, run__workflow__key="auction_ending")
    assert (step.state, step.decision) == ("waiting", "in_app_sent")
    # unread after 2 minutes: exactly one email
    step_execute(step.pk, now=timezone.now() + timedelta(minutes=2, seconds=1))
    send_pending()
    assert len(smtp_server.messages_to(wes.email)) == 1


def test_ending_notice_read_in_app_sends_no_email(
    make_auction, make_user, channel_providers, smtp_server
):
    wes = make_user(email="wes@example.test", display_name="Wes")
    _ending_auction(make_auction, wes)
    send_pending()  # the in-app notice reaches Wes's inbox, and he reads it
    note = Notification.objects.get(user=wes, event_type="auction_ending")
    assert inbox_mark_read(user=wes, notification_id=note.pk) is not None
    step = WorkflowRunStep.objects.get(run__user=wes, run__workflow__key="auction_ending")
    step_execute(step.pk, now=timezone.now() + timedelta(minutes=2, seconds=1))
    step.refresh_from_db()
    assert step.decision == "engaged"
    send_pending()
    assert smtp_server.messages_to(wes.email) == []
