"""Signature schemes used by the providers' webhooks (sign and verify).

These follow the providers' published algorithms so that the platform's verification code can
be tested against them:

* Twilio: ``X-Twilio-Signature`` = base64(HMAC-SHA1(auth_token, url + sorted name+value pairs)).
* Vonage "signed messages": ``sig`` = HMAC-<method>(signature_secret, "&k=v" for sorted params,
  with ``&`` and ``=`` in values replaced by ``_``) as lowercase hex; ``md5hash`` appends the
  secret to the string and takes a plain MD5 instead.
* Mailgun: ``signature`` = hex HMAC-SHA256(webhook_signing_key, timestamp + token).
* SendGrid Signed Event Webhook: base64 DER ECDSA-P256-SHA256 over ``timestamp + payload``;
  the public key is shown as base64 DER SubjectPublicKeyInfo.
* Standard Webhooks: ``v1,`` + base64 HMAC-SHA256(base64-decoded secret, "{id}.{ts}.{body}").
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
from collections.abc import Mapping
from functools import lru_cache

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature

# --------------------------------------------------------------------------- Twilio


def twilio_signature(auth_token: str, url: str, params: Mapping[str, str] | None = None) -> str:
    data = url
    if params:
        data += "".join(f"{key}{params[key]}" for key in sorted(params))
    digest = hmac.new(auth_token.encode(), data.encode(), hashlib.sha1).digest()
    return base64.b64encode(digest).decode()


def verify_twilio_signature(
    auth_token: str, url: str, params: Mapping[str, str], signature: str
) -> bool:
    return hmac.compare_digest(twilio_signature(auth_token, url, params), signature)


# --------------------------------------------------------------------------- Vonage

VONAGE_SIGNATURE_METHODS: frozenset[str] = frozenset({"md5hash", "md5", "sha1", "sha256", "sha512"})


def vonage_signature(secret: str, params: Mapping[str, object], method: str = "sha256") -> str:
    """Vonage signed-message ``sig`` over every param except ``sig`` itself."""
    if method not in VONAGE_SIGNATURE_METHODS:
        raise ValueError(f"unsupported Vonage signature method {method!r}")
    parts = []
    for key in sorted(params):
        if key == "sig":
            continue
        value = str(params[key]).replace("&", "_").replace("=", "_")
        parts.append(f"&{key}={value}")
    text = "".join(parts)
    if method == "md5hash":
        # Vonage's legacy "md5hash" scheme; md5 is what the provider specifies.
        return hashlib.md5((text + secret).encode()).hexdigest()  # noqa: S324
    return hmac.new(secret.encode(), text.encode(), method).hexdigest()


def verify_vonage_signature(
    secret: str, params: Mapping[str, object], method: str = "sha256"
) -> bool:
    sig = str(params.get("sig", ""))
    return hmac.compare_digest(vonage_signature(secret, params, method), sig.lower())


# --------------------------------------------------------------------------- Mailgun


def mailgun_signature(signing_key: str, timestamp: str, token: str) -> str:
    return hmac.new(signing_key.encode(), (timestamp + token).encode(), hashlib.sha256).hexdigest()


def verify_mailgun_signature(signing_key: str, timestamp: str, token: str, signature: str) -> bool:
    return hmac.compare_digest(mailgun_signature(signing_key, timestamp, token), signature)


# --------------------------------------------------------------------------- SendGrid

_P256_ORDER = int("FFFFFFFF00000000FFFFFFFFFFFFFFFFBCE6FAADA7179E84F3B9CAC2FC632551", 16)


@lru_cache(maxsize=8)
def sendgrid_private_key(
    pem: str | None = None, seed: str = "notifyplatform-sandbox-sendgrid"
) -> ec.EllipticCurvePrivateKey:
    """The webhook signing key: from a PEM, else derived deterministically from ``seed``."""
    if pem:
        key = serialization.load_pem_private_key(pem.encode(), password=None)
        if not isinstance(key, ec.EllipticCurvePrivateKey):
            raise ValueError("the SendGrid webhook key must be an EC (P-256) private key")
        return key
    scalar = int.from_bytes(hashlib.sha256(seed.encode()).digest(), "big") % (_P256_ORDER - 1) + 1
    return ec.derive_private_key(scalar, ec.SECP256R1())


def sendgrid_public_key_b64(private_key: ec.EllipticCurvePrivateKey) -> str:
    """Public key as SendGrid shows it: base64 of the DER SubjectPublicKeyInfo."""
    der = private_key.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return base64.b64encode(der).decode()


def sendgrid_public_key_pem(private_key: ec.EllipticCurvePrivateKey) -> str:
    return (
        private_key.public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        .decode()
    )


def sendgrid_signature(
    private_key: ec.EllipticCurvePrivateKey, timestamp: str, payload: bytes
) -> str:
    der = private_key.sign(timestamp.encode() + payload, ec.ECDSA(hashes.SHA256()))
    return base64.b64encode(der).decode()


def verify_sendgrid_signature(
    public_key_b64: str, timestamp: str, payload: bytes, signature: str
) -> bool:
    key = serialization.load_der_public_key(base64.b64decode(public_key_b64))
    if not isinstance(key, ec.EllipticCurvePublicKey):
        return False
    try:
        key.verify(
            base64.b64decode(signature), timestamp.encode() + payload, ec.ECDSA(hashes.SHA256())
        )
    except (InvalidSignature, binascii.Error, ValueError):
        return False
    return True


# --------------------------------------------------------------------------- Standard Webhooks


def standard_webhooks_key(secret: str) -> bytes:
    """Key bytes of a ``whsec_<base64>`` secret (a secret without the prefix is base64 too)."""
    raw = secret.removeprefix("whsec_")
    try:
        return base64.b64decode(raw, validate=True)
    except binascii.Error:
        # Not base64: use the text itself, as some senders do for plain secrets.
        return raw.encode()


def standard_webhooks_signature(secret: str, msg_id: str, timestamp: str, body: bytes) -> str:
    signed = f"{msg_id}.{timestamp}.".encode() + body
    digest = hmac.new(standard_webhooks_key(secret), signed, hashlib.sha256).digest()
    return "v1," + base64.b64encode(digest).decode()


def verify_standard_webhooks_signature(
    secret: str, msg_id: str, timestamp: str, body: bytes, header: str
) -> bool:
    """True when any space-separated ``v1,<sig>`` entry of ``header`` matches."""
    expected = standard_webhooks_signature(secret, msg_id, timestamp, body).split(",", 1)[1]
    for entry in header.split():
        version, _, sig = entry.partition(",")
        if version == "v1" and hmac.compare_digest(sig, expected):
            return True
    return False


# --------------------------------------------------------------------------- Web Push VAPID


def _b64url_decode(data: str) -> bytes:
    return base64.urlsafe_b64decode(data + "=" * (-len(data) % 4))


def verify_vapid_jwt(token: str, public_key_b64url: str) -> dict[str, object] | None:
    """Verify an ES256 VAPID JWT against the uncompressed P-256 key ``k``; return its claims."""
    try:
        header_b64, claims_b64, sig_b64 = token.split(".")
        header = json.loads(_b64url_decode(header_b64))
        claims = json.loads(_b64url_decode(claims_b64))
        raw_sig = _b64url_decode(sig_b64)
        point = _b64url_decode(public_key_b64url)
        key = ec.EllipticCurvePublicKey.from_encoded_point(ec.SECP256R1(), point)
    except (ValueError, binascii.Error, TypeError):
        return None
    if not isinstance(header, dict) or header.get("alg") != "ES256" or len(raw_sig) != 64:
        return None
    if not isinstance(claims, dict):
        return None
    der = encode_dss_signature(
        int.from_bytes(raw_sig[:32], "big"), int.from_bytes(raw_sig[32:], "big")
    )
    try:
        key.verify(der, f"{header_b64}.{claims_b64}".encode(), ec.ECDSA(hashes.SHA256()))
    except InvalidSignature:
        return None
    return claims
