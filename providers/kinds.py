"""Adapter kinds → dotted paths of their classes, imported lazily so a missing optional
dependency of one provider (e.g. pywebpush) never breaks the others.

The bottom of the providers core: it imports no other providers module, so the model
(``Provider.clean`` asks a row's adapter for its policy kind) can use it without
closing a circle through the adapter base class and the registry, which both refer to
the model.
"""

from __future__ import annotations

import functools
from typing import cast

from django.utils.module_loading import import_string

ADAPTERS: dict[str, str] = {
    "smtp": "providers.adapters.email.smtp.SmtpAdapter",
    "mailgun": "providers.adapters.email.mailgun.MailgunAdapter",
    "sendgrid": "providers.adapters.email.sendgrid.SendGridAdapter",
    "postmark": "providers.adapters.email.postmark.PostmarkAdapter",
    "anymail": "providers.adapters.email.anymail_esp.AnymailAdapter",
    "twilio": "providers.adapters.sms.twilio.TwilioAdapter",
    "vonage": "providers.adapters.sms.vonage.VonageAdapter",
    "fcm": "providers.adapters.push.fcm.FcmAdapter",
    "webpush": "providers.adapters.push.webpush.WebPushAdapter",
    "webhook": "providers.adapters.webhook.standard.WebhookAdapter",
    "in_app": "providers.adapters.in_app.local.InAppAdapter",
    "console": "providers.adapters.console.console.ConsoleAdapter",
}


class UnknownAdapterError(LookupError):
    pass


@functools.lru_cache(maxsize=256)
def load_adapter(kind: str) -> type:
    """The class for a kind ("smtp") or a dotted path ("myapp.adapters.Foo"); cached, the
    batch sender asks once per send (a failed import is not cached: it raises)."""
    path = ADAPTERS.get(kind) or (kind if "." in kind else None)
    if path is None:
        raise UnknownAdapterError(f"unknown provider kind {kind!r}")
    try:
        return cast(type, import_string(path))
    except ImportError as exc:
        raise UnknownAdapterError(f"cannot import adapter {path!r}: {exc}") from exc


def adapter_kind(kind: str) -> str:
    """The kind an adapter reports (its ``kind`` attribute, e.g. "twilio" for a dotted
    path to a Twilio subclass), or ``kind`` itself when it reports none.

    Raises ``UnknownAdapterError`` like ``load_adapter``."""
    reported: str = load_adapter(kind).kind  # type: ignore[attr-defined]
    return reported or kind
