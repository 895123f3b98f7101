"""REST API: Django REST framework and drf-spectacular (OpenAPI) settings."""

from __future__ import annotations

REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "users.authentication.ApiTokenAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    # Unknown query parameters are a 400 (StrictFilterBackend), not silently ignored.
    "DEFAULT_FILTER_BACKENDS": [
        "notifyplatform.api_filters.StrictFilterBackend",
        "rest_framework.filters.OrderingFilter",
    ],
    "DEFAULT_PAGINATION_CLASS": "notifyplatform.pagination.Pagination",
    "PAGE_SIZE": 50,
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "EXCEPTION_HANDLER": "notifyplatform.api_errors.exception_handler",
    # The API speaks JSON only (no form or multipart bodies: one input format to validate).
    # Strict JSON: a depth limit, no duplicate keys, no inf/NaN; any bad body is a 400.
    "DEFAULT_PARSER_CLASSES": ["notifyplatform.jsonparse.StrictJSONParser"],
    # Throttles: per user (session or any of its tokens), per API token, per anonymous
    # address (rates: NP_THROTTLE_RATES in settings).
    "DEFAULT_THROTTLE_CLASSES": [
        "notifyplatform.throttling.UserRateThrottle",
        "notifyplatform.throttling.TokenRateThrottle",
        "notifyplatform.throttling.AnonRateThrottle",
    ],
    # Client addresses are REMOTE_ADDR, never a client-sent X-Forwarded-For (DRF trusts the
    # header when NUM_PROXIES is unset); behind a proxy run daphne with --proxy-headers.
    "NUM_PROXIES": 0,
}

SPECTACULAR_SETTINGS = {
    "TITLE": "notifyplatform API",
    "DESCRIPTION": (
        "Provider-agnostic notifications: send, track, prefer, stream.\n\n"
        "Public links outside /api/v1/ (signed tokens, no login; README): "
        "`GET /c/{token}/` a tracked link: records the click, 302 to the notification's own "
        "URL; `GET|POST /u/{token}/` one-click unsubscribe (RFC 8058: POST "
        "`List-Unsubscribe=One-Click`); `/p/{token}/` and `/preferences/` the preference "
        "page (HTML)."
    ),
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
    "SCHEMA_PATH_PREFIX": "/api/v1/",
    # Swagger UI assets come from the drf-spectacular-sidecar package (no CDN).
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    "COMPONENT_SPLIT_REQUEST": True,
    "POSTPROCESSING_HOOKS": [
        "drf_spectacular.hooks.postprocess_schema_enums",
        "notifyplatform.schema.add_error_responses",
    ],
    "ENUM_NAME_OVERRIDES": {
        "ChannelEnum": "notifyplatform.choices.Channel",
        "DeliveryStatusEnum": "deliveries.models.DeliveryStatus",
        "NotificationStatusEnum": "deliveries.models.NotificationStatus",
        # without it `check --deploy` warns (drf_spectacular.W001: "status" collision)
        "InvitationStatusEnum": "invitations.models.InvitationStatus",
        "PriorityEnum": "notifyplatform.choices.Priority",
        "EventPriorityEnum": "realtime.models.EventPriority",
        "AudienceKindEnum": "campaigns.models.audiences.AudienceKind",
        "DeviceKindEnum": "users.models.Device.Kind",
        "BroadcastStatusEnum": "campaigns.models.broadcasts.BroadcastStatus",
        "WorkflowRunStateEnum": "campaigns.models.RunState",
        "WorkflowStepStateEnum": "campaigns.models.StepState",
        "BidStatusEnum": "auctions.models.BidStatus",
        "AuctionStatusEnum": "auctions.models.AuctionStatus",
    },
}
