"""``LOG_FORMAT=json``: a real send through a real Celery worker logs JSON lines, and every
line logged while a delivery is sent (the pipeline's own, and a provider adapter's in its
sender thread) carries the delivery's and its notification's ids."""

from __future__ import annotations

import io
import json
import logging
from logging.config import dictConfig

import pytest
from django.conf import settings

from deliveries.models import NotificationDelivery
from deliveries.services import delivery_send, notify
from deliveries.services.sending import deliveries_send_batch
from notifyplatform.logs import ContextFilter, PlainFormatter, log_fields, logging_config

from .conftest import wait_for

pytestmark = pytest.mark.usefixtures("catalogue")


@pytest.fixture
def console_sms(db):
    """SMS through the console provider: it logs each message (from a sender thread)."""
    from providers.models import Provider

    return Provider.objects.create(
        provider_name="console-sms", provider_type="sms", provider_class="console", priority=10
    )


def json_lines(text: str) -> list[dict]:
    """The log's JSON lines (the worker's startup banner is printed, not logged)."""
    return [json.loads(line) for line in text.splitlines() if line.startswith("{")]


@pytest.mark.e2e
@pytest.mark.django_db(transaction=True)
def test_a_send_through_a_worker_logs_json_lines_with_both_ids(
    make_user, pipeline_providers, console_sms, start_worker, purge_queue
):
    # Given a worker logging JSON
    worker = start_worker(LOG_FORMAT="json", LOG_LEVEL="INFO")
    user = make_user(email="json@example.test", phone="+14155550100")
    # When a notification goes out by email (SMTP) and sms (the console provider)
    result = notify(user, title="Lot sold", message="Vintage Watch", channels=["email", "sms"])
    ids = {d.pk for d in result.deliveries}
    wait_for(
        lambda: (
            set(
                NotificationDelivery.objects.filter(pk__in=ids, status="sent").values_list(
                    "pk", flat=True
                )
            )
            == ids
        ),
        timeout=60,
    )
    notification_id = str(result.notification.pk)

    # Then the worker's log lines are JSON, and each delivery has its "sent" line with both ids
    def logged_both() -> list[dict] | None:
        found = json_lines(worker.log.read_text())
        return found if sum(1 for r in found if r.get("outcome")) >= 2 else None

    lines = wait_for(logged_both, timeout=30)
    assert all({"time", "level", "logger", "message"} <= set(r) for r in lines)
    recorded = {r["delivery_id"]: r for r in lines if r.get("outcome")}
    assert set(recorded) == ids
    for delivery_id, record in recorded.items():
        assert record["notification_id"] == notification_id
        assert record["message"].startswith(f"delivery {delivery_id} sent")
        assert (record["logger"], record["level"]) == ("deliveries.services.sending", "INFO")
    # and the console provider's own line, logged in its sender thread, carries them too
    [console] = [r for r in lines if r["logger"] == "providers.console"]
    sms = next(d for d in result.deliveries if d.delivery_type == "sms")
    assert (console["delivery_id"], console["notification_id"]) == (sms.pk, notification_id)


def _send_one(delivery_id: int) -> str:
    return delivery_send(delivery_id).outcome


def _send_batch(delivery_id: int) -> str:  # the worker's bulk path: asyncio tasks, threads
    [summary] = deliveries_send_batch([delivery_id])
    return summary.outcome


@pytest.mark.parametrize("send", [_send_one, _send_batch], ids=["one", "batch"])
def test_a_send_in_process_puts_both_ids_on_the_providers_lines(user, console_sms, send):
    # Given this process logging JSON (settings.LOGGING for LOG_FORMAT=json) into a buffer
    stream = io.StringIO()
    config = logging_config(log_format="json", level="INFO")
    config["handlers"]["console"]["stream"] = stream
    dictConfig(config)
    user.phone = "+14155550100"
    user.save()
    try:
        result = notify(user, title="Hi", message="there", channels=["sms"])
        [delivery] = result.deliveries
        # When it is sent (on the one-delivery path, or the batch path)
        assert send(delivery.pk) == "sent"
    finally:
        dictConfig(settings.LOGGING)
    # Then both the provider's line and the pipeline's carry the two ids
    lines = json_lines(stream.getvalue())
    by_logger = {r["logger"]: r for r in lines}
    for name in ("providers.console", "deliveries.services.sending"):
        assert by_logger[name]["delivery_id"] == delivery.pk, lines
        assert by_logger[name]["notification_id"] == str(result.notification.pk)


def test_plain_format_appends_the_ids_and_json_is_refused_when_misspelt():
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(PlainFormatter("%(levelname)s %(message)s"))
    handler.addFilter(ContextFilter())
    logger = logging.getLogger("np.test.plain")
    logger.addHandler(handler)
    logger.propagate = False
    try:
        with log_fields(delivery_id=7, notification_id="abc"):
            logger.warning("inside")
        logger.warning("outside")
    finally:
        logger.removeHandler(handler)
    assert stream.getvalue().splitlines() == [
        "WARNING inside [notification_id=abc delivery_id=7]",
        "WARNING outside",
    ]
    with pytest.raises(ValueError, match="LOG_FORMAT='jsn'"):
        logging_config(log_format="jsn", level="INFO")


@pytest.mark.e2e
@pytest.mark.django_db(transaction=True)
def test_a_worker_in_plain_format_puts_the_ids_after_the_message(
    make_user, console_sms, start_worker, purge_queue
):
    # Given a worker with the default (plain) format, at INFO
    worker = start_worker(LOG_LEVEL="INFO")
    user = make_user(email="plain@example.test", phone="+14155550100")
    # When an sms goes out through the console provider
    result = notify(user, title="Lot sold", message="Vintage Watch", channels=["sms"])
    [delivery] = result.deliveries
    ids = f"[notification_id={result.notification.pk} delivery_id={delivery.pk}]"
    # Then the pipeline's line and the provider's both end with the two ids
    wanted = (f"deliveries.services.sending: delivery {delivery.pk} sent (console-sms) {ids}",
              f"providers.console: console sms delivery {delivery.pk} to")  # fmt: skip

    def logged() -> bool:
        text = worker.log.read_text()
        return all(w in text for w in wanted) and any(
            wanted[1] in line and line.endswith(ids) for line in text.splitlines()
        )

    wait_for(logged, timeout=60)
