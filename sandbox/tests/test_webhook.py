"""Generic webhook receiver with Standard Webhooks verification."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time

import httpx

from sandbox import SandboxServer

SECRET_BYTES = b"0123456789abcdef0123456789abcdef"
SECRET = "whsec_" + base64.b64encode(SECRET_BYTES).decode()


def signed_headers(body: bytes, msg_id: str = "msg_1", ts: int | None = None) -> dict[str, str]:
    timestamp = str(int(time.time()) if ts is None else ts)
    signed = f"{msg_id}.{timestamp}.".encode() + body
    sig = base64.b64encode(hmac.new(SECRET_BYTES, signed, hashlib.sha256).digest()).decode()
    return {
        "webhook-id": msg_id,
        "webhook-timestamp": timestamp,
        "webhook-signature": f"v1,{sig}",
        "Content-Type": "application/json",
    }


def test_records_unsigned_hook_without_secret(client: httpx.Client, sandbox: SandboxServer):
    r = client.post("/hooks/orders", json={"event": "sent"}, headers={"X-Custom": "1"})
    assert r.status_code == 200
    [rec] = sandbox.messages("webhook")
    assert rec["recipient"] == "orders"
    assert json.loads(rec["body"]) == {"event": "sent"}
    assert rec["data"]["json"] == {"event": "sent"}
    assert rec["data"]["verified"] is None
    assert rec["headers"]["X-Custom"] == "1"


def test_verifies_standard_webhooks_signature(client: httpx.Client, sandbox: SandboxServer):
    sandbox.configure("webhook", secrets={"orders": SECRET})
    body = json.dumps({"type": "notification.delivered"}).encode()
    r = client.post("/hooks/orders", content=body, headers=signed_headers(body))
    assert r.status_code == 200
    # A signature list with a stale key first still verifies (key rotation).
    headers = signed_headers(body, msg_id="msg_2")
    headers["webhook-signature"] = "v1,bm90LWl0 " + headers["webhook-signature"]
    assert client.post("/hooks/orders", content=body, headers=headers).status_code == 200
    tampered = client.post("/hooks/orders", content=body + b" ", headers=signed_headers(body))
    assert tampered.status_code == 401
    stale = client.post("/hooks/orders", content=body, headers=signed_headers(body, ts=1000))
    assert stale.status_code == 401
    unsigned = client.post("/hooks/orders", content=body)
    assert unsigned.status_code == 401
    records = sandbox.messages("webhook")
    assert [m["data"]["verified"] for m in records] == [True, True, False, False, False]
    assert [m["outcome"] for m in records] == [
        "accepted",
        "accepted",
        "unverified",
        "unverified",
        "unverified",
    ]
    # Other hook names are not verified.
    assert client.post("/hooks/other", content=body).status_code == 200


def test_secret_via_control_api_and_duplicates(client: httpx.Client, sandbox: SandboxServer):
    r = client.post(
        "/_sandbox/config", json={"provider": "webhook", "name": "crm", "secret": SECRET}
    )
    assert r.status_code == 200 and r.json()["secrets"] == {"crm": SECRET}
    body = b'{"n": 1}'
    headers = signed_headers(body, msg_id="msg_dup")
    assert client.post("/hooks/crm", content=body, headers=headers).status_code == 200
    assert client.post("/hooks/crm", content=body, headers=headers).status_code == 200
    assert [m["data"]["duplicate"] for m in sandbox.messages("webhook")] == [False, True]
    assert [m["message_id"] for m in sandbox.messages("webhook")] == ["msg_dup", "msg_dup"]


def test_webhook_failure_injection(client: httpx.Client, sandbox: SandboxServer):
    sandbox.configure("webhook", fail_next=1, status=503)
    assert client.post("/hooks/x", content=b"{}").status_code == 503
    assert client.post("/hooks/x", content=b"{}").status_code == 200
