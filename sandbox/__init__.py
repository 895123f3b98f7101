"""Local provider sandbox: fake Twilio, Vonage, Mailgun, SendGrid, Postmark, FCM, Web Push and a
generic webhook receiver, with failure injection and signed delivery receipts.

In-process use (tests)::

    from sandbox import SandboxServer

    with SandboxServer(config={"receipt_url": "http://127.0.0.1:8000"}) as sandbox:
        sandbox.configure("twilio", fail_next=2, status=503)
        ...  # point adapters at sandbox.url
        sandbox.messages("twilio")

Command line: ``python -m sandbox --host 127.0.0.1 --port 8025``.
See ``sandbox/README.md`` for the endpoints, the control API and the receipt formats.
"""

from .config import (
    DEFAULT_CREDENTIALS,
    DEFAULT_RECEIPT_PATH,
    PROVIDERS,
    RECEIPT_PROVIDERS,
    RECEIPT_STATUSES,
    ConfigError,
    ProviderConfig,
)
from .server import SandboxServer, create_app, serve

__all__ = [
    "DEFAULT_CREDENTIALS",
    "DEFAULT_RECEIPT_PATH",
    "PROVIDERS",
    "RECEIPT_PROVIDERS",
    "RECEIPT_STATUSES",
    "ConfigError",
    "ProviderConfig",
    "SandboxServer",
    "create_app",
    "serve",
]
