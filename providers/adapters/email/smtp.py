"""SMTP through Django's mail machinery, over a connection to this provider's host.

``configuration``: ``host``, ``port`` (default settings.EMAIL_HOST/PORT), ``use_tls``,
``use_ssl``, ``timeout``, ``from_email``, ``username_env`` / ``password_env`` (names of
the environment variables holding the login; default settings.EMAIL_HOST_USER/PASSWORD).
"""

from __future__ import annotations

import smtplib
import time
from typing import Any

from django.conf import settings
from django.core.mail import EmailMultiAlternatives
from django.core.mail.backends.smtp import EmailBackend
from django.core.mail.message import make_msgid

from providers import errors, policy
from providers.base import BaseAdapter
from providers.errors import ProviderError
from providers.types import HealthResult, OutboundMessage, SendResult

DELIVERY_HEADER = "X-Notifyplatform-Delivery"


class SmtpAdapter(BaseAdapter):
    kind = "smtp"
    channel = "email"

    def _setting(self, key: str, default: Any) -> Any:
        value = self.config.get(key)
        return default if value in (None, "") else value

    def connection(self) -> EmailBackend:
        username_env = self.config.get("username_env")
        password_env = self.config.get("password_env")
        username = self.env_var(username_env) if username_env else settings.EMAIL_HOST_USER
        password = self.env_var(password_env) if password_env else settings.EMAIL_HOST_PASSWORD
        # the login goes to this host: EMAIL_HOST, or one NP_PROVIDER_ALLOWED_HOSTS lists
        problem = policy.smtp_host_problem(self.config.get("host"), self.config.get("port"))
        if problem:
            raise self.refused(problem)
        # the SMTP backend itself (what get_connection("...smtp.EmailBackend") builds), typed
        return EmailBackend(
            host=self._setting("host", settings.EMAIL_HOST),
            port=int(self._setting("port", settings.EMAIL_PORT)),
            username=username,
            password=password,
            use_tls=bool(self._setting("use_tls", settings.EMAIL_USE_TLS)),
            use_ssl=bool(self._setting("use_ssl", False)),
            timeout=float(self._setting("timeout", settings.EMAIL_TIMEOUT)),
            fail_silently=False,
        )

    def send(self, message: OutboundMessage) -> SendResult:
        if self.missing_credentials():
            raise self.unconfigured()
        from_email = self._setting("from_email", settings.DEFAULT_FROM_EMAIL)
        domain = str(from_email).rsplit("@", 1)[-1].strip(">") or None
        message_id = make_msgid(domain=domain)
        email = EmailMultiAlternatives(
            subject=message.subject or "",
            body=message.text,
            from_email=from_email,
            to=[message.recipient],
            headers={
                **message.headers,
                "Message-ID": message_id,
                DELIVERY_HEADER: str(message.delivery_id),
                "X-Notifyplatform-Idempotency-Key": message.idempotency_key,
            },
        )
        if message.html:
            email.attach_alternative(message.html, "text/html")
        self._send(email)
        return SendResult(
            provider_message_id=message_id,
            response={"message_id": message_id, "host": self._setting("host", settings.EMAIL_HOST)},
        )

    def _send(self, email: EmailMultiAlternatives) -> None:
        connection = self.connection()
        email.connection = connection
        try:
            sent = connection.send_messages([email])
        except smtplib.SMTPRecipientsRefused as exc:
            code, reason = next(iter(exc.recipients.values()))
            raise self._smtp_error(code, reason, errors.INVALID_RECIPIENT) from exc
        except smtplib.SMTPAuthenticationError as exc:
            raise errors.permanent(
                f"{self.name}: SMTP authentication failed ({exc.smtp_code})", errors.AUTH_FAILED
            ) from exc
        except smtplib.SMTPSenderRefused as exc:
            raise self._smtp_error(exc.smtp_code, exc.smtp_error, errors.REJECTED) from exc
        except smtplib.SMTPResponseException as exc:
            raise self._smtp_error(exc.smtp_code, exc.smtp_error, errors.REJECTED) from exc
        except TimeoutError as exc:
            raise errors.transient(f"{self.name}: SMTP timed out", errors.TIMEOUT) from exc
        except (smtplib.SMTPException, OSError) as exc:
            raise errors.transient(
                f"{self.name}: SMTP connection failed ({type(exc).__name__}: {exc})"
            ) from exc
        if sent != 1:
            raise errors.transient(f"{self.name}: SMTP server did not accept the message")

    def _smtp_error(self, code: int, reason: bytes | str, permanent_code: str) -> ProviderError:
        text = reason.decode(errors="replace") if isinstance(reason, bytes) else str(reason)
        message = f"{self.name}: SMTP {code} {text}"
        response = {"smtp_code": code, "smtp_error": text}
        if 400 <= code < 500:  # 4xx replies are temporary by definition (RFC 5321)
            return errors.transient(message, response=response)
        return errors.permanent(message, permanent_code, response)

    def check_health(self) -> HealthResult:
        started = time.monotonic()
        connection = self.connection()
        try:
            connection.open()
            assert connection.connection is not None
            code, _ = connection.connection.noop()
        except (smtplib.SMTPException, OSError) as exc:
            return HealthResult(
                ok=False,
                response_time_ms=int((time.monotonic() - started) * 1000),
                error_code=errors.PROVIDER_UNAVAILABLE,
                error_message=f"{type(exc).__name__}: {exc}",
            )
        finally:
            connection.close()
        elapsed = int((time.monotonic() - started) * 1000)
        if code != 250:
            return HealthResult(
                ok=False,
                response_time_ms=elapsed,
                error_code=errors.PROVIDER_UNAVAILABLE,
                error_message=f"NOOP answered {code}",
            )
        return HealthResult(ok=True, response_time_ms=elapsed)
