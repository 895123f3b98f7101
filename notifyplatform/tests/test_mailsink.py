"""`make run`'s mail path: the SMTP sink the launcher starts (a real aiosmtpd server in its
own process, started with the launcher's own command line), the demo's ``smtp-local``
provider sending to it over real SMTP, and the admin page listing what it caught."""

from __future__ import annotations

import signal
import smtplib
import subprocess
import time
from collections.abc import Iterator
from email.message import EmailMessage
from pathlib import Path

import pytest

from notifyplatform.launcher.appenv import mail_sink
from notifyplatform.mailsink import caught_mail
from notifyplatform.testing import free_port, stop_process, wait_listening

pytestmark = [pytest.mark.e2e, pytest.mark.xdist_group("mailsink")]


class Sink:
    def __init__(self, variables: dict[str, str], proc: subprocess.Popen, log: Path) -> None:
        self.variables = variables
        self.proc = proc
        self.log = log
        self.port = int(variables["EMAIL_PORT"])
        self.maildir = Path(variables["NP_MAIL_SINK_DIR"])


def start_sink(tmp_path: Path, *extra: str) -> Sink:
    tmp_path.mkdir(parents=True, exist_ok=True)
    started = mail_sink({}, tmp_path, lambda _msg: None, preferred_port=free_port())
    assert started is not None
    variables, argv = started
    log = tmp_path / "mailsink.log"
    with log.open("wb") as out:
        proc = subprocess.Popen([*argv, *extra], stdout=out, stderr=subprocess.STDOUT)
    wait_listening(int(variables["EMAIL_PORT"]), proc=proc, timeout=20, log=log.read_text)
    return Sink(variables, proc, log)


@pytest.fixture
def sink(tmp_path) -> Iterator[Sink]:
    sink = start_sink(tmp_path)
    yield sink
    stop_process(sink.proc)


def wait_for_mail(sink: Sink, count: int, timeout: float = 10) -> list:
    deadline = time.monotonic() + timeout
    while len(found := caught_mail(sink.maildir)) < count:
        assert time.monotonic() < deadline, f"{len(found)} of {count} mails caught"
        time.sleep(0.05)
    return found


@pytest.fixture
def demo_email_providers(db, sink, settings):
    """The demo's email providers as seed_demo writes them, under the variables the
    launcher gives the app processes (minus Mailgun, the sandbox's, not under test)."""
    from demo.accounts import provider_definitions
    from providers.models import Provider

    settings.EMAIL_HOST = sink.variables["EMAIL_HOST"]
    settings.EMAIL_PORT = int(sink.variables["EMAIL_PORT"])
    settings.NP_MAIL_SINK_DIR = sink.variables["NP_MAIL_SINK_DIR"]
    for spec in provider_definitions():
        if spec["provider_name"] in ("smtp-local", "console"):
            Provider.objects.create(**spec)


def test_demo_email_goes_through_smtp_local_to_the_sink_and_shows_in_the_admin(
    sink, demo_email_providers, user, staff_user, client
):
    from deliveries.models import NotificationDelivery
    from deliveries.services import delivery_send, notify

    # Given the demo's smtp-local and console providers and the launcher's SMTP sink
    result = notify(user, title="Your lot sold", message="Vintage Watch: $150", channels=["email"])
    [delivery] = result.deliveries

    # When the delivery is sent
    assert delivery_send(delivery.pk).outcome == "sent"

    # Then smtp-local took it (no failover to console) and the sink caught it over SMTP
    delivery = NotificationDelivery.objects.get(pk=delivery.pk)
    assert (delivery.status, delivery.provider_name) == ("sent", "smtp-local")
    assert [a["provider_name"] for a in delivery.provider_response["attempts"]] == ["smtp-local"]
    [mail] = wait_for_mail(sink, 1)
    assert mail.rcpt_to == "alice@example.test"
    assert mail.subject == "Your lot sold"
    assert mail.delivery_id == str(delivery.pk)
    assert "Vintage Watch: $150" in mail.text

    # and the admin's "Caught mail" page lists it, and shows it
    client.force_login(staff_user)
    page = client.get("/admin/mail/")
    assert page.status_code == 200
    html = page.content.decode()
    assert "Your lot sold" in html and "alice@example.test" in html
    assert f'data-key="{mail.key}"' in html
    detail = client.get(f"/admin/mail/{mail.key}/")
    assert detail.status_code == 200
    assert "Vintage Watch: $150" in detail.content.decode()
    assert client.get("/admin/mail/no-such-key/").status_code == 404
    assert "Caught mail" in client.get("/admin/").content.decode()


def test_admin_mail_page_is_staff_only_and_says_when_no_sink_runs(
    db, client, user, staff_user, settings
):
    settings.NP_MAIL_SINK_DIR = ""
    client.force_login(user)
    assert client.get("/admin/mail/").status_code == 302  # to the admin login
    client.force_login(staff_user)
    page = client.get("/admin/mail/")
    assert page.status_code == 200
    assert 'id="np-mail-no-sink"' in page.content.decode()


def test_sink_keeps_the_newest_messages_and_stops_on_sigterm(tmp_path):
    (tmp_path / "mailbox").mkdir()  # left empty by an earlier run: still a usable Maildir
    sink = start_sink(tmp_path, "--keep", "3")
    try:
        with smtplib.SMTP("127.0.0.1", sink.port, timeout=10) as smtp:
            for i in range(5):
                msg = EmailMessage()
                msg["From"], msg["To"], msg["Subject"] = "a@example.test", "b@example.test", f"m{i}"
                msg.set_content(f"body {i}")
                smtp.send_message(msg)
        # every message was accepted (send_message raises otherwise); 3 are kept
        assert [m.subject for m in caught_mail(sink.maildir)] == ["m4", "m3", "m2"]
    finally:
        sink.proc.send_signal(signal.SIGTERM)
        assert sink.proc.wait(10) == 0


def test_sink_on_a_taken_port_says_so_in_one_line(tmp_path):
    taken = start_sink(tmp_path / "first")
    try:
        out = subprocess.run(
            [*mail_sink({}, tmp_path, lambda _m: None)[1][:3], "--port", str(taken.port),
             "--maildir", str(tmp_path / "second")],
            capture_output=True, text=True, timeout=30,
        )  # fmt: skip
        assert out.returncode == 1
        assert out.stderr.strip().startswith("error: SMTP sink cannot listen on 127.0.0.1:")
        assert "Traceback" not in out.stderr and len(out.stderr.strip().splitlines()) == 1
    finally:
        stop_process(taken.proc)


def test_launcher_starts_no_sink_when_the_user_names_an_smtp_server(tmp_path):
    said: list[str] = []
    assert mail_sink({"EMAIL_HOST": "smtp.example.com"}, tmp_path, said.append) is None
    assert mail_sink({"EMAIL_PORT": "2525"}, tmp_path, said.append) is None
    assert len(said) == 2 and all("no sink" in line for line in said), said


def test_without_a_reachable_smtp_server_console_takes_it_but_never_as_delivered(
    demo_email_providers, user, settings
):
    from deliveries.models import NotificationDelivery
    from deliveries.services import delivery_send, notify
    from providers.models import Provider

    # Given the demo's smtp-local pointing at a port nothing listens on
    Provider.objects.filter(provider_name="smtp-local").update(
        configuration={"host": "127.0.0.1", "port": free_port(), "timeout": 2}
    )
    result = notify(user, title="Lot sold", message="Vintage Watch", channels=["email"])
    [delivery] = result.deliveries
    # When it is sent
    assert delivery_send(delivery.pk).outcome == "sent"
    # Then the console fallback took it: sent, saying it reached nobody, never delivered
    delivery = NotificationDelivery.objects.get(pk=delivery.pk)
    attempts = delivery.provider_response["attempts"]
    assert [(a["provider_name"], a["error_code"]) for a in attempts] == [
        ("smtp-local", "PROVIDER_UNAVAILABLE"),
        ("console", None),
    ]
    assert (delivery.status, delivery.provider_name, delivery.delivered_at) == (
        "sent",
        "console",
        None,
    )
    assert delivery.provider_response["response"] == {"logged": True, "reached_recipient": False}
    result.notification.refresh_from_db()
    assert result.notification.status == "sent"
    assert caught_mail(Path(settings.NP_MAIL_SINK_DIR)) == []
