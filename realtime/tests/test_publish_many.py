"""``publish_many``: many events in one statement, fanned out together after commit, with
the same guarantees as ``publish`` (sequence order, gapless replay, visibility)."""

from __future__ import annotations

import asyncio
import json

import pytest
from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer

from realtime import groups, selectors, services
from realtime.errors import RealtimeError
from realtime.models import RealTimeEvent

pytestmark = pytest.mark.django_db


def _receive_all(layer, channel: str) -> list[dict]:
    messages = []

    async def drain():
        while True:
            try:
                messages.append(await asyncio.wait_for(layer.receive(channel), 0.5))
            except TimeoutError:
                return

    async_to_sync(drain)()
    return messages


def _private(user, n: int, **extra) -> dict:
    return {
        "event_type": "notification.created",
        "category": "notification",
        "data": {"n": n},
        "visibility": "private",
        "user": user,
        "metadata": {"n": n},
        **extra,
    }


def test_events_get_consecutive_sequence_numbers_in_list_order_and_fan_out_after_commit(
    user, other_user, django_capture_on_commit_callbacks
):
    layer = get_channel_layer()
    mine = async_to_sync(layer.new_channel)()
    theirs = async_to_sync(layer.new_channel)()
    async_to_sync(layer.group_add)(groups.user_group(user.pk), mine)
    async_to_sync(layer.group_add)(groups.user_group(other_user.pk), theirs)
    try:
        with django_capture_on_commit_callbacks(execute=False) as callbacks:
            events = services.publish_many(
                [
                    _private(user, 0),
                    _private(other_user, 1),
                    _private(user, 2, priority="high"),
                    {
                        "event_type": "t",
                        "category": "system",
                        "data": {"n": 3},
                        "visibility": "public",
                        "topics": ["room.m"],
                    },
                ]
            )
        # given the transaction has not committed, nothing was sent: one callback for all
        assert len(callbacks) == 1 and all(e.published_at is None for e in events)
        callbacks[0]()
        to_me, to_them = _receive_all(layer, mine), _receive_all(layer, theirs)
    finally:
        async_to_sync(layer.group_discard)(groups.user_group(user.pk), mine)
        async_to_sync(layer.group_discard)(groups.user_group(other_user.pk), theirs)

    seqs = [e.sequence_number for e in events]
    assert seqs == list(range(seqs[0], seqs[0] + 4))  # one allocation, list order
    # private events only to their user, each stream in sequence order, once
    assert [m["seq"] for m in to_me] == [seqs[0], seqs[2]]
    assert [m["seq"] for m in to_them] == [seqs[1]]
    assert {m["group"] for m in to_me} == {groups.user_group(user.pk)}
    # the same frame publish() would send, built from the stored row
    stored = RealTimeEvent.objects.get(pk=events[2].pk)
    frame = json.loads(to_me[1]["text"])
    assert frame == services.event_frame(stored) | {"generated_at": frame["generated_at"]}
    assert frame["priority"] == "high" and frame["data"] == {"n": 2}
    # every column as the ORM would have written it
    assert (stored.generated_at, stored.user_id, stored.event_metadata) == (
        events[2].generated_at,
        user.pk,
        {"n": 2},
    )
    assert (stored.retention_policy, stored.target_audience, stored.created_at is not None) == (
        "standard",
        None,
        True,
    )
    assert to_me[1]["n"] == len(to_me[1]["text"].encode())
    # bookkeeping written for every row; a group nobody is in is not recorded as sent
    for event in events:
        event.refresh_from_db()
        assert event.published_at is not None
    assert events[0].delivery_status == {
        "channel_layer": {groups.user_group(user.pk): {"status": "sent"}}
    }
    assert events[3].delivery_status == {
        "channel_layer": {"topic.room.m.pub": {"status": "no_members"}}
    }


def test_replay_sees_the_group_in_order_without_gap_and_only_what_each_user_may_see(
    user, other_user
):
    start = services.publish(
        event_type="t", category="system", data={}, visibility="public", topics=["r"]
    ).sequence_number
    events = services.publish_many(
        [_private(user, n) for n in range(3)] + [_private(other_user, 3)]
    )
    after = services.publish(
        event_type="t", category="system", data={}, visibility="private", user=user
    )

    def seqs(user_id):
        return [
            e.sequence_number
            for e in selectors.event_list_since(
                user_id=user_id, topics=[], include_private=True, since=start, limit=100
            )
        ]

    assert seqs(user.pk) == [e.sequence_number for e in events[:3]] + [after.sequence_number]
    assert seqs(other_user.pk) == [events[3].sequence_number]
    assert after.sequence_number == events[-1].sequence_number + 1


def test_one_bad_event_writes_none_of_the_group(user):
    with pytest.raises(RealtimeError) as error:
        services.publish_many([_private(user, 0), _private(None, 1)])
    assert error.value.code == "USER_REQUIRED"
    assert RealTimeEvent.objects.count() == 0


def test_an_empty_group_writes_nothing():
    assert services.publish_many([]) == []
    assert services.fan_out_many([]) == []
    assert RealTimeEvent.objects.count() == 0


def test_an_event_to_publish_and_the_keyword_form_write_the_same_row(user):
    # given: one event as an EventToPublish, and the same fields as keywords and as a dict
    fields = _private(user, 7, priority="high", correlation_id="c-7")
    event = services.EventToPublish(**fields)

    # when: it is published each way
    one = services.publish_event(event)
    two = services.publish(**fields)
    three, four = services.publish_many([event, fields])

    # then: the rows differ only in id, sequence number and time
    def frame(row):
        stored = RealTimeEvent.objects.get(pk=row.pk)
        return {
            k: v
            for k, v in services.event_frame(stored).items()
            if k not in ("id", "seq", "generated_at")
        }

    assert frame(one) == frame(two) == frame(three) == frame(four)
    assert frame(one)["priority"] == "high" and frame(one)["correlation_id"] == "c-7"
    assert [three.sequence_number, four.sequence_number] == [
        two.sequence_number + 1,
        two.sequence_number + 2,
    ]


def test_the_transactions_pending_foreign_key_checks_run_before_the_ordering_lock(user):
    """A transaction that wrote many rows before publishing (an auction close fans out to
    10,000 watchers) has their deferred foreign-key checks run before it takes the
    event-ordering lock, not at its commit while every other publish waits: a row that
    breaks one fails the publish itself, and nothing is published."""
    import uuid

    from django.db import IntegrityError, transaction

    from deliveries.models import Notification, NotificationDelivery

    with pytest.raises(IntegrityError, match="foreign key"), transaction.atomic():
        NotificationDelivery.objects.create(
            notification_id=uuid.uuid4(), delivery_type="email", recipient="a@example.test",
            recipient_type="email", provider_type="email", provider_priority=1, status="pending",
        )
        # the insert alone is fine until the commit: the key is deferred
        services.publish_many([_private(user, 1)])
    assert not RealTimeEvent.objects.exists()
    assert not NotificationDelivery.objects.exists()
    # the keys are deferred again after the publish: a parent written after its child in
    # the same transaction still commits
    later = uuid.uuid4()
    with transaction.atomic():
        services.publish_many([_private(user, 2)])
        NotificationDelivery.objects.create(
            notification_id=later, delivery_type="email", recipient="a@example.test",
            recipient_type="email", provider_type="email", provider_priority=1, status="pending",
        )
        Notification.objects.create(
            pk=later, user=user, notification_type="email", category="auction",
            priority="normal", title="Later", message="parent", delivery_channels=["email"],
        )
    assert NotificationDelivery.objects.filter(notification_id=later).exists()
    assert RealTimeEvent.objects.count() == 1
