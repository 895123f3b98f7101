"""Twilio Messages API: shapes, auth, failure injection, idempotency and signed callbacks."""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
import time
from email.utils import parsedate_to_datetime
from urllib.parse import parse_qsl

import httpx
import pytest

from sandbox import DEFAULT_CREDENTIALS, SandboxServer

from .conftest import Receiver

SID = DEFAULT_CREDENTIALS["twilio"]["account_sid"]
TOKEN = DEFAULT_CREDENTIALS["twilio"]["auth_token"]
PATH = f"/2010-04-01/Accounts/{SID}/Messages.json"
AUTH = (SID, TOKEN)
FORM = {"To": "+15551230001", "From": "+15557650000", "Body": "Your code is 123456"}


def expected_signature(url: str, params: dict[str, str]) -> str:
    data = url + "".join(k + params[k] for k in sorted(params))
    return base64.b64encode(hmac.new(TOKEN.encode(), data.encode(), hashlib.sha1).digest()).decode()


def test_send_returns_twilio_message_resource(client: httpx.Client, sandbox: SandboxServer):
    r = client.post(PATH, data=FORM, auth=AUTH)
    assert r.status_code == 201
    body = r.json()
    assert re.fullmatch(r"SM[0-9a-f]{32}", body["sid"])
    assert body["status"] == "queued"
    assert body["to"] == FORM["To"] and body["from"] == FORM["From"]
    assert body["body"] == FORM["Body"]
    assert body["num_segments"] == "1"
    assert body["price"] is None and body["error_code"] is None
    assert body["account_sid"] == SID
    assert body["uri"] == f"/2010-04-01/Accounts/{SID}/Messages/{body['sid']}.json"
    assert parsedate_to_datetime(body["date_created"]).tzinfo is not None
    assert body["date_created"].endswith("+0000")
    [msg] = sandbox.messages("twilio")
    assert msg["message_id"] == body["sid"]
    assert msg["recipient"] == FORM["To"]
    assert msg["body"] == FORM["Body"]
    assert msg["outcome"] == "accepted" and msg["status"] == 201


def test_messaging_service_and_long_body(client: httpx.Client):
    form = {"To": "+15551230001", "MessagingServiceSid": "MG" + "1" * 32, "Body": "x" * 200}
    r = client.post(PATH, data=form, auth=AUTH)
    assert r.status_code == 201
    body = r.json()
    assert body["status"] == "accepted"
    assert body["from"] is None
    assert body["messaging_service_sid"] == form["MessagingServiceSid"]
    assert body["num_segments"] == "2"


@pytest.mark.parametrize(
    ("auth", "path"),
    [((SID, "wrong"), PATH), (None, PATH), (("AC" + "9" * 32, TOKEN), PATH)],
)
def test_bad_auth_is_20003(client: httpx.Client, sandbox: SandboxServer, auth, path):
    r = client.post(path, data=FORM, auth=auth)
    assert r.status_code == 401
    body = r.json()
    assert body["code"] == 20003
    assert body["status"] == 401
    assert body["more_info"] == "https://www.twilio.com/docs/errors/20003"
    assert sandbox.messages("twilio")[0]["outcome"] == "unauthorized"


def test_credentials_can_be_overridden(client: httpx.Client, sandbox: SandboxServer):
    sandbox.configure("twilio", credentials={"auth_token": "other-token"})
    assert client.post(PATH, data=FORM, auth=AUTH).status_code == 401
    assert client.post(PATH, data=FORM, auth=(SID, "other-token")).status_code == 201


@pytest.mark.parametrize(
    ("form", "code"),
    [
        ({"To": "12345", "From": "+15557650000", "Body": "x"}, 21211),
        ({"From": "+15557650000", "Body": "x"}, 21604),
        ({"To": "+15551230001", "Body": "x"}, 21603),
        ({"To": "+15551230001", "From": "+15557650000"}, 21602),
        ({"To": "+15551230001", "From": "+15557650000", "Body": "x" * 1601}, 21617),
    ],
)
def test_validation_errors(client: httpx.Client, form, code):
    r = client.post(PATH, data=form, auth=AUTH)
    assert r.status_code == 400
    body = r.json()
    assert body == {
        "code": code,
        "message": body["message"],
        "more_info": f"https://www.twilio.com/docs/errors/{code}",
        "status": 400,
    }
    if code == 21211:
        assert body["message"] == "The 'To' number 12345 is not a valid phone number."


def test_invalid_recipient_list(client: httpx.Client, sandbox: SandboxServer):
    sandbox.configure("twilio", invalid_recipients=["+15551230001"])
    r = client.post(PATH, data=FORM, auth=AUTH)
    assert r.status_code == 400 and r.json()["code"] == 21211


def test_forced_500_and_503(client: httpx.Client, sandbox: SandboxServer):
    sandbox.configure("twilio", status=500)
    r = client.post(PATH, data=FORM, auth=AUTH)
    assert r.status_code == 500
    assert r.json()["code"] == 20500
    sandbox.configure("twilio", status=503, retry_after=7)
    r = client.post(PATH, data=FORM, auth=AUTH)
    assert r.status_code == 503 and r.json()["code"] == 20503
    assert r.headers["Retry-After"] == "7"
    assert [m["outcome"] for m in sandbox.messages("twilio")] == ["failed", "failed"]
    sandbox.configure("twilio", status=None)
    assert client.post(PATH, data=FORM, auth=AUTH).status_code == 201


def test_429_carries_retry_after(client: httpx.Client, sandbox: SandboxServer):
    sandbox.configure("twilio", status=429, retry_after=3)
    r = client.post(PATH, data=FORM, auth=AUTH)
    assert r.status_code == 429
    assert r.headers["Retry-After"] == "3"
    assert r.json()["code"] == 20429
    assert sandbox.stats()["providers"]["twilio"] == {"rate_limited": 1}


def test_fail_next(client: httpx.Client, sandbox: SandboxServer):
    sandbox.configure("twilio", fail_next=2)
    codes = [client.post(PATH, data=FORM, auth=AUTH).status_code for _ in range(4)]
    assert codes == [500, 500, 201, 201]
    assert sandbox.get_config("twilio")["fail_next"] == 0


def test_error_code_option(client: httpx.Client, sandbox: SandboxServer):
    sandbox.configure("twilio", error_code=21610, fail_next=1)
    r = client.post(PATH, data=FORM, auth=AUTH)
    assert r.status_code == 400 and r.json()["code"] == 21610
    assert client.post(PATH, data=FORM, auth=AUTH).status_code == 201


def test_timeout_closes_without_response(client: httpx.Client, sandbox: SandboxServer):
    sandbox.configure("twilio", timeout=True, hang_seconds=0.3)
    with pytest.raises(httpx.RemoteProtocolError):
        client.post(PATH, data=FORM, auth=AUTH)
    with pytest.raises(httpx.ReadTimeout):
        client.post(PATH, data=FORM, auth=AUTH, timeout=0.1)
    assert [m["outcome"] for m in sandbox.messages("twilio")] == ["timeout", "timeout"]


def test_idempotency_token_replays_original(client: httpx.Client, sandbox: SandboxServer):
    headers = {"I-Twilio-Idempotency-Token": "tok-1"}
    first = client.post(PATH, data=FORM, auth=AUTH, headers=headers)
    second = client.post(PATH, data=FORM, auth=AUTH, headers=headers)
    assert first.status_code == second.status_code == 201
    assert first.json() == second.json()
    assert len(sandbox.messages("twilio")) == 1
    assert sandbox.messages("twilio")[0]["idempotency_key"] == "tok-1"
    assert sandbox.stats()["providers"]["twilio"] == {"accepted": 1, "replayed": 1}
    other = client.post(PATH, data=FORM, auth=AUTH, headers={"Idempotency-Key": "tok-2"})
    assert other.json()["sid"] != first.json()["sid"]


def test_failed_attempt_is_not_cached(client: httpx.Client, sandbox: SandboxServer):
    sandbox.configure("twilio", fail_next=1, status=503)
    headers = {"Idempotency-Key": "retry-me"}
    assert client.post(PATH, data=FORM, auth=AUTH, headers=headers).status_code == 503
    ok = client.post(PATH, data=FORM, auth=AUTH, headers=headers)
    assert ok.status_code == 201
    again = client.post(PATH, data=FORM, auth=AUTH, headers=headers)
    assert again.json()["sid"] == ok.json()["sid"]
    assert [m["outcome"] for m in sandbox.messages("twilio")] == ["failed", "accepted"]


def test_fetch_message_follows_receipts(
    client: httpx.Client, sandbox: SandboxServer, receiver: Receiver
):
    sid = client.post(PATH, data=FORM, auth=AUTH).json()["sid"]
    receiver.wait(2)
    sandbox.wait_for(lambda: sandbox.messages("twilio")[0]["delivery_status"] == "delivered")
    r = client.get(f"/2010-04-01/Accounts/{SID}/Messages/{sid}.json", auth=AUTH)
    assert r.status_code == 200 and r.json()["status"] == "delivered"
    missing = client.get(f"/2010-04-01/Accounts/{SID}/Messages/SM{'0' * 32}.json", auth=AUTH)
    assert missing.status_code == 404 and missing.json()["code"] == 20404


def test_status_callbacks_are_signed(
    client: httpx.Client, sandbox: SandboxServer, receiver: Receiver
):
    sid = client.post(PATH, data=FORM, auth=AUTH).json()["sid"]
    sent, delivered = receiver.wait(2)
    url = receiver.url + "/api/v1/providers/twilio/events/"
    for req, status in ((sent, "sent"), (delivered, "delivered")):
        assert req.path == "/api/v1/providers/twilio/events/"
        assert req.headers["Content-Type"].startswith("application/x-www-form-urlencoded")
        params = dict(parse_qsl(req.body.decode()))
        assert params["MessageSid"] == sid
        assert params["MessageStatus"] == status
        assert params["To"] == FORM["To"] and params["From"] == FORM["From"]
        assert params["AccountSid"] == SID
        assert "ErrorCode" not in params
        assert req.headers["X-Twilio-Signature"] == expected_signature(url, params)
    # the receiver has the request before the sandbox has the answer and counts the receipt
    sandbox.wait_for_receipts(2, "twilio")
    stats = sandbox.stats()["providers"]["twilio"]
    assert stats["receipts_sent"] == 2


def test_status_callback_param_and_failure_receipt(
    client: httpx.Client, sandbox: SandboxServer, receiver: Receiver
):
    sandbox.configure("twilio", receipt_status="bounced")
    callback = receiver.url + "/custom/callback?x=1"
    client.post(PATH, data={**FORM, "StatusCallback": callback}, auth=AUTH)
    sent, final = receiver.wait(2)
    assert final.path == "/custom/callback?x=1"
    params = dict(parse_qsl(final.body.decode()))
    assert params["MessageStatus"] == "undelivered"
    assert params["ErrorCode"] == "30003"
    assert final.headers["X-Twilio-Signature"] == expected_signature(callback, params)


def test_receipt_status_per_recipient_and_none(
    client: httpx.Client, sandbox: SandboxServer, receiver: Receiver
):
    sandbox.configure(
        "twilio",
        receipt_status="none",
        receipt_status_by_recipient={"+15551230002": "failed"},
    )
    client.post(PATH, data=FORM, auth=AUTH)
    client.post(PATH, data={**FORM, "To": "+15551230002"}, auth=AUTH)
    sent, failed = receiver.wait(2)
    time.sleep(0.1)
    assert len(receiver.requests) == 2
    assert dict(parse_qsl(failed.body.decode()))["MessageStatus"] == "failed"
    assert all(dict(parse_qsl(r.body.decode()))["To"] == "+15551230002" for r in (sent, failed))
