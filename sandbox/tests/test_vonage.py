"""Vonage SMS API: in-body status codes, signed requests and signed delivery receipts."""

from __future__ import annotations

import hashlib
import hmac
import json
import re

import httpx
import pytest

from sandbox import DEFAULT_CREDENTIALS, SandboxServer

from .conftest import Receiver

CREDS = DEFAULT_CREDENTIALS["vonage"]
BASE = {"api_key": CREDS["api_key"], "api_secret": CREDS["api_secret"]}
MSG = {"from": "AcmeInc", "to": "447700900001", "text": "Hello from Acme"}


def vonage_sig(params: dict[str, str], secret: str) -> str:
    text = "".join(
        f"&{k}={str(params[k]).replace('&', '_').replace('=', '_')}"
        for k in sorted(params)
        if k != "sig"
    )
    return hmac.new(secret.encode(), text.encode(), hashlib.sha256).hexdigest()


def test_send_form_and_json(client: httpx.Client, sandbox: SandboxServer):
    for kwargs in ({"data": {**BASE, **MSG}}, {"json": {**BASE, **MSG, "client-ref": "ref-1"}}):
        r = client.post("/sms/json", **kwargs)
        assert r.status_code == 200
        body = r.json()
        assert body["message-count"] == "1"
        [message] = body["messages"]
        assert message["status"] == "0"
        assert message["to"] == MSG["to"]
        assert re.fullmatch(r"[0-9A-F]{16}", message["message-id"])
        assert set(message) >= {"remaining-balance", "message-price", "network"}
    assert message["client-ref"] == "ref-1"
    assert [m["outcome"] for m in sandbox.messages("vonage")] == ["accepted", "accepted"]


def test_long_text_is_split_into_parts(client: httpx.Client, sandbox: SandboxServer):
    r = client.post("/sms/json", data={**BASE, **MSG, "text": "y" * 400})
    body = r.json()
    assert body["message-count"] == "3"
    assert len({m["message-id"] for m in body["messages"]}) == 3
    [rec] = sandbox.messages("vonage")
    assert rec["data"]["message_ids"] == [m["message-id"] for m in body["messages"]]


@pytest.mark.parametrize(
    ("params", "status"),
    [
        ({**MSG, "api_key": CREDS["api_key"], "api_secret": "nope"}, "4"),
        ({**MSG, "api_key": "other", "api_secret": CREDS["api_secret"]}, "4"),
        ({**MSG, "api_secret": CREDS["api_secret"]}, "2"),
        ({**BASE, "to": MSG["to"], "text": "x"}, "2"),
        ({**BASE, "from": "Acme", "text": "x"}, "2"),
        ({**BASE, **MSG, "to": "not-a-number"}, "3"),
    ],
)
def test_errors_are_status_codes_inside_200(client: httpx.Client, params, status):
    r = client.post("/sms/json", data=params)
    assert r.status_code == 200
    [message] = r.json()["messages"]
    assert message["status"] == status
    assert message["error-text"]


def test_signed_request(client: httpx.Client):
    params = {"api_key": CREDS["api_key"], **MSG, "timestamp": "1700000000"}
    params["sig"] = vonage_sig(params, CREDS["signature_secret"])
    assert client.post("/sms/json", data=params).json()["messages"][0]["status"] == "0"
    params["sig"] = "0" * 64
    assert client.post("/sms/json", data=params).json()["messages"][0]["status"] == "14"


def test_throttled_in_body_and_http_failures(client: httpx.Client, sandbox: SandboxServer):
    sandbox.configure("vonage", error_code="1", fail_next=1)
    r = client.post("/sms/json", data={**BASE, **MSG})
    assert r.status_code == 200
    assert r.json()["messages"][0]["status"] == "1"
    assert "Retry-After" in r.headers
    sandbox.configure("vonage", status=429, retry_after=2, fail_next=None, error_code=None)
    r = client.post("/sms/json", data={**BASE, **MSG})
    assert r.status_code == 429 and r.headers["Retry-After"] == "2"
    assert r.json()["messages"][0]["status"] == "1"
    sandbox.configure("vonage", status=500)
    r = client.post("/sms/json", data={**BASE, **MSG})
    assert r.status_code == 500 and r.json()["messages"][0]["status"] == "5"
    outcomes = [m["outcome"] for m in sandbox.messages("vonage")]
    assert outcomes == ["rate_limited", "rate_limited", "failed"]


def test_idempotency_and_timeout(client: httpx.Client, sandbox: SandboxServer):
    headers = {"Idempotency-Key": "v-1"}
    a = client.post("/sms/json", data={**BASE, **MSG}, headers=headers).json()
    b = client.post("/sms/json", data={**BASE, **MSG}, headers=headers).json()
    assert a == b
    assert len(sandbox.messages("vonage")) == 1
    sandbox.configure("vonage", timeout=True, hang_seconds=0.2)
    with pytest.raises(httpx.RemoteProtocolError):
        client.post("/sms/json", data={**BASE, **MSG})


def test_delivery_receipt_is_signed(
    client: httpx.Client, sandbox: SandboxServer, receiver: Receiver
):
    sandbox.configure("vonage", receipt_status="bounced")
    mid = client.post("/sms/json", json={**BASE, **MSG, "client-ref": "r1"}).json()["messages"][0][
        "message-id"
    ]
    [req] = receiver.wait(1)
    assert req.path == "/api/v1/providers/vonage/events/"
    dlr = json.loads(req.body)
    assert dlr["messageId"] == mid
    assert dlr["msisdn"] == MSG["to"] and dlr["to"] == MSG["from"]
    assert dlr["status"] == "failed" and dlr["err-code"] == "3"
    assert dlr["client-ref"] == "r1"
    assert set(dlr) >= {"network-code", "price", "message-timestamp", "timestamp", "nonce"}
    assert dlr["sig"] == vonage_sig(dlr, CREDS["signature_secret"])


def test_callback_param_overrides_receipt_url(
    client: httpx.Client, sandbox: SandboxServer, receiver: Receiver
):
    client.post("/sms/json", data={**BASE, **MSG, "callback": receiver.url + "/dlr"})
    [req] = receiver.wait(1)
    assert req.path == "/dlr"
    assert json.loads(req.body)["status"] == "delivered"
