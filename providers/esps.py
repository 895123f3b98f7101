"""The ESPs the ``anymail`` provider kind can name (``providers/adapters/email/anymail_esp.py``):
``configuration.esp`` → anymail's backend module and its tracking webhook view."""

from __future__ import annotations

from typing import NamedTuple


class Esp(NamedTuple):
    backend: str  # anymail.backends.<backend>.EmailBackend, anymail.webhooks.<backend>
    tracking_view: str | None  # the class in anymail.webhooks.<backend>; None: no webhook


ESPS: dict[str, Esp] = {
    "amazon_ses": Esp("amazon_ses", "AmazonSESTrackingWebhookView"),  # needs boto3
    "brevo": Esp("brevo", "BrevoTrackingWebhookView"),
    "mailersend": Esp("mailersend", "MailerSendTrackingWebhookView"),
    "mailgun": Esp("mailgun", "MailgunTrackingWebhookView"),
    "mailjet": Esp("mailjet", "MailjetTrackingWebhookView"),
    "mailtrap": Esp("mailtrap", "MailtrapTrackingWebhookView"),
    "mandrill": Esp("mandrill", "MandrillCombinedWebhookView"),
    "postal": Esp("postal", "PostalTrackingWebhookView"),
    "postmark": Esp("postmark", "PostmarkTrackingWebhookView"),
    "resend": Esp("resend", "ResendTrackingWebhookView"),  # signed webhooks need svix
    "scaleway": Esp("scaleway", None),
    "sendgrid": Esp("sendgrid", "SendGridTrackingWebhookView"),
    "sparkpost": Esp("sparkpost", "SparkPostTrackingWebhookView"),
    "unisender_go": Esp("unisender_go", "UnisenderGoTrackingWebhookView"),
}

# option names that carry secrets: those come only from credential_env (the environment)
SECRET_WORDS = ("key", "secret", "token", "password", "username", "auth")
