"""Mailgun, SendGrid and Postmark: shapes, auth, failures and signed receipts."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import re

import httpx
import pytest
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec

from sandbox import DEFAULT_CREDENTIALS, SandboxServer

from .conftest import Receiver

MG = DEFAULT_CREDENTIALS["mailgun"]
SG = DEFAULT_CREDENTIALS["sendgrid"]
PM = DEFAULT_CREDENTIALS["postmark"]
MG_AUTH = ("api", MG["api_key"])
MG_FORM = {
    "from": "Acme <noreply@mg.example.com>",
    "to": "alice@example.com",
    "subject": "Welcome",
    "text": "Hello Alice",
    "v:notification_id": "n-1",
    "h:X-Campaign": "onboarding",
}
SG_HEADERS = {"Authorization": f"Bearer {SG['api_key']}"}
SG_BODY = {
    "personalizations": [
        {"to": [{"email": "alice@example.com", "name": "Alice"}], "custom_args": {"n": "1"}}
    ],
    "from": {"email": "noreply@example.com"},
    "subject": "Welcome",
    "content": [{"type": "text/plain", "value": "Hi"}, {"type": "text/html", "value": "<p>Hi"}],
    "custom_args": {"notification_id": "n-1"},
}
PM_HEADERS = {"X-Postmark-Server-Token": PM["server_token"], "Accept": "application/json"}
PM_BODY = {
    "From": "noreply@example.com",
    "To": "alice@example.com",
    "Subject": "Welcome",
    "TextBody": "Hi",
    "MessageStream": "outbound",
    "Metadata": {"notification_id": "n-1"},
}


# ----------------------------------------------------------------------------- Mailgun


def test_mailgun_send(client: httpx.Client, sandbox: SandboxServer):
    r = client.post("/v3/mg.example.com/messages", data=MG_FORM, auth=MG_AUTH)
    assert r.status_code == 200
    body = r.json()
    assert body["message"] == "Queued. Thank you."
    assert re.fullmatch(r"<\d{14}\.[0-9a-f]{16}@mg\.example\.com>", body["id"])
    [rec] = sandbox.messages("mailgun")
    assert rec["recipient"] == "alice@example.com"
    assert rec["subject"] == "Welcome"
    assert rec["data"]["user_variables"] == {"notification_id": "n-1"}
    assert rec["data"]["headers"] == {"X-Campaign": "onboarding"}


def test_mailgun_multipart_and_multiple_recipients(client: httpx.Client, sandbox: SandboxServer):
    files = {"attachment": ("a.txt", b"data", "text/plain")}
    form = {**MG_FORM, "to": "a@example.com, Bob <b@example.com>"}
    r = client.post("/v3/mg.example.com/messages", data=form, files=files, auth=MG_AUTH)
    assert r.status_code == 200
    [rec] = sandbox.messages("mailgun")
    assert rec["recipients"] == ["a@example.com", "b@example.com"]
    assert rec["data"]["attachments"] == 1


def test_mailgun_errors(client: httpx.Client, sandbox: SandboxServer):
    r = client.post("/v3/mg.example.com/messages", data=MG_FORM, auth=("api", "bad"))
    assert r.status_code == 401 and r.text == "Forbidden"
    r = client.post("/v3/mg.example.com/messages", data={**MG_FORM, "to": "nope"}, auth=MG_AUTH)
    assert r.status_code == 400 and "not a valid address" in r.json()["message"]
    form = {k: v for k, v in MG_FORM.items() if k != "text"}
    r = client.post("/v3/mg.example.com/messages", data=form, auth=MG_AUTH)
    assert r.status_code == 400 and "text" in r.json()["message"]
    sandbox.configure("mailgun", credentials={"domain": "mg.example.com"})
    r = client.post("/v3/other.example.com/messages", data=MG_FORM, auth=MG_AUTH)
    assert r.status_code == 404 and r.json() == {"message": "Domain not found: other.example.com"}
    sandbox.configure("mailgun", status=429, retry_after=4)
    r = client.post("/v3/mg.example.com/messages", data=MG_FORM, auth=MG_AUTH)
    assert r.status_code == 429 and r.headers["Retry-After"] == "4" and r.json()["message"]


def test_mailgun_receipts_are_signed(
    client: httpx.Client, sandbox: SandboxServer, receiver: Receiver
):
    sandbox.configure(
        "mailgun",
        receipt_status_by_recipient={"b@example.com": "bounced", "c@example.com": "failed"},
    )
    form = {**MG_FORM, "to": "a@example.com, b@example.com, c@example.com"}
    message_id = client.post("/v3/mg.example.com/messages", data=form, auth=MG_AUTH).json()["id"]
    requests = receiver.wait(3)
    events = {}
    for req in requests:
        assert req.path == "/api/v1/providers/mailgun/events/"
        payload = json.loads(req.body)
        sig = payload["signature"]
        expected = hmac.new(
            MG["webhook_signing_key"].encode(),
            (sig["timestamp"] + sig["token"]).encode(),
            hashlib.sha256,
        ).hexdigest()
        assert sig["signature"] == expected
        data = payload["event-data"]
        assert data["message"]["headers"]["message-id"] == message_id.strip("<>")
        assert data["user-variables"] == {"notification_id": "n-1"}
        events[data["recipient"]] = data
    assert events["a@example.com"]["event"] == "delivered"
    assert events["b@example.com"]["event"] == "failed"
    assert events["b@example.com"]["severity"] == "permanent"
    assert events["b@example.com"]["delivery-status"]["code"] == 550
    assert events["c@example.com"]["severity"] == "temporary"


def test_mailgun_complaint(client: httpx.Client, sandbox: SandboxServer, receiver: Receiver):
    sandbox.configure("mailgun", receipt_status="complained")
    client.post("/v3/mg.example.com/messages", data=MG_FORM, auth=MG_AUTH)
    [req] = receiver.wait(1)
    assert json.loads(req.body)["event-data"]["event"] == "complained"


# ----------------------------------------------------------------------------- SendGrid


def test_sendgrid_send(client: httpx.Client, sandbox: SandboxServer):
    r = client.post("/v3/mail/send", json=SG_BODY, headers=SG_HEADERS)
    assert r.status_code == 202
    assert r.content == b""
    assert re.fullmatch(r"[A-Za-z0-9_-]{22}", r.headers["X-Message-Id"])
    [rec] = sandbox.messages("sendgrid")
    assert rec["message_id"] == r.headers["X-Message-Id"]
    assert rec["recipient"] == "alice@example.com"
    assert rec["body"] == "Hi"


def test_sendgrid_errors(client: httpx.Client, sandbox: SandboxServer):
    r = client.post("/v3/mail/send", json=SG_BODY, headers={"Authorization": "Bearer nope"})
    assert r.status_code == 401
    assert r.json()["errors"][0]["message"].startswith("The provided authorization grant")
    bad = {**SG_BODY, "personalizations": [{"to": [{"email": "nope"}]}], "content": []}
    r = client.post("/v3/mail/send", json=bad, headers=SG_HEADERS)
    assert r.status_code == 400
    fields = {e["field"] for e in r.json()["errors"]}
    assert fields == {"personalizations.0.to.0.email", "content"}
    assert all({"message", "field", "help"} <= set(e) for e in r.json()["errors"])
    sandbox.configure("sendgrid", status=429)
    r = client.post("/v3/mail/send", json=SG_BODY, headers=SG_HEADERS)
    assert r.status_code == 429 and r.headers["Retry-After"] == "1"
    assert r.json()["errors"][0]["message"] == "too many requests"


def test_sendgrid_idempotency(client: httpx.Client, sandbox: SandboxServer):
    headers = {**SG_HEADERS, "Idempotency-Key": "sg-1"}
    a = client.post("/v3/mail/send", json=SG_BODY, headers=headers)
    b = client.post("/v3/mail/send", json=SG_BODY, headers=headers)
    assert a.status_code == b.status_code == 202
    assert a.headers["X-Message-Id"] == b.headers["X-Message-Id"]
    assert b.headers["X-Sandbox-Replayed"] == "true"
    assert len(sandbox.messages("sendgrid")) == 1


def test_sendgrid_events_are_ecdsa_signed(
    client: httpx.Client, sandbox: SandboxServer, receiver: Receiver
):
    sandbox.configure("sendgrid", receipt_status_by_recipient={"bob@example.com": "bounced"})
    body = {
        **SG_BODY,
        "personalizations": [
            {"to": [{"email": "alice@example.com"}], "custom_args": {"n": "1"}},
            {"to": [{"email": "bob@example.com"}], "custom_args": {"n": "2"}},
        ],
    }
    message_id = client.post("/v3/mail/send", json=body, headers=SG_HEADERS).headers["X-Message-Id"]
    public_b64 = client.get("/_sandbox/keys").json()["sendgrid"]["public_key"]
    # As SendGrid's verification helpers do: wrap the base64 DER in PEM armour.
    pem = f"-----BEGIN PUBLIC KEY-----\n{public_b64}\n-----END PUBLIC KEY-----".encode()
    key = serialization.load_pem_public_key(pem)
    assert isinstance(key, ec.EllipticCurvePublicKey)
    events = {}
    for req in receiver.wait(2):
        assert req.path == "/api/v1/providers/sendgrid/events/"
        ts = req.headers["X-Twilio-Email-Event-Webhook-Timestamp"]
        sig = base64.b64decode(req.headers["X-Twilio-Email-Event-Webhook-Signature"])
        key.verify(sig, ts.encode() + req.body, ec.ECDSA(hashes.SHA256()))
        with pytest.raises(InvalidSignature):
            key.verify(sig, ts.encode() + req.body + b" ", ec.ECDSA(hashes.SHA256()))
        [event] = json.loads(req.body)
        assert event["sg_message_id"].startswith(message_id + ".")
        assert event["notification_id"] == "n-1"
        events[event["email"]] = event
    assert events["alice@example.com"]["event"] == "delivered"
    assert events["alice@example.com"]["n"] == "1"
    assert events["bob@example.com"]["event"] == "bounce"
    assert events["bob@example.com"]["n"] == "2"


def test_sendgrid_key_from_pem(client: httpx.Client, sandbox: SandboxServer):
    private = ec.generate_private_key(ec.SECP256R1())
    pem = private.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ).decode()
    sandbox.configure("sendgrid", credentials={"webhook_private_key_pem": pem})
    public = private.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    assert sandbox.keys()["sendgrid"]["public_key"] == base64.b64encode(public).decode()


# ----------------------------------------------------------------------------- Postmark


def test_postmark_send(client: httpx.Client, sandbox: SandboxServer):
    r = client.post("/email", json=PM_BODY, headers=PM_HEADERS)
    assert r.status_code == 200
    body = r.json()
    assert body["ErrorCode"] == 0 and body["Message"] == "OK"
    assert body["To"] == "alice@example.com"
    assert re.fullmatch(r"[0-9a-f-]{36}", body["MessageID"])
    assert body["SubmittedAt"].endswith("Z")
    [rec] = sandbox.messages("postmark")
    assert rec["data"]["metadata"] == {"notification_id": "n-1"}


def test_postmark_errors(client: httpx.Client, sandbox: SandboxServer):
    r = client.post("/email", json=PM_BODY, headers={"X-Postmark-Server-Token": "bad"})
    assert r.status_code == 401 and r.json()["ErrorCode"] == 10
    r = client.post("/email", json={**PM_BODY, "To": "nope"}, headers=PM_HEADERS)
    assert r.status_code == 422 and r.json()["ErrorCode"] == 300
    sandbox.configure("postmark", invalid_recipients=["alice@example.com"])
    r = client.post("/email", json=PM_BODY, headers=PM_HEADERS)
    assert r.status_code == 422 and r.json()["ErrorCode"] == 406
    assert "alice@example.com" in r.json()["Message"]
    r = client.post("/email", content=b"{not json", headers=PM_HEADERS)
    assert r.status_code == 422 and r.json()["ErrorCode"] == 402
    sandbox.configure("postmark", fail_next=1)
    r = client.post("/email", json={**PM_BODY, "To": "x@example.com"}, headers=PM_HEADERS)
    assert r.status_code == 500 and r.json()["ErrorCode"] == 500
    outcomes = [m["outcome"] for m in sandbox.messages("postmark")]
    assert outcomes == ["unauthorized", "rejected", "rejected", "rejected", "failed"]


def test_postmark_batch(client: httpx.Client, sandbox: SandboxServer):
    batch = [PM_BODY, {**PM_BODY, "To": "nope"}, {**PM_BODY, "To": "bob@example.com"}]
    r = client.post("/email/batch", json=batch, headers=PM_HEADERS)
    assert r.status_code == 200
    results = r.json()
    assert [x["ErrorCode"] for x in results] == [0, 300, 0]
    accepted = [m for m in sandbox.messages("postmark") if m["outcome"] == "accepted"]
    assert [m["message_id"] for m in accepted] == [results[0]["MessageID"], results[2]["MessageID"]]
    headers = {**PM_HEADERS, "Idempotency-Key": "batch-1"}
    first = client.post("/email/batch", json=batch, headers=headers)
    again = client.post("/email/batch", json=batch, headers=headers)
    assert first.json() == again.json()
    assert len(sandbox.messages("postmark")) == 6


def test_postmark_receipts_use_basic_auth(
    client: httpx.Client, sandbox: SandboxServer, receiver: Receiver
):
    sandbox.configure("postmark", receipt_status_by_recipient={"bob@example.com": "bounced"})
    a = client.post("/email", json=PM_BODY, headers=PM_HEADERS).json()["MessageID"]
    b = client.post("/email", json={**PM_BODY, "To": "bob@example.com"}, headers=PM_HEADERS).json()[
        "MessageID"
    ]
    requests = receiver.wait(2)
    token = base64.b64encode(f"{PM['webhook_username']}:{PM['webhook_password']}".encode())
    payloads = {}
    for req in requests:
        assert req.headers["Authorization"] == "Basic " + token.decode()
        payload = json.loads(req.body)
        payloads[payload["MessageID"]] = payload
    assert payloads[a]["RecordType"] == "Delivery"
    assert payloads[a]["Recipient"] == "alice@example.com"
    assert payloads[a]["Metadata"] == {"notification_id": "n-1"}
    assert "DeliveredAt" in payloads[a]
    assert payloads[b]["RecordType"] == "Bounce"
    assert payloads[b]["Type"] == "HardBounce" and payloads[b]["Email"] == "bob@example.com"
    assert "BouncedAt" in payloads[b]


def test_postmark_spam_complaint(client: httpx.Client, sandbox: SandboxServer, receiver: Receiver):
    sandbox.configure("postmark", receipt_status="complained")
    client.post("/email", json=PM_BODY, headers=PM_HEADERS)
    [req] = receiver.wait(1)
    assert json.loads(req.body)["RecordType"] == "SpamComplaint"
