"""Adapter kinds → classes, imported lazily so a missing optional dependency of one
provider (e.g. pywebpush) never breaks the others."""

from __future__ import annotations

import functools
from typing import TYPE_CHECKING

from django.utils.module_loading import import_string

if TYPE_CHECKING:
    from providers.base import BaseAdapter
    from providers.models import Provider

ADAPTERS: dict[str, str] = {
    "smtp": "providers.adapters.email.smtp.SmtpAdapter",
    "mailgun": "providers.adapters.email.mailgun.MailgunAdapter",
    "sendgrid": "providers.adapters.email.sendgrid.SendGridAdapter",
    "postmark": "providers.adapters.email.postmark.PostmarkAdapter",
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
def adapter_class(kind: str) -> type[BaseAdapter]:
    """The class for a kind ("smtp") or a dotted path ("myapp.adapters.Foo"); cached, the
    batch sender asks once per send (a failed import is not cached: it raises)."""
    path = ADAPTERS.get(kind) or (kind if "." in kind else None)
    if path is None:
        raise UnknownAdapterError(f"unknown provider kind {kind!r}")
    try:
        return import_string(path)  # type: ignore[no-any-return]
    except ImportError as exc:
        raise UnknownAdapterError(f"cannot import adapter {path!r}: {exc}") from exc


def get_adapter(provider: Provider) -> BaseAdapter:
    return adapter_class(provider.provider_class)(provider)
