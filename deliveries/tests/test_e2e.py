"""End to end: real Celery worker subprocesses, real SMTP/HTTP receivers, real PostgreSQL and
Redis — including a worker SIGKILLed mid-run and a broker that goes away."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
from pathlib import Path

import httpx
import pytest
from django.db import connection

from deliveries.models import Notification, NotificationDelivery
from deliveries.services import deliveries_sweep, notify, notify_many
from notifyplatform.testing import free_port
from users.services import token_create

from .conftest import BASE_DIR, wait_for

pytestmark = [pytest.mark.e2e, pytest.mark.usefixtures("catalogue", "purge_queue")]


def _statuses(ids) -> dict[str, int]:
    counts: dict[str, int] = {}
    for status in NotificationDelivery.objects.filter(pk__in=ids).values_list("status", flat=True):
        counts[status] = counts.get(status, 0) + 1
    return counts


@pytest.fixture
def e2e_db(transactional_db):
    """Rows must be committed for the worker (another process) to see them."""


def test_email_webhook_and_in_app_arrive(
    e2e_db,
    broker,
    user,
    pipeline_providers,
    smtp_server,
    webhook_receiver,
    start_worker,
    api_client,
):
    sink, _port = smtp_server
    start_worker()
    # when a notification goes out through three channels
    result = notify(
        user,
        template_key="new_bid",
        context={
            "auction_title": "Clocks",
            "bidder": "Bob",
            "amount": "$20",
            "item_title": "Cuckoo clock",
        },
        channels=["email", "webhook", "in_app"],
        webhook_url=webhook_receiver.url,
    )
    ids = [d.pk for d in result.deliveries]
    wait_for(lambda: _statuses(ids) == {"sent": 3}, timeout=60)

    # then the SMTP server received the rendered mail
    [mail] = sink.messages
    assert mail["Subject"] == "New bid on Clocks"
    assert mail["To"] == "alice@example.test"
    bodies = {
        part.get_content_type(): part.get_payload(decode=True).decode()
        for part in mail.walk()
        if not part.is_multipart()
    }
    message, footer = bodies["text/plain"].replace("\r\n", "\n").split("\n-- \n")
    assert message.strip() == "Bob bid $20 on Cuckoo clock"
    assert footer.startswith("Manage your notification preferences: http://127.0.0.1:8000/p/")
    assert "Bob bid $20 on Cuckoo clock" in bodies["text/html"]
    # and the receiver verified the webhook signature
    assert webhook_receiver.bad_signatures == 0
    assert [a["webhook_id"] for a in webhook_receiver.arrivals] == [f"delivery-{ids[1]}"]
    # and the inbox shows it
    api_client.force_authenticate(user)
    inbox = api_client.get("/api/v1/inbox/").json()["results"]
    assert [(n["id"], n["title"], n["is_read"]) for n in inbox] == [
        (str(result.notification.pk), "New bid on Clocks", False)
    ]
    result.notification.refresh_from_db()
    assert result.notification.status == "sent"
    # and it was published to the user's private real-time stream
    from realtime.models import RealTimeEvent

    event = wait_for(
        lambda: RealTimeEvent.objects.filter(correlation_id=str(result.notification.pk)).first(),
        timeout=30,
    )
    assert (event.event_type, event.event_category, event.visibility, event.user_id) == (
        "notification.created",
        "notification",
        "private",
        user.pk,
    )
    assert event.event_data["title"] == "New bid on Clocks"
    if broker is not None:  # RabbitMQ: the send went through its quorum queue, now empty
        assert broker.is_quorum(broker.queues["NP_QUEUE_SEND"])
        assert broker.depth(broker.queues["NP_QUEUE_SEND"]) == 0


def test_same_idempotency_key_from_two_threads_sends_once(
    e2e_db, user, staff_user, pipeline_providers, webhook_receiver, start_worker
):
    start_worker()
    from rest_framework.test import APIClient

    barrier = threading.Barrier(2)
    responses = []

    def post() -> None:
        client = APIClient()
        client.force_authenticate(staff_user)
        barrier.wait()
        try:
            responses.append(
                client.post(
                    "/api/v1/notifications/",
                    {
                        "user_id": str(user.pk),
                        "title": "Once",
                        "message": "only once",
                        "channels": ["webhook"],
                        "webhook_url": webhook_receiver.url,
                    },
                    format="json",
                    HTTP_IDEMPOTENCY_KEY="same-key",
                )
            )
        finally:
            connection.close()

    threads = [threading.Thread(target=post) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert sorted(r.status_code for r in responses) == [200, 201]
    assert len({r.json()["notification"]["id"] for r in responses}) == 1
    assert Notification.objects.count() == 1
    [delivery] = NotificationDelivery.objects.all()
    wait_for(lambda: _statuses([delivery.pk]) == {"sent": 1}, timeout=60)
    assert webhook_receiver.by_delivery() == {delivery.pk: 1}


def test_worker_killed_mid_run_every_delivery_sent_exactly_once(
    e2e_db, broker, make_user, pipeline_providers, webhook_receiver, start_worker, settings
):
    # given 1,000 webhook deliveries, and a receiver that stops answering after 300 so the
    # kill lands while sends are in flight (before the receiver acknowledged them)
    settings.NP_SWEEP_GRACE_SECONDS = 5
    # the kill is under test, not a slow answer: a read timeout on a loaded CI machine would
    # make the first attempt ambiguous (it arrived, the client gave up) and its retry arrive
    # twice at this receiver, which counts deliveries rather than deduplicating webhook-ids
    pipeline_providers["webhook"].configuration = {
        **pipeline_providers["webhook"].configuration, "timeout": 60
    }
    pipeline_providers["webhook"].save(update_fields=["configuration"])
    user = make_user()
    results = notify_many(
        [user] * 1000,
        title="Crash",
        message="one of 1,000",
        channels=["webhook"],
        webhook_url=webhook_receiver.url,
    )
    ids = [result.deliveries[0].pk for result in results]
    webhook_receiver.hold_after = 300
    # a short lease so the killed worker's rows come back soon (a live worker renews the
    # leases of its sends in flight, so a slow batch on a loaded CI machine keeps them)
    lease = "10"
    worker = start_worker(NP_DELIVERY_LEASE_SECONDS=lease)
    wait_for(
        lambda: (
            webhook_receiver.held >= 1
            # every request the receiver read is held or answered: none is between
            # (answered after the kill, it would count although its sender never knew)
            and webhook_receiver.busy == webhook_receiver.held
            and _statuses(ids).get("sent", 0) == len(webhook_receiver.arrivals)
        ),
        timeout=120,
    )
    in_flight = webhook_receiver.held

    # when the worker is SIGKILLed, the held requests find their client gone, and a new
    # worker starts while the sweeper runs
    worker.kill()
    webhook_receiver.release()
    wait_for(lambda: webhook_receiver.busy == 0, timeout=30)
    assert webhook_receiver.dropped >= webhook_receiver.held >= in_flight  # held: never answered
    start_worker(NP_DELIVERY_LEASE_SECONDS=lease)

    def all_sent() -> bool:
        deliveries_sweep()
        return _statuses(ids) == {"sent": 1000}

    wait_for(all_sent, timeout=240, interval=1)

    # then every delivery is sent and arrived exactly once, signature intact
    arrivals = webhook_receiver.by_delivery()
    assert set(arrivals) == set(ids)
    twice = [pk for pk, count in arrivals.items() if count > 1]
    # on failure, how the twice-arrived ones were recorded (retries, attempts, leases)
    assert not twice, [
        (d.pk, d.retry_count, (d.delivery_metadata or {}).get("decision"),
         (d.delivery_metadata or {}).get("lease_expired"),
         [(a.get("error_code"), a.get("error")) for a in d.provider_response["attempts"]])
        for d in NotificationDelivery.objects.filter(pk__in=twice[:3])
    ]
    assert len(webhook_receiver.arrivals) == 1000
    assert webhook_receiver.bad_signatures == 0
    # and the sends cut off by the kill went through the lease-expiry path
    assert in_flight >= 1
    assert (
        NotificationDelivery.objects.filter(
            pk__in=ids, delivery_metadata__lease_expiries__gte=1
        ).count()
        >= in_flight
    )


class PrivateRedis:
    def __init__(self, port: int, workdir: Path) -> None:
        self.port = port
        self.workdir = workdir
        self.process: subprocess.Popen | None = None

    def start(self) -> None:
        self.process = subprocess.Popen(
            [
                "redis-server",
                "--port",
                str(self.port),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
                "--dir",
                str(self.workdir),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        wait_for(self.ping, timeout=20)

    def ping(self) -> bool:
        import redis

        try:
            return bool(redis.Redis(port=self.port, socket_connect_timeout=0.5).ping())
        except redis.RedisError:
            return False

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.terminate()
            self.process.wait(20)


@pytest.fixture
def private_redis(tmp_path):
    server = PrivateRedis(free_port(), tmp_path)
    server.start()
    yield server
    server.stop()


def test_broker_down_api_still_answers_201_and_all_sent_once_after(
    e2e_db,
    user,
    staff_user,
    pipeline_providers,
    smtp_server,
    webhook_receiver,
    start_worker,
    private_redis,
    settings,
    tmp_path,
):
    sink, _port = smtp_server
    broker = f"redis://127.0.0.1:{private_redis.port}/0"
    _token, raw = token_create(user=staff_user, name="backend", is_service=True)
    db = settings.DATABASES["default"]
    env = {
        **os.environ,
        "DATABASE_URL": f"postgres://{db['USER']}@{db['HOST']}:{db['PORT']}/{db['NAME']}",
        "REDIS_URL": broker,
        "CELERY_BROKER_URL": broker,
        "NP_WEBHOOK_ALLOWED_HOSTS": "127.0.0.1",
        "NP_RUN_DIR": str(tmp_path),
        "SECRET_KEY": settings.SECRET_KEY,
    }
    port = free_port()
    api_log = (tmp_path / "api.log").open("wb")
    api = subprocess.Popen(
        [
            sys.executable,
            "manage.py",
            "runserver",
            f"127.0.0.1:{port}",
            "--noreload",
            "--skip-checks",
        ],
        cwd=BASE_DIR,
        env=env,
        stdout=api_log,
        stderr=subprocess.STDOUT,
    )
    try:
        base = f"http://127.0.0.1:{port}"
        wait_for(lambda: _up(base), timeout=30)
        start_worker(
            beat=True,
            REDIS_URL=broker,
            CELERY_BROKER_URL=broker,
            NP_SWEEP_INTERVAL_SECONDS="1",
            NP_SWEEP_GRACE_SECONDS="2",
        )

        # given the broker is down
        private_redis.stop()
        # when notifications are created through the API
        created = []
        with httpx.Client(
            base_url=base, timeout=30, headers={"Authorization": f"Bearer {raw}"}
        ) as client:
            for n in range(5):
                response = client.post(
                    "/api/v1/notifications/",
                    json={
                        "user_id": str(user.pk),
                        "title": f"Down {n}",
                        "message": "still here",
                        "channels": ["email", "webhook"],
                        "webhook_url": webhook_receiver.url,
                    },
                )
                # then the API still answers 201 and the rows wait in the outbox
                assert response.status_code == 201, response.text
                created += [d["id"] for d in response.json()["deliveries"]]
        assert _statuses(created) == {"pending": 10}

        # when the broker is back, the sweeper (beat in the worker) re-enqueues them
        private_redis.start()
        wait_for(lambda: _statuses(created) == {"sent": 10}, timeout=120, interval=0.5)
    finally:
        api.terminate()
        api.wait(20)
        api_log.close()

    # then each was delivered exactly once
    email_ids = set(created[0::2])
    webhook_ids = set(created[1::2])
    assert sink.by_delivery() == {pk: 1 for pk in email_ids}
    assert webhook_receiver.by_delivery() == {pk: 1 for pk in webhook_ids}


def _up(base: str) -> bool:
    try:
        return httpx.get(base + "/api/v1/inbox/", timeout=1).status_code in (401, 403)
    except httpx.HTTPError:
        return False
