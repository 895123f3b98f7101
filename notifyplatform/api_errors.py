"""One error shape for the whole API: ``{"error": {"code", "message", "fields"}}``.

DRF's own exceptions (validation, authentication, permission, 404, 405, 429) and
Django's 404/500 under ``/api/`` all come out in this shape, so clients handle
errors in one place. ``code`` is UPPER_SNAKE and stable; ``fields`` maps a field
name to its reasons (empty when the error is not about a field).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from django.conf import settings
from django.core.exceptions import PermissionDenied, RequestDataTooBig
from django.http import Http404, HttpRequest, HttpResponse, JsonResponse
from rest_framework import exceptions, status
from rest_framework.response import Response
from rest_framework.views import exception_handler as drf_exception_handler

from notifyplatform.errors import DomainError

logger = logging.getLogger(__name__)

CODES = {
    exceptions.ValidationError: "VALIDATION_ERROR",
    exceptions.ParseError: "MALFORMED_REQUEST",
    exceptions.AuthenticationFailed: "AUTHENTICATION_FAILED",
    exceptions.NotAuthenticated: "NOT_AUTHENTICATED",
    exceptions.PermissionDenied: "PERMISSION_DENIED",
    exceptions.NotFound: "NOT_FOUND",
    exceptions.MethodNotAllowed: "METHOD_NOT_ALLOWED",
    exceptions.NotAcceptable: "NOT_ACCEPTABLE",
    exceptions.UnsupportedMediaType: "UNSUPPORTED_MEDIA_TYPE",
    exceptions.Throttled: "THROTTLED",
}


class ApiError(exceptions.APIException):
    """A domain error with its own code, raised by views or turned from a service error."""

    # seconds to wait before retrying; DRF's handler turns it into Retry-After when set
    wait: float | None = None

    def __init__(
        self,
        code: str,
        message: str,
        *,
        fields: dict[str, list[str]] | None = None,
        status_code: int = status.HTTP_400_BAD_REQUEST,
    ) -> None:
        super().__init__(detail=message, code=code)
        self.error_code = code
        self.message = message
        self.fields = fields or {}
        self.status_code = status_code


def error_body(code: str, message: str, fields: dict[str, Any] | None = None) -> dict[str, Any]:
    return {"error": {"code": code, "message": message, "fields": fields or {}}}


def _flatten(detail: Any) -> dict[str, list[str]]:
    if isinstance(detail, dict):
        out: dict[str, list[str]] = {}
        for key, value in detail.items():
            if isinstance(value, dict):
                for sub, reasons in _flatten(value).items():
                    out[f"{key}.{sub}"] = reasons
            elif isinstance(value, list):
                out[str(key)] = [str(v) for v in value]
            else:
                out[str(key)] = [str(value)]
        return out
    if isinstance(detail, list):
        return {"non_field_errors": [str(v) for v in detail]}
    return {"non_field_errors": [str(detail)]}


def _too_large_message() -> str:
    return f"Request body larger than {settings.DATA_UPLOAD_MAX_MEMORY_SIZE} bytes."


def exception_handler(exc: Exception, context: dict[str, Any]) -> Response | None:
    # a domain limit (e.g. invitations.limits) says when to come back: Retry-After
    retry_after = getattr(exc, "retry_after", None) if isinstance(exc, DomainError) else None
    if isinstance(exc, RequestDataTooBig):
        exc = ApiError(
            "REQUEST_TOO_LARGE",
            _too_large_message(),
            status_code=status.HTTP_413_REQUEST_ENTITY_TOO_LARGE,
        )
    elif isinstance(exc, DomainError):
        exc = ApiError(exc.code, exc.message, fields=exc.fields, status_code=exc.status)
        if retry_after:
            exc.wait = retry_after  # DRF's handler turns ``wait`` into Retry-After
    elif isinstance(exc, Http404):
        exc = exceptions.NotFound()
    elif isinstance(exc, PermissionDenied):
        exc = exceptions.PermissionDenied()
    response = drf_exception_handler(exc, context)
    if response is None:
        return None
    if isinstance(exc, ApiError):
        response.data = error_body(exc.error_code, exc.message, exc.fields)
        return response
    code = next((c for cls, c in CODES.items() if isinstance(exc, cls)), "ERROR")
    if isinstance(exc, exceptions.ValidationError):
        fields = _flatten(exc.detail)
        first = next(iter(fields.items()), ("", [""]))
        message = f"{first[0]}: {first[1][0]}" if first[0] != "non_field_errors" else first[1][0]
        response.data = error_body(code, message or "Invalid input.", fields)
    else:
        detail = getattr(exc, "detail", str(exc))
        response.data = error_body(code, str(detail))
    return response


def _is_api(request: HttpRequest) -> bool:
    return request.path.startswith("/api/")


def json_404(request: HttpRequest, exception: Exception | None = None) -> JsonResponse:
    return JsonResponse(error_body("NOT_FOUND", f"No resource at {request.path}."), status=404)


def json_500(request: HttpRequest) -> JsonResponse:
    return JsonResponse(error_body("SERVER_ERROR", "Internal server error."), status=500)


def page_not_found(request: HttpRequest, exception: Exception | None = None) -> Any:
    """handler404: JSON under /api/, Django's page elsewhere."""
    if _is_api(request):
        return json_404(request, exception)
    from django.views.defaults import page_not_found as django_page_not_found

    return django_page_not_found(request, exception)


def server_error(request: HttpRequest) -> Any:
    """handler500: JSON under /api/, Django's page elsewhere."""
    logger.error("server error at %s", request.path)
    if _is_api(request):
        return json_500(request)
    from django.views.defaults import server_error as django_server_error

    return django_server_error(request)


# Error codes for statuses that reach the client without passing DRF's handler (Django's own
# 405/403-CSRF/400 pages, plain Django views under /api/).
_STATUS_CODES = {
    400: "MALFORMED_REQUEST",
    401: "NOT_AUTHENTICATED",
    403: "PERMISSION_DENIED",
    404: "NOT_FOUND",
    405: "METHOD_NOT_ALLOWED",
    413: "REQUEST_TOO_LARGE",
    429: "THROTTLED",
    500: "SERVER_ERROR",
}


class RequestSizeLimitMiddleware:
    """Under ``/api/``: refuse a body over ``DATA_UPLOAD_MAX_MEMORY_SIZE`` with a JSON 413
    before anything reads it, and give any non-JSON error response the one error shape.

    Django only enforces the limit when ``request.body`` or a form is read; DRF's JSON parser
    reads the stream directly, so without this a large JSON body would be parsed in full.
    The declared Content-Length is checked first (cheap); a chunked body without one is still
    capped when Django reads it (``RequestDataTooBig`` → 413 in ``exception_handler``).
    """

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        if not _is_api(request):
            return self.get_response(request)
        limit = settings.DATA_UPLOAD_MAX_MEMORY_SIZE
        try:
            length = int(request.META.get("CONTENT_LENGTH") or 0)
        except ValueError:
            length = 0
        if limit is not None and length > limit:
            return JsonResponse(error_body("REQUEST_TOO_LARGE", _too_large_message()), status=413)
        response = self.get_response(request)
        if response.status_code >= 400 and not response.get("Content-Type", "").startswith(
            "application/json"
        ):
            shaped = JsonResponse(
                error_body(
                    _STATUS_CODES.get(response.status_code, "ERROR"),
                    response.reason_phrase or "Error.",
                ),
                status=response.status_code,
            )
            for header in ("Allow", "Retry-After", "WWW-Authenticate"):
                if response.has_header(header):
                    shaped[header] = response[header]
            return shaped
        return response
