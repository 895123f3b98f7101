"""The demo providers' environment for ``run``: credentials that make them send to the
provider sandbox, and the generated secrets two of them need."""

from __future__ import annotations

import os
import secrets
from collections.abc import Callable, Mapping
from pathlib import Path

# Environment variable → (sandbox provider, key in sandbox DEFAULT_CREDENTIALS):
# the credentials the demo providers (demo/accounts.py) read, as the sandbox expects.
DEMO_CREDENTIALS: dict[str, tuple[str, str]] = {
    "TWILIO_ACCOUNT_SID": ("twilio", "account_sid"),
    "TWILIO_AUTH_TOKEN": ("twilio", "auth_token"),
    "VONAGE_API_KEY": ("vonage", "api_key"),
    "VONAGE_API_SECRET": ("vonage", "api_secret"),
    "VONAGE_SIGNATURE_SECRET": ("vonage", "signature_secret"),
    "MAILGUN_API_KEY": ("mailgun", "api_key"),
    "MAILGUN_WEBHOOK_SIGNING_KEY": ("mailgun", "webhook_signing_key"),
    "SENDGRID_API_KEY": ("sendgrid", "api_key"),
    "POSTMARK_SERVER_TOKEN": ("postmark", "server_token"),
    "POSTMARK_WEBHOOK_USERNAME": ("postmark", "webhook_username"),
    "POSTMARK_WEBHOOK_PASSWORD": ("postmark", "webhook_password"),
    "FCM_ACCESS_TOKEN": ("fcm", "access_token"),
}


def _demo_secret(rundir: Path | None, name: str, make: Callable[[], str]) -> str:
    """A generated demo secret, kept in the run dir so it survives restarts (a browser's
    push subscription is bound to the VAPID key it was made with)."""
    path = rundir / name if rundir is not None else None
    if path is not None:
        try:
            return path.read_text().strip()
        except FileNotFoundError:
            pass
    value = make()
    if path is not None:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as fh:
            fh.write(value + "\n")
    return value


def _vapid_key() -> str:
    import base64

    from cryptography.hazmat.primitives.asymmetric import ec

    scalar = ec.generate_private_key(ec.SECP256R1()).private_numbers().private_value
    return base64.urlsafe_b64encode(scalar.to_bytes(32, "big")).rstrip(b"=").decode()


def _webhook_secret() -> str:
    import base64

    return "whsec_" + base64.b64encode(secrets.token_bytes(24)).decode()


def demo_env(
    environ: Mapping[str, str], *, sandbox_url: str, rundir: Path | None = None
) -> tuple[dict[str, str], list[str]]:
    """The variables ``run`` adds so the demo providers send to the provider sandbox.

    Returns (variables to set, names already set and kept): a variable already in
    ``environ`` is never overridden, so real credentials win over the sandbox's.
    ``NP_SANDBOX_URL`` makes ``seed_demo`` point the providers' API base URLs at the
    sandbox. No ``NP_WEBHOOK_ALLOWED_HOSTS``: the demo's HTTP providers are called at
    their configured API base URL, which the SSRF guard (user-chosen targets: webhooks,
    push endpoints) does not apply to.
    """
    # here: the sandbox is a development tool; the launcher needs it only for the demo
    from sandbox import signing
    from sandbox.config import DEFAULT_CREDENTIALS, sendgrid_private_key_pem

    wanted: dict[str, str] = {"NP_SANDBOX_URL": sandbox_url}
    for name, (provider, key) in DEMO_CREDENTIALS.items():
        wanted[name] = str(DEFAULT_CREDENTIALS[provider][key])
    sendgrid = DEFAULT_CREDENTIALS["sendgrid"]
    wanted["SENDGRID_WEBHOOK_PUBLIC_KEY"] = signing.sendgrid_public_key_b64(
        signing.sendgrid_private_key(
            sendgrid_private_key_pem(sendgrid), sendgrid["webhook_key_seed"]
        )
    )
    added: dict[str, str] = {}
    kept: list[str] = []
    for name, value in wanted.items():
        if environ.get(name):
            kept.append(name)
        else:
            added[name] = value
    # Not sandbox-backed, but without them two demo providers would be "unconfigured".
    generated = {
        "WEBPUSH_VAPID_PRIVATE_KEY": ("webpush-vapid-key", _vapid_key),
        "WEBHOOK_SIGNING_SECRET": ("webhook-signing-secret", _webhook_secret),
    }
    for name, (filename, make) in generated.items():
        if environ.get(name):
            kept.append(name)
        else:
            added[name] = _demo_secret(rundir, filename, make)
    return added, kept
