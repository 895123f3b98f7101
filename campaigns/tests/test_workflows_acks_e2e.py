"""Escalation and real-time acks end to end: a real daphne server, two real websocket
devices of one user, a real Celery worker with beat, the real SMTP sink."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator

import pytest
from asgiref.sync import sync_to_async
from django.db import connections

from campaigns.models import WorkflowRunStep
from campaigns.services.workflows import workflow_save, workflow_trigger
from deliveries.tests.conftest import wait_for
from realtime.models import WebsocketConnection
from realtime.tests.conftest import DaphneServer, run, ws_connect
from users.services import token_create

pytestmark = [pytest.mark.e2e, pytest.mark.usefixtures("catalogue", "purge_queue")]


@pytest.fixture
def e2e_db(transactional_db):
    """Rows must be committed for the worker and daphne (other processes) to see them."""


@pytest.fixture
def daphne(e2e_db) -> Iterator[DaphneServer]:
    server = DaphneServer()
    server.start()
    yield server
    # let the server record the disconnects before the tables are truncated
    wait_for(
        lambda: not WebsocketConnection.objects.exclude(connection_status="disconnected").exists(),
        timeout=20,
    )
    server.stop()


async def _escalation_event(client) -> dict:
    while True:
        frame = await client.recv_type("event", skip=("ping",), timeout=15)
        if frame["event_type"] == "workflow.escalation":
            return frame


def test_ack_on_one_device_cancels_the_escalation_on_all(
    e2e_db, daphne, user, pipeline_providers, smtp_server, start_worker
):
    sink, _port = smtp_server
    workflow_save(
        key="esc-ack",
        steps=[
            {
                "type": "escalate",
                "in_app": {"title": "Ending", "message": "{{ auction }} ends"},
                "email_after": "5s",
                "email": {"title": "Ending (email)", "message": "{{ auction }} ends"},
                "ack_timeout": 1,
            }
        ],
    )
    start_worker(beat=True)
    token = token_create(user=user, name="device")[1]
    trigger = sync_to_async(workflow_trigger)

    async def scenario():
        async with (
            ws_connect(daphne, token=token) as phone,
            ws_connect(daphne, token=token) as laptop,
        ):
            result = await trigger("esc-ack", recipients=[user.pk], data={"auction": "Clocks"})
            on_phone = await _escalation_event(phone)
            on_laptop = await _escalation_event(laptop)
            # when the user acknowledges on the phone
            await phone.send({"type": "ack", "event_id": on_phone["id"]})
            # (the in-app notification.created may come before the reply: it is published
            # when the step's notify() commits)
            acked = await phone.recv_type("acked", skip=("ping", "event"))
            # then the laptop stops getting it (unacked, it came again every second)
            await asyncio.sleep(2.5)
            later = [
                f
                for f in await laptop.barrier()
                if f["type"] == "event" and f["id"] == on_phone["id"]
            ]
        # the thread that ran the trigger keeps a connection: close it (else the test
        # database cannot be dropped at the end of the session)
        await sync_to_async(connections.close_all)()
        return result.runs[0], on_phone, on_laptop, acked, later

    run_row, on_phone, on_laptop, acked, later = run(scenario())
    assert on_phone["id"] == on_laptop["id"]
    assert on_phone["ack_required"] is True
    assert acked["event_id"] == on_phone["id"] and acked["duplicate"] is False
    assert later == []
    # and the email level never goes out: the escalation ended at the ack
    step = wait_for(
        lambda: WorkflowRunStep.objects.filter(run=run_row, state="done").first(), timeout=30
    )
    time.sleep(1)
    assert (step.decision, step.detail["engaged"]) == ("engaged", "acked")
    assert sink.messages == []
    assert on_phone["correlation_id"] == step.notification_ids[0]
