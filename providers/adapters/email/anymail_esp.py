"""Any ESP through django-anymail: the ``anymail`` provider kind.

A row names the ESP and its settings in ``configuration``::

    {"esp": "resend",                       # a key of ESPS
     "from_email": "News <news@example.com>",
     "credential_env": {"api_key": "ANYMAIL_RESEND_API_KEY"},        # backend kwargs
     "webhook_credential_env": {"webhook_secret": "ANYMAIL_WEBHOOK_SECRET"},  # webhook
     "options": {"api_url": "https://api.resend.com/"},              # non-secret kwargs
     "event_tolerance_seconds": 300}

Credentials come only from environment variables, named in ``credential_env`` (role = the
anymail backend's keyword, e.g. ``api_key``, ``server_token``, ``secret_key``) and
``webhook_credential_env`` (``webhook_secret`` = anymail's basic-auth ``user:password``;
the ESP's signing key under the keyword its tracking view takes, e.g. Mailgun's
``webhook_signing_key``, Postal's ``webhook_key``); ``providers.policy`` allows only
``ANYMAIL_…`` names (or NP_PROVIDER_CREDENTIAL_ENV_ALLOWED), refuses secret-looking keys in
``options`` and any ``*_url`` option that is not allow-listed.

Sending goes through anymail's backend for the ESP: blocking (``requests``), so the batch
sender runs it in its thread pool (``BaseAdapter.asend``), as it does SMTP. Receipts come to
``POST /api/v1/providers/<name>/events/``: anymail's tracking view for the ESP validates
them (basic auth and/or the ESP's signature) and normalises them to
``AnymailTrackingEvent``s, which become our ``Receipt``s; on top, an event's timestamp must
be within the tolerance and its id is claimed once (``providers.replay``).
"""

from __future__ import annotations

import os
import warnings
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.core.mail import EmailMultiAlternatives
from django.utils.module_loading import import_string

from providers import errors, replay
from providers.adapters.email.smtp import DELIVERY_HEADER
from providers.base import BaseAdapter, ReceiptMalformedError, ReceiptSignatureError
from providers.errors import ProviderError
from providers.esps import ESPS
from providers.types import OutboundMessage, Receipt, ReceiptStatus, SendResult

if TYPE_CHECKING:
    from django.http import HttpRequest

# anymail's normalised event types → ours (queued, sent, deferred, autoresponded,
# subscribed and unknown say nothing our rows record: dropped)
EVENTS = {
    "delivered": ReceiptStatus.DELIVERED,
    "bounced": ReceiptStatus.BOUNCED,
    "rejected": ReceiptStatus.FAILED,
    "failed": ReceiptStatus.FAILED,
    "complained": ReceiptStatus.COMPLAINED,
    "opened": ReceiptStatus.OPENED,
    "clicked": ReceiptStatus.CLICKED,
    "unsubscribed": ReceiptStatus.UNSUBSCRIBED,
}


class AnymailAdapter(BaseAdapter):
    kind = "anymail"
    channel = "email"

    @property
    def esp(self) -> str:
        esp = str(self.config.get("esp") or "")
        if esp not in ESPS:
            raise self.refused(f"unknown anymail ESP {esp!r}")
        return esp

    def _names(self, key: str) -> dict[str, str]:
        """A role → variable name map of the row (``credential_env``, …); a row edited
        into another shape is refused."""
        names = self.config.get(key) or {}
        if not isinstance(names, dict):
            raise self.refused(f"{key} must be an object")
        return {str(role): str(name) for role, name in names.items()}

    def _credentials(self, key: str) -> dict[str, str]:
        return {role: self.env_var(name) for role, name in self._names(key).items()}

    def missing_credentials(self) -> list[str]:
        missing = super().missing_credentials()
        names = self._names("credential_env").values()
        return missing + [n for n in names if not os.environ.get(n) and n not in missing]

    def backend(self) -> Any:
        """anymail's EmailBackend for the ESP, with the row's options and credentials."""
        problems = self.configuration_refused()
        if problems:
            raise self.refused("; ".join(problems))
        module = ESPS[self.esp].backend
        try:
            backend_class = import_string(f"anymail.backends.{module}.EmailBackend")
        except ImportError as exc:  # amazon_ses needs boto3
            raise self.refused(f"anymail's {module} backend cannot load: {exc}") from exc
        options = dict(self.config.get("options") or {})
        try:
            return backend_class(
                fail_silently=False, **options, **self._credentials("credential_env")
            )
        except ImproperlyConfigured as exc:
            raise self.refused(str(exc)) from exc

    def send(self, message: OutboundMessage) -> SendResult:
        if self.missing_credentials():
            raise self.unconfigured()
        from anymail.exceptions import AnymailError, AnymailRecipientsRefused

        email = EmailMultiAlternatives(
            subject=message.subject or "",
            body=message.text,
            from_email=str(self.config.get("from_email") or settings.DEFAULT_FROM_EMAIL),
            to=[message.recipient],
            headers={**message.headers, DELIVERY_HEADER: str(message.delivery_id)},
            connection=self.backend(),
        )
        if message.html:
            email.attach_alternative(message.html, "text/html")
        email.metadata = {"delivery_id": str(message.delivery_id)}  # type: ignore[attr-defined]
        try:
            email.send()
        except AnymailRecipientsRefused as exc:
            raise errors.permanent(f"{self.name}: {exc}", errors.INVALID_RECIPIENT) from exc
        except AnymailError as exc:
            raise self._api_error(exc) from exc
        status = email.anymail_status  # type: ignore[attr-defined]
        message_id = status.message_id if isinstance(status.message_id, str) else None
        return SendResult(
            provider_message_id=message_id,
            response={"esp": self.esp, "status": sorted(status.status or ()), "id": message_id},
            cost=self.provider.cost_per_message,
        )

    def _api_error(self, exc: Exception) -> ProviderError:
        code = getattr(exc, "status_code", None)
        text = f"{self.name} ({self.esp}): {str(exc).splitlines()[0] if str(exc) else exc}"
        response = {"status_code": code} if code else None
        if code is None:  # no answer: connection refused, timeout
            return errors.transient(text, response=response)
        if code == 429:
            return errors.transient(text, errors.RATE_LIMITED, response=response)
        if code >= 500:
            return errors.transient(text, errors.PROVIDER_UNAVAILABLE, response=response)
        if code in (401, 403):
            return errors.permanent(text, errors.AUTH_FAILED, response)
        return errors.permanent(text, errors.REJECTED, response)

    # -- receipts ------------------------------------------------------------------
    def _tracking_view(self) -> Any:
        view_name = ESPS[self.esp].tracking_view
        if view_name is None:
            raise ReceiptSignatureError(f"anymail has no tracking webhook for {self.esp}")
        try:
            secrets = self._credentials("webhook_credential_env")
        except ProviderError as exc:  # refused by the credential policy
            raise ReceiptSignatureError(exc.message) from exc
        basic = secrets.pop("webhook_secret", "")
        if not basic and not any(secrets.values()):
            # an unsecured webhook would let anyone mark mail opened or unsubscribed
            raise ReceiptSignatureError(f"provider {self.name}: no webhook secret configured")
        view_class = import_string(f"anymail.webhooks.{ESPS[self.esp].backend}.{view_name}")
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # anymail's "insecure webhook": checked above
            try:
                return view_class(webhook_secret=[basic] if basic else [], **secrets)
            except ImproperlyConfigured as exc:  # incl. a missing package (svix for resend)
                raise ReceiptSignatureError(f"provider {self.name}: {exc}") from exc

    def parse_receipts(self, request: HttpRequest) -> list[Receipt]:
        from anymail.exceptions import AnymailWebhookValidationFailure

        view = self._tracking_view()
        try:
            view.run_validators(request)
        except AnymailWebhookValidationFailure as exc:
            raise ReceiptSignatureError(str(exc)) from exc
        try:
            events = view.parse_events(request)
        except (ValueError, KeyError, TypeError, AttributeError) as exc:
            raise ReceiptMalformedError(f"unreadable {self.esp} webhook: {exc}") from exc
        receipts = [r for r in (self._receipt(e) for e in events) if r is not None]
        for receipt in receipts:  # fresh, and each event applied once
            self._check_fresh(receipt)
        for receipt in receipts:
            if receipt.event_id:
                scope = f"anymail:{self.name}"
                replay.claim_nonce(scope, f"{receipt.status}:{receipt.event_id}")
                self.claimed_nonces.append((scope, f"{receipt.status}:{receipt.event_id}"))
        return receipts

    def _check_fresh(self, receipt: Receipt) -> None:
        if receipt.timestamp is None:
            return
        tolerance = float(self.config.get("event_tolerance_seconds") or replay.tolerance_seconds())
        skew = abs((datetime.now(UTC) - receipt.timestamp).total_seconds())
        if skew > tolerance:
            raise replay.ReceiptExpiredError(
                f"{self.name}: event time is {int(skew)} s from now (tolerance {int(tolerance)} s)"
            )

    def _receipt(self, event: Any) -> Receipt | None:
        status = EVENTS.get(str(event.event_type))
        if status is None or not event.message_id:
            return None
        when = event.timestamp
        if isinstance(when, datetime) and when.tzinfo is None:
            when = when.replace(tzinfo=UTC)
        raw = event.esp_event if isinstance(event.esp_event, dict) else {}
        reason = str(event.reject_reason or "")
        return Receipt(
            provider_message_id=str(event.message_id).strip("<>"),
            status=status,
            event=str(event.event_type),
            timestamp=when if isinstance(when, datetime) else None,
            recipient=event.recipient,
            error_code=f"ANYMAIL_{reason.upper()}" if reason else None,
            description=event.description or event.mta_response or None,
            raw={**raw, "anymail_reject_reason": reason} if reason else raw,
            event_id=str(event.event_id) if event.event_id else None,
            click_url=event.click_url or None,
        )
