"""The REST API's settings: Django REST framework's, and drf-spectacular's (the OpenAPI
document's title and description)."""

REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "users.authentication.ApiTokenAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "DEFAULT_FILTER_BACKENDS": [
        "django_filters.rest_framework.DjangoFilterBackend",
        "rest_framework.filters.OrderingFilter",
    ],
    "DEFAULT_PAGINATION_CLASS": "rest_framework.pagination.PageNumberPagination",
    "PAGE_SIZE": 50,
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "EXCEPTION_HANDLER": "notifyplatform.api_errors.exception_handler",
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
}
