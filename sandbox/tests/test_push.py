"""FCM HTTP v1 (with its OAuth token endpoint) and Web Push."""

from __future__ import annotations

import base64
import json
import os
import re
import time

import httpx
import pytest
import pywebpush
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature

from sandbox import DEFAULT_CREDENTIALS, SandboxServer

FCM_TOKEN = DEFAULT_CREDENTIALS["fcm"]["access_token"]
FCM_HEADERS = {"Authorization": f"Bearer {FCM_TOKEN}"}
FCM_PATH = "/v1/projects/demo-project/messages:send"
FCM_BODY = {
    "message": {
        "token": "fcm-device-token-1",
        "notification": {"title": "Hello", "body": "World"},
        "data": {"notification_id": "n-1"},
    }
}


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode().rstrip("=")


def fcm_error_code(response: httpx.Response) -> str | None:
    for detail in response.json()["error"].get("details", []):
        if detail["@type"].endswith("FcmError"):
            return detail["errorCode"]
    return None


# ----------------------------------------------------------------------------- FCM


def test_fcm_send(client: httpx.Client, sandbox: SandboxServer):
    r = client.post(FCM_PATH, json=FCM_BODY, headers=FCM_HEADERS)
    assert r.status_code == 200
    assert re.fullmatch(r"projects/demo-project/messages/0:\d{16}%[0-9a-f]{16}", r.json()["name"])
    [rec] = sandbox.messages("fcm")
    assert rec["recipient"] == "fcm-device-token-1"
    assert rec["subject"] == "Hello" and rec["body"] == "World"
    assert rec["data"]["data"] == {"notification_id": "n-1"}


def test_fcm_token_endpoint_issues_usable_tokens(client: httpx.Client):
    now = int(time.time())
    header = b64url(json.dumps({"alg": "RS256", "typ": "JWT"}).encode())
    claims = {
        "iss": "sa@demo-project.iam.gserviceaccount.com",
        "scope": "https://www.googleapis.com/auth/firebase.messaging",
        "aud": "https://oauth2.googleapis.com/token",
        "iat": now,
        "exp": now + 3600,
    }
    assertion = f"{header}.{b64url(json.dumps(claims).encode())}.{b64url(b'sig')}"
    grant = "urn:ietf:params:oauth:grant-type:jwt-bearer"
    r = client.post("/token", data={"grant_type": grant, "assertion": assertion})
    assert r.status_code == 200
    token = r.json()
    assert token["expires_in"] == 3599 and token["token_type"] == "Bearer"
    headers = {"Authorization": f"Bearer {token['access_token']}"}
    assert client.post(FCM_PATH, json=FCM_BODY, headers=headers).status_code == 200
    r = client.post("/token", data={"grant_type": "password", "assertion": assertion})
    assert r.status_code == 400 and r.json()["error"] == "unsupported_grant_type"
    r = client.post("/token", data={"grant_type": grant, "assertion": "garbage"})
    assert r.status_code == 400 and r.json()["error"] == "invalid_grant"


def test_fcm_auth_and_validation_errors(client: httpx.Client, sandbox: SandboxServer):
    r = client.post(FCM_PATH, json=FCM_BODY, headers={"Authorization": "Bearer nope"})
    assert r.status_code == 401 and r.json()["error"]["status"] == "UNAUTHENTICATED"
    r = client.post(FCM_PATH, json={"message": {"notification": {}}}, headers=FCM_HEADERS)
    assert r.status_code == 400
    assert r.json()["error"]["status"] == "INVALID_ARGUMENT"
    assert fcm_error_code(r) == "INVALID_ARGUMENT"
    body = {"message": {"token": "t", "data": {"n": 1}}}
    r = client.post(FCM_PATH, json=body, headers=FCM_HEADERS)
    assert r.status_code == 400
    sandbox.configure("fcm", invalid_recipients=["fcm-device-token-1"])
    r = client.post(FCM_PATH, json=FCM_BODY, headers=FCM_HEADERS)
    assert r.status_code == 404
    assert r.json()["error"] == {
        "code": 404,
        "message": "Requested entity was not found.",
        "status": "NOT_FOUND",
        "details": [
            {
                "@type": "type.googleapis.com/google.firebase.fcm.v1.FcmError",
                "errorCode": "UNREGISTERED",
            }
        ],
    }


@pytest.mark.parametrize(
    ("status", "canonical", "code"),
    [(429, "RESOURCE_EXHAUSTED", "QUOTA_EXCEEDED"), (503, "UNAVAILABLE", "UNAVAILABLE")],
)
def test_fcm_transient_errors(
    client: httpx.Client, sandbox: SandboxServer, status, canonical, code
):
    sandbox.configure("fcm", status=status, retry_after=5)
    r = client.post(FCM_PATH, json=FCM_BODY, headers=FCM_HEADERS)
    assert r.status_code == status
    assert r.json()["error"]["status"] == canonical
    assert fcm_error_code(r) == code
    assert r.headers["Retry-After"] == "5"


def test_fcm_error_code_and_quota(client: httpx.Client, sandbox: SandboxServer):
    sandbox.configure("fcm", error_code="UNREGISTERED", fail_next=1)
    r = client.post(FCM_PATH, json=FCM_BODY, headers=FCM_HEADERS)
    assert r.status_code == 404 and fcm_error_code(r) == "UNREGISTERED"
    sandbox.configure("fcm", remaining=2)
    codes = [client.post(FCM_PATH, json=FCM_BODY, headers=FCM_HEADERS).status_code for _ in "abc"]
    assert codes == [200, 200, 429]


# ----------------------------------------------------------------------------- Web Push


def vapid_headers(origin: str, key: ec.EllipticCurvePrivateKey, exp_in: int = 3600) -> str:
    header = b64url(json.dumps({"typ": "JWT", "alg": "ES256"}).encode())
    claims = {"aud": origin, "exp": int(time.time()) + exp_in, "sub": "mailto:ops@example.com"}
    signing_input = f"{header}.{b64url(json.dumps(claims).encode())}"
    r, s = decode_dss_signature(key.sign(signing_input.encode(), ec.ECDSA(hashes.SHA256())))
    sig = r.to_bytes(32, "big") + s.to_bytes(32, "big")
    public = key.public_key().public_bytes(
        serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint
    )
    return f"vapid t={signing_input}.{b64url(sig)}, k={b64url(public)}"


def fake_aes128gcm(size: int = 120) -> bytes:
    salt, rs, keyid = os.urandom(16), (4096).to_bytes(4, "big"), os.urandom(65)
    return salt + rs + bytes([65]) + keyid + os.urandom(size)


def test_webpush_accepts_encrypted_payload(client: httpx.Client, sandbox: SandboxServer):
    key = ec.generate_private_key(ec.SECP256R1())
    headers = {
        "TTL": "60",
        "Content-Encoding": "aes128gcm",
        "Urgency": "high",
        "Authorization": vapid_headers(sandbox.url, key),
    }
    body = fake_aes128gcm()
    r = client.post("/push/sub-1", content=body, headers=headers)
    assert r.status_code == 201
    assert r.headers["Location"].startswith(sandbox.url + "/m/")
    [rec] = sandbox.messages("webpush")
    assert rec["recipient"] == "sub-1"
    assert rec["data"]["size"] == len(body)
    assert rec["headers"]["TTL"] == "60" and rec["headers"]["Urgency"] == "high"
    assert rec["data"]["vapid"]["sub"] == "mailto:ops@example.com"


def test_webpush_errors(client: httpx.Client, sandbox: SandboxServer):
    key = ec.generate_private_key(ec.SECP256R1())
    good = {"TTL": "0", "Content-Encoding": "aes128gcm"}
    good["Authorization"] = vapid_headers(sandbox.url, key)
    body = fake_aes128gcm()
    r = client.post("/push/sub-1", content=body, headers={"TTL": "0"})
    assert r.status_code == 401 and r.json()["errno"] == 109
    forged = good["Authorization"].replace("k=", "k=" + "A")
    r = client.post("/push/sub-1", content=body, headers={**good, "Authorization": forged})
    assert r.status_code == 401
    wrong_aud = vapid_headers("https://push.example.com", key)
    r = client.post("/push/sub-1", content=body, headers={**good, "Authorization": wrong_aud})
    assert r.status_code == 401
    r = client.post("/push/sub-1", content=b"x" * 5000, headers=good)
    assert r.status_code == 413
    r = client.post("/push/sub-1", content=body, headers={**good, "Content-Encoding": "x-unknown"})
    assert r.status_code == 400
    sandbox.configure("webpush", gone_ids=["sub-gone"], unknown_ids=["sub-unknown"])
    assert client.post("/push/sub-gone", content=body, headers=good).status_code == 410
    assert client.post("/push/sub-unknown", content=body, headers=good).status_code == 404
    sandbox.configure("webpush", status=429, retry_after=9)
    r = client.post("/push/sub-1", content=body, headers=good)
    assert r.status_code == 429 and r.headers["Retry-After"] == "9"


def test_webpush_with_pywebpush(sandbox: SandboxServer):
    client_key = ec.generate_private_key(ec.SECP256R1())
    p256dh = client_key.public_key().public_bytes(
        serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint
    )
    subscription = {
        "endpoint": f"{sandbox.url}/push/browser-1",
        "keys": {"p256dh": b64url(p256dh), "auth": b64url(os.urandom(16))},
    }
    vapid_key = ec.generate_private_key(ec.SECP256R1())
    vapid_pem = vapid_key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ).decode()
    from py_vapid import Vapid02

    response = pywebpush.webpush(
        subscription,
        data=json.dumps({"title": "hi"}),
        vapid_private_key=Vapid02.from_pem(vapid_pem.encode()),
        vapid_claims={"sub": "mailto:ops@example.com"},
        ttl=30,
    )
    assert response.status_code == 201
    [rec] = sandbox.messages("webpush")
    assert rec["headers"]["Content-Encoding"] == "aes128gcm"
    assert rec["data"]["vapid"]["aud"] == sandbox.url
