"""Firebase Cloud Messaging, HTTP v1 API.

Env: FCM_ACCESS_TOKEN (an OAuth2 bearer token; minting it from a service account is
left to the deployment, e.g. a sidecar refreshing the variable). Configuration:
``project_id``, ``api_base_url`` (default https://fcm.googleapis.com).
The recipient is the device registration token.
"""

from __future__ import annotations

from typing import Any

import httpx

from providers import errors
from providers.base import HttpAdapter
from providers.types import OutboundMessage, SendResult

INVALID_TOKEN_CODES = {"UNREGISTERED", "SENDER_ID_MISMATCH"}


class FcmAdapter(HttpAdapter):
    kind = "fcm"
    channel = "push"
    default_base_url = "https://fcm.googleapis.com"
    not_found_is_invalid_recipient = True  # 404 UNREGISTERED: the token is gone
    credential_env = {"access_token": "FCM_ACCESS_TOKEN"}
    required_credentials = ("access_token",)

    def send(self, message: OutboundMessage) -> SendResult:
        if self.missing_credentials():
            raise self.unconfigured()
        project = str(self.config.get("project_id") or "notifyplatform")
        data = {str(k): str(v) for k, v in (message.data or {}).items()}
        data["delivery_id"] = str(message.delivery_id)
        body = {
            "message": {
                "token": message.recipient,
                "notification": {"title": message.subject or "", "body": message.text},
                "data": data,
            }
        }
        response = self.request(
            "POST",
            f"/v1/projects/{project}/messages:send",
            idempotency_key=message.idempotency_key,
            json=body,
            headers={"Authorization": f"Bearer {self.env('access_token')}"},
        )
        summary = self.raise_for_status(response)
        return SendResult(
            provider_message_id=(summary.get("body") or {}).get("name"),
            response=summary,
            cost=self.provider.cost_per_message,
        )

    def provider_error_code(self, response: httpx.Response, summary: dict[str, Any]) -> str | None:
        body = summary.get("body")
        error = body.get("error") if isinstance(body, dict) else None
        details = error.get("details") if isinstance(error, dict) else None
        for detail in details if isinstance(details, list) else []:
            if isinstance(detail, dict) and detail.get("errorCode") in INVALID_TOKEN_CODES:
                return errors.INVALID_RECIPIENT
        return None
