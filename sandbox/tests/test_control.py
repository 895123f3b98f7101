"""Control API, Python helpers, failure semantics, receipts bookkeeping and the CLI."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from sandbox import DEFAULT_CREDENTIALS, ConfigError, SandboxServer

from .conftest import Receiver

ROOT = Path(__file__).resolve().parents[2]
SID = DEFAULT_CREDENTIALS["twilio"]["account_sid"]
TWILIO = f"/2010-04-01/Accounts/{SID}/Messages.json"
AUTH = (SID, DEFAULT_CREDENTIALS["twilio"]["auth_token"])
FORM = {"To": "+15551230001", "From": "+15557650000", "Body": "hi"}


def test_config_over_http(client: httpx.Client, sandbox: SandboxServer):
    r = client.post(
        "/_sandbox/config",
        json={"provider": "twilio", "latency_ms": 5, "status": 500, "fail_rate": 0.3},
    )
    assert r.status_code == 200
    assert r.json()["status"] == 500 and r.json()["latency_ms"] == 5
    assert client.get("/_sandbox/config", params={"provider": "twilio"}).json()["status"] == 500
    everything = client.get("/_sandbox/config").json()
    assert set(everything) == {
        "twilio",
        "vonage",
        "mailgun",
        "sendgrid",
        "postmark",
        "fcm",
        "webpush",
        "webhook",
    }
    r = client.post("/_sandbox/config", json={"providers": {"mailgun": {"retry_after": 2}}})
    assert r.json()["mailgun"]["retry_after"] == 2
    r = client.post("/_sandbox/config", json={"receipt_delay_ms": 7})  # every provider
    assert {c["receipt_delay_ms"] for c in r.json().values()} == {7}
    assert client.post("/_sandbox/config", json={"provider": "nope"}).status_code == 400
    bad = client.post("/_sandbox/config", json={"provider": "twilio", "stauts": 500})
    assert bad.status_code == 400 and "stauts" in bad.json()["error"]
    assert client.post("/_sandbox/config", json={"provider": "twilio", "fail_rate": 2}).is_error
    assert client.post("/_sandbox/reset").json() == {"ok": True}
    assert client.get("/_sandbox/config", params={"provider": "twilio"}).json()["status"] is None


def test_configure_validates_in_python(sandbox: SandboxServer):
    with pytest.raises(ConfigError):
        sandbox.configure("twilio", latency_ms="slow")
    with pytest.raises(ConfigError):
        sandbox.configure("carrier-pigeon", status=500)
    sandbox.configure("twilio", status=503)
    sandbox.configure("twilio", reset=True)
    assert sandbox.get_config("twilio")["status"] is None


def test_initial_config_survives_reset():
    config = {"receipt_delay_ms": 3, "twilio": {"latency_ms": 1}}
    with SandboxServer(config=config) as server:
        server.configure("twilio", latency_ms=50)
        server.reset()
        assert server.get_config("twilio")["latency_ms"] == 1
        assert server.get_config("fcm")["receipt_delay_ms"] == 3


def test_messages_and_stats_endpoints(client: httpx.Client, sandbox: SandboxServer):
    client.post(TWILIO, data=FORM, auth=AUTH, headers={"Idempotency-Key": "k1"})
    client.post(TWILIO, data=FORM, auth=AUTH, headers={"Idempotency-Key": "k1"})
    client.post(TWILIO, data={**FORM, "To": "bad"}, auth=AUTH)
    client.post("/hooks/a", content=b"{}")
    messages = client.get("/_sandbox/messages", params={"provider": "twilio"}).json()
    assert [m["outcome"] for m in messages] == ["accepted", "rejected"]
    assert messages[0]["idempotency_key"] == "k1"
    assert messages[0]["headers"]["Idempotency-Key"] == "k1"
    assert {"provider", "message_id", "recipient", "body", "received_at", "status"} <= set(
        messages[0]
    )
    only = client.get("/_sandbox/messages", params={"outcome": "rejected"}).json()
    assert len(only) == 1 and only[0]["error"] == 21211
    assert len(client.get("/_sandbox/messages").json()) == 3
    assert client.get("/_sandbox/messages", params={"provider": "x"}).status_code == 400
    stats = client.get("/_sandbox/stats").json()
    assert stats["providers"]["twilio"] == {"accepted": 1, "replayed": 1, "rejected": 1}
    assert stats["providers"]["webhook"] == {"accepted": 1}
    assert stats["totals"]["accepted"] == 2


def test_health_endpoints(client: httpx.Client, sandbox: SandboxServer):
    assert client.get("/_sandbox/health").json()["status"] == "ok"
    assert client.get("/_sandbox/health/twilio").status_code == 200
    sandbox.configure("twilio", status=503)
    r = client.get("/_sandbox/health/twilio")
    assert r.status_code == 503 and r.json()["code"] == 20503
    assert client.get("/_sandbox/health").json()["providers"]["twilio"] == "503"
    sandbox.configure("fcm", fail_next=1)
    assert client.get("/_sandbox/health/fcm").status_code == 500
    assert client.get("/_sandbox/health/fcm").status_code == 500  # health does not consume
    sandbox.configure("postmark", timeout=True, hang_seconds=0.2)
    with pytest.raises(httpx.RemoteProtocolError):
        client.get("/_sandbox/health/postmark")
    assert client.get("/_sandbox/health/nope").status_code == 404


def test_fail_rate_and_latency(client: httpx.Client, sandbox: SandboxServer):
    sandbox.configure("twilio", fail_rate=1.0)
    codes = {client.post(TWILIO, data=FORM, auth=AUTH).status_code for _ in range(20)}
    assert codes <= {500, 503} and codes
    sandbox.configure("twilio", fail_rate=0, latency_ms=100)
    started = time.monotonic()
    assert client.post(TWILIO, data=FORM, auth=AUTH).status_code == 201
    assert time.monotonic() - started >= 0.1


def test_idempotency_is_per_provider(client: httpx.Client, sandbox: SandboxServer):
    """The same key at two providers (failover) sends once at each, never twice at one."""
    key = {"Idempotency-Key": "notif-42"}
    sandbox.configure("twilio", status=503)
    assert client.post(TWILIO, data=FORM, auth=AUTH, headers=key).status_code == 503
    vonage = DEFAULT_CREDENTIALS["vonage"]
    params = {
        "api_key": vonage["api_key"],
        "api_secret": vonage["api_secret"],
        "from": "Acme",
        "to": "15551230001",
        "text": "hi",
    }
    first = client.post("/sms/json", data=params, headers=key).json()
    again = client.post("/sms/json", data=params, headers=key).json()
    assert first == again
    assert len([m for m in sandbox.messages() if m["outcome"] == "accepted"]) == 1


def test_receipt_failures_are_counted(
    client: httpx.Client, sandbox: SandboxServer, receiver: Receiver
):
    receiver.status = 500
    client.post(TWILIO, data=FORM, auth=AUTH)
    receiver.wait(2)
    sandbox.wait_for(lambda: sandbox.stats()["providers"]["twilio"].get("receipts_failed") == 2)
    receipts = sandbox.receipts("twilio")
    assert [r["http_status"] for r in receipts] == [500, 500]
    assert not any(r["ok"] for r in receipts)
    # An unreachable receiver is recorded too and the server keeps serving.
    sandbox.configure("twilio", receipt_url="http://127.0.0.1:9")
    client.post(TWILIO, data=FORM, auth=AUTH)
    sandbox.wait_for(lambda: sandbox.stats()["providers"]["twilio"].get("receipts_failed") == 4)
    assert "ClientConnectorError" in sandbox.receipts("twilio")[-1]["error"]
    assert client.get("/_sandbox/health").status_code == 200


def test_receipt_delay(client: httpx.Client, sandbox: SandboxServer, receiver: Receiver):
    sandbox.configure("postmark", receipt_delay_ms=300)
    token = DEFAULT_CREDENTIALS["postmark"]["server_token"]
    client.post(
        "/email",
        json={"From": "a@example.com", "To": "b@example.com", "TextBody": "x"},
        headers={"X-Postmark-Server-Token": token},
    )
    time.sleep(0.1)
    assert receiver.requests == []
    receiver.wait(1)


def test_keys_endpoint(client: httpx.Client, sandbox: SandboxServer):
    keys = client.get("/_sandbox/keys").json()
    assert keys["twilio"]["auth_token"] == DEFAULT_CREDENTIALS["twilio"]["auth_token"]
    assert keys["mailgun"]["webhook_signing_key"]
    assert keys["sendgrid"]["public_key"].startswith("MFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAE")
    assert keys == sandbox.keys()
    # Derived deterministically: a second server shows the same public key.
    with SandboxServer() as other:
        assert other.keys()["sendgrid"]["public_key"] == keys["sendgrid"]["public_key"]


def test_stop_releases_hanging_requests():
    server = SandboxServer().start()
    server.configure("webhook", timeout=True, hang_seconds=30)
    import threading

    errors: list[Exception] = []

    def call() -> None:
        try:
            httpx.post(server.url + "/hooks/x", content=b"{}", timeout=10)
        except httpx.HTTPError as exc:
            errors.append(exc)

    thread = threading.Thread(target=call)
    thread.start()
    server.wait_for(lambda: server.messages("webhook"))
    started = time.monotonic()
    server.stop()
    thread.join(5)
    assert time.monotonic() - started < 5
    assert errors and not thread.is_alive()


def test_cli_starts_logs_and_stops_cleanly(tmp_path: Path):
    config = tmp_path / "sandbox.json"
    config.write_text(json.dumps({"twilio": {"latency_ms": 1}}))
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "sandbox",
            "--port",
            "0",
            "--receipt-url",
            "http://127.0.0.1:8000",
            "--latency-ms",
            "2",
            "--config",
            str(config),
        ],
        cwd=ROOT,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    try:
        assert proc.stderr is not None
        line = proc.stderr.readline()
        match = re.search(r"listening on (http://127\.0\.0\.1:\d+)", line)
        assert match, line
        url = match.group(1)
        assert "http://127.0.0.1:8000" in line
        config_now = httpx.get(url + "/_sandbox/config", params={"provider": "twilio"}).json()
        assert config_now["latency_ms"] == 1
        assert config_now["receipt_url"] == "http://127.0.0.1:8000"
        assert httpx.get(url + "/_sandbox/config").json()["fcm"]["latency_ms"] == 2
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(10) == 0
        proc2 = subprocess.run(
            [sys.executable, "-m", "sandbox", "--port", "0", "--latency-ms", "-1"],
            cwd=ROOT,
            capture_output=True,
            text=True,
            env={**os.environ, "PYTHONPATH": str(ROOT)},
            timeout=30,
        )
        assert proc2.returncode == 2 and "latency_ms" in proc2.stderr
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
