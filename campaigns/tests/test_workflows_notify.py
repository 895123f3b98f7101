"""``notify(user, ..., workflow=key)``: deliveries delegates to the engine campaigns
registers at start-up (deliveries.workflows), with the idempotency key passed through."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

import pytest
from django.core.exceptions import ImproperlyConfigured
from django.utils import timezone

from campaigns.models import WorkflowRun, WorkflowRunStep
from campaigns.services.workflows import step_execute, workflow_save
from campaigns.services.workflows.hooks import notify_workflow_trigger
from deliveries import workflows
from deliveries.errors import NotifyError
from deliveries.models import Notification
from deliveries.services import notify
from deliveries.types import Recipient

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("catalogue")]

DIGEST = [
    {"type": "digest", "window": "10s", "key": "auction_id", "item": "{{ amount }}"},
    {
        "type": "channel",
        "channel": "in_app",
        "title": "{{ digest.count }} bids",
        "message": "{{ digest_items }}",
    },
]


def test_notify_with_workflow_starts_a_run_and_sends_nothing_yet(user):
    workflow_save(key="d", steps=DIGEST)
    result = notify(user, workflow="d", context={"auction_id": "7", "amount": "$5"})
    assert result.notification is None and result.deliveries == [] and result.created
    assert result.workflow is not None and result.workflow.workflow == "d"
    [run] = WorkflowRun.objects.all()
    assert result.workflow.run_ids == [run.pk]
    assert run.user_id == user.pk and run.data == {"auction_id": "7", "amount": "$5"}
    assert not Notification.objects.exists()


def test_notify_workflow_digests_then_sends_once(user):
    workflow_save(key="d", steps=DIGEST)
    for n in range(3):
        notify(user, workflow="d", context={"auction_id": "7", "amount": f"${n}"})
    leader = WorkflowRunStep.objects.get(decision="collecting")
    assert step_execute(leader.pk, now=timezone.now() + timedelta(seconds=11)) == "ran"
    [notification] = Notification.objects.all()
    assert (notification.title, notification.message) == ("3 bids", "$0\n$1\n$2")


def test_idempotency_key_passes_through(user):
    workflow_save(key="d", steps=DIGEST)
    first = notify(user, workflow="d", context={"auction_id": "7"}, idempotency_key="bid:1")
    again = notify(user, workflow="d", context={"auction_id": "7"}, idempotency_key="bid:1")
    assert first.created and not again.created
    assert again.workflow is not None and again.workflow.run_ids == first.workflow.run_ids
    assert WorkflowRun.objects.count() == 1


def test_links_become_trigger_data(user, other_user):
    from auctions.services import auction_create

    now = timezone.now()
    auction = auction_create(
        seller=other_user,
        auction_type="english",
        title="Watch",
        starts_at=now + timedelta(hours=1),
        ends_at=now + timedelta(hours=2),
        starting_price=Decimal("10.00"),
        min_increment=Decimal("1.00"),
        items=[{"title": "Omega"}],
    )
    workflow_save(key="d", steps=DIGEST)
    notify(user, workflow="d", context={"amount": "$1"}, auction=auction, action_url="/a/1")
    run = WorkflowRun.objects.get()
    assert run.data["auction_id"] == str(auction.pk)
    assert run.data["action_url"] == "/a/1"


def test_unknown_workflow_is_a_notify_error_naming_the_field(user):
    with pytest.raises(NotifyError) as err:
        notify(user, workflow="nope", context={})
    assert (err.value.code, err.value.field, err.value.status) == (
        "WORKFLOW_NOT_FOUND",
        "workflow",
        404,
    )
    assert not WorkflowRun.objects.exists()


@pytest.mark.parametrize("field", ["template_key", "title", "channels"])
def test_step_fields_are_refused_with_a_workflow(user, field):
    workflow_save(key="d", steps=DIGEST)
    value = ["in_app"] if field == "channels" else "x"
    with pytest.raises(NotifyError) as err:
        notify(user, workflow="d", **{field: value})
    assert err.value.field == field
    assert not WorkflowRun.objects.exists()


def test_address_only_recipient_is_refused(user):
    workflow_save(key="d", steps=DIGEST)
    with pytest.raises(NotifyError) as err:
        notify(Recipient(email="a@example.com"), workflow="d")
    assert err.value.field == "user_id"


def test_without_a_registered_engine_it_raises_clearly(user):
    workflow_save(key="d", steps=DIGEST)
    workflows.register(None)
    try:
        with pytest.raises(ImproperlyConfigured, match="no workflow engine registered"):
            notify(user, workflow="d")
    finally:
        workflows.register(notify_workflow_trigger)
    assert not WorkflowRun.objects.exists()
    assert workflows.registered()
