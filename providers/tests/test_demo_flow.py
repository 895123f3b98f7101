"""The ``make run`` demo flow: the seed_demo providers, the provider sandbox started as the
launcher starts it (a subprocess whose receipts go to the platform) and the credentials
the launcher puts in the environment — a demo user's email and SMS go pending → sent →
delivered once the sandbox's signed receipts arrive."""

from __future__ import annotations

import os
import socket
import subprocess
import time
from collections.abc import Iterator

import pytest

from auctions.tests.fixtures import template_catalogue  # noqa: F401 - autouse: catalogue rows
from notifyplatform.launcher.appenv import sandbox_argv
from notifyplatform.launcher.demoenv import DEMO_CREDENTIALS, demo_env
from notifyplatform.testing import free_port


def _wait_for_port(port: int, proc: subprocess.Popen, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"sandbox exited with {proc.returncode}")
        with socket.socket() as sock:
            sock.settimeout(0.2)
            if sock.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.05)
    raise RuntimeError(f"sandbox did not listen on {port} within {timeout}s")


@pytest.fixture
def demo_sandbox(live_server) -> Iterator[str]:
    """``python -m sandbox`` with the launcher's argv, receipts to the live server."""
    port = free_port()
    proc = subprocess.Popen(
        sandbox_argv(port, live_server.url),
        env=dict(os.environ),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        _wait_for_port(port, proc)
        yield f"http://127.0.0.1:{port}"
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


@pytest.fixture
def demo_environment(demo_sandbox, live_server, monkeypatch, settings, tmp_path) -> str:
    """The environment ``run`` gives its children: demo credentials, NP_SANDBOX_URL and the
    public base URL (Twilio's StatusCallback) of the platform."""
    for name in [*DEMO_CREDENTIALS, "NP_SANDBOX_URL", "SENDGRID_WEBHOOK_PUBLIC_KEY"]:
        monkeypatch.delenv(name, raising=False)
    added, kept = demo_env(os.environ, sandbox_url=demo_sandbox, rundir=tmp_path)
    assert kept == []
    for name, value in added.items():
        monkeypatch.setenv(name, value)
    settings.NP_PUBLIC_BASE_URL = live_server.url
    return demo_sandbox


def _wait_for_status(delivery_id: int, wanted: str, timeout: float = 20):
    from deliveries.models import NotificationDelivery

    deadline = time.monotonic() + timeout
    while True:
        delivery = NotificationDelivery.objects.get(pk=delivery_id)
        if delivery.status == wanted or time.monotonic() > deadline:
            return delivery
        time.sleep(0.05)


@pytest.mark.django_db(transaction=True)
def test_demo_user_email_and_sms_go_pending_sent_delivered(demo_environment):
    from deliveries.services import delivery_send, notify
    from demo.seed import seed_demo
    from providers.models import Provider
    from users.models import User

    # Given the demo data set, its providers pointed at the running sandbox
    seed_demo()
    assert Provider.objects.get(provider_name="mailgun").configuration["api_base_url"] == (
        demo_environment
    )
    assert Provider.objects.get(provider_name="twilio").configuration["api_base_url"] == (
        demo_environment
    )
    carol = User.objects.get(email="carol@example.com")

    # When the demo user is notified by email and SMS and the sends run
    result = notify(
        carol,
        title="Your story has a new chapter",
        message="Bob added chapter 4 to The Lighthouse.",
        channels=["email", "sms"],
    )
    by_channel = {d.delivery_type: d for d in result.deliveries}
    assert {c: d.status for c, d in by_channel.items()} == {"email": "pending", "sms": "pending"}
    outcomes = {c: delivery_send(d.pk).outcome for c, d in by_channel.items()}

    # Then both were sent by the sandbox-backed providers...
    assert outcomes == {"email": "sent", "sms": "sent"}
    email = _wait_for_status(by_channel["email"].pk, "delivered")
    sms = _wait_for_status(by_channel["sms"].pk, "delivered")
    assert (email.provider_name, sms.provider_name) == ("mailgun", "twilio")
    assert email.sent_at is not None and sms.sent_at is not None
    # ...and the signed receipts moved them to delivered
    assert email.status == "delivered"
    assert sms.status == "delivered"
    assert email.delivered_at is not None and sms.delivered_at is not None
    assert email.delivery_metadata["receipts"][-1]["event"] == "delivered"
    assert sms.delivery_metadata["receipts"][-1]["event"] == "delivered"
    assert [a["provider_name"] for a in email.provider_response["attempts"]] == ["mailgun"]
    assert [a["provider_name"] for a in sms.provider_response["attempts"]] == ["twilio"]


def test_demo_env_keeps_variables_already_set(tmp_path):
    environ = {"TWILIO_AUTH_TOKEN": "my-real-token", "WEBPUSH_VAPID_PRIVATE_KEY": "mine"}

    added, kept = demo_env(environ, sandbox_url="http://127.0.0.1:8001", rundir=tmp_path)
    again, _ = demo_env({}, sandbox_url="http://127.0.0.1:8001", rundir=tmp_path)

    assert sorted(kept) == ["TWILIO_AUTH_TOKEN", "WEBPUSH_VAPID_PRIVATE_KEY"]
    assert "TWILIO_AUTH_TOKEN" not in added
    assert added["TWILIO_ACCOUNT_SID"] == "AC00000000000000000000000000000001"
    assert added["MAILGUN_API_KEY"] == "key-sandbox-mailgun-api-key"
    assert added["NP_SANDBOX_URL"] == "http://127.0.0.1:8001"
    assert added["WEBHOOK_SIGNING_SECRET"].startswith("whsec_")
    # generated secrets are kept in the run dir: the same on the next start
    assert again["WEBHOOK_SIGNING_SECRET"] == added["WEBHOOK_SIGNING_SECRET"]
    assert "NP_WEBHOOK_ALLOWED_HOSTS" not in added


def test_run_finds_the_provider_sandbox_it_starts():
    """``make run`` starts the sandbox only when it finds it: after a move of the package
    the launcher must still find it and its command line must name an importable module."""
    from importlib.util import find_spec

    from notifyplatform.launcher.appenv import _sandbox_available

    argv = sandbox_argv(8001, None)

    assert _sandbox_available()
    assert argv[1] == "-m"
    assert find_spec(f"{argv[2]}.__main__") is not None
