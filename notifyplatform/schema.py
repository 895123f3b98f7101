"""OpenAPI schema extensions: the token security scheme and the one error shape.

Every operation's error responses are added here, in one postprocessing hook, rather than
on each view, so a new endpoint is documented the same way as the others without anyone
remembering to: 400 where there is input (a body or query parameters), 401/403 where
authentication is required, 404 where the path names an object, 413 where there is a body,
429 everywhere (throttling). Views add the domain-specific ones themselves (409 for an
action the object's state forbids, 410 for an expired invitation) with
``extend_schema(responses={409: ERROR_RESPONSE})``.
"""

from __future__ import annotations

from typing import Any

from drf_spectacular.extensions import OpenApiAuthenticationExtension
from drf_spectacular.utils import OpenApiResponse, inline_serializer
from rest_framework import serializers

ERROR_COMPONENT = "Error"
ERROR_REF = {"$ref": f"#/components/schemas/{ERROR_COMPONENT}"}

ERROR_SCHEMA: dict[str, Any] = {
    "type": "object",
    "description": "Every API error: a stable UPPER_SNAKE code, a message, per-field reasons.",
    "properties": {
        "error": {
            "type": "object",
            "properties": {
                "code": {"type": "string", "example": "VALIDATION_ERROR"},
                "message": {"type": "string"},
                "fields": {
                    "type": "object",
                    "additionalProperties": {"type": "array", "items": {"type": "string"}},
                    "description": "field name → reasons; empty when not about a field",
                },
            },
            "required": ["code", "message", "fields"],
        }
    },
    "required": ["error"],
}

ErrorSerializer = inline_serializer(
    name=ERROR_COMPONENT,
    fields={
        "error": inline_serializer(
            name="ErrorDetail",
            fields={
                "code": serializers.CharField(),
                "message": serializers.CharField(),
                "fields": serializers.DictField(child=serializers.ListField()),
            },
        )
    },
)


def error_response(description: str) -> OpenApiResponse:
    """For ``extend_schema(responses={409: error_response("...")})`` on a view."""
    return OpenApiResponse(response=ErrorSerializer, description=description)


_DESCRIPTIONS = {
    "400": "Invalid input; `fields` names each offending field and why.",
    "401": "Not authenticated (missing, invalid, expired or revoked token).",
    "403": "Authenticated but not allowed (e.g. a staff-only endpoint).",
    "404": "No such object, or it belongs to another user.",
    "405": "Method not allowed.",
    "413": "Request body larger than the limit (NP_MAX_REQUEST_BYTES).",
    "415": "The body is not application/json.",
    "429": "Throttled; see the Retry-After header.",
}


class ApiTokenScheme(OpenApiAuthenticationExtension):
    """``Authorization: Bearer np_…`` (``Token np_…`` is accepted too)."""

    target_class = "users.authentication.ApiTokenAuthentication"
    name = "TokenAuth"

    def get_security_definition(self, auto_schema: Any) -> dict[str, Any]:
        return {
            "type": "http",
            "scheme": "bearer",
            "bearerFormat": "np_<secret>",
            "description": "An API token (create one with `manage.py create_token`, in the "
            "admin, or at POST /api/v1/me/tokens/).",
        }


def _error_content() -> dict[str, Any]:
    return {"application/json": {"schema": ERROR_REF}}


def _add(responses: dict[str, Any], code: str) -> None:
    if code not in responses:
        responses[code] = {"description": _DESCRIPTIONS[code], "content": _error_content()}


def _is_anonymous(operation: dict[str, Any], default_security: list[Any]) -> bool:
    security = operation.get("security", default_security)
    return not security or {} in security


def add_error_responses(
    result: dict[str, Any], generator: Any, request: Any, public: bool
) -> dict[str, Any]:
    """drf-spectacular postprocessing hook: the error component and the generic errors."""
    schemas = result.setdefault("components", {}).setdefault("schemas", {})
    schemas[ERROR_COMPONENT] = ERROR_SCHEMA
    default_security = result.get("security", [])
    for path, methods in result.get("paths", {}).items():
        for method, operation in methods.items():
            if method not in {"get", "post", "put", "patch", "delete"}:
                continue
            responses = operation.setdefault("responses", {})
            has_body = "requestBody" in operation
            has_query = any(p.get("in") == "query" for p in operation.get("parameters", []))
            if has_body or has_query:
                _add(responses, "400")
            if has_body:
                _add(responses, "413")
                _add(responses, "415")
            if not _is_anonymous(operation, default_security):
                _add(responses, "401")
                _add(responses, "403")
            if "{" in path or any(p.get("name") == "page" for p in operation.get("parameters", [])):
                _add(responses, "404")
            _add(responses, "429")
    _relax_time_format(result)
    result["paths"].update(_plain_django_paths())
    return result


_TIME_PATTERN = r"^([01][0-9]|2[0-3]):[0-5][0-9](:[0-5][0-9](\.[0-9]{1,6})?)?$"


def _relax_time_format(node: Any) -> None:
    """OpenAPI's ``format: time`` is RFC 3339's full-time, which requires a UTC offset; a
    quiet-hours time of day has none (``22:00:00``), so describe it with a pattern."""
    if isinstance(node, dict):
        if node.get("format") == "time" and node.get("type") == "string":
            del node["format"]
            node["pattern"] = _TIME_PATTERN
        for value in node.values():
            _relax_time_format(value)
    elif isinstance(node, list):
        for value in node:
            _relax_time_format(value)


def _plain_django_paths() -> dict[str, Any]:
    """Endpoints served by plain Django views (not DRF), described by hand."""
    return {
        "/api/v1/providers/{name}/events/": {
            "post": {
                "operationId": "providers_events_create",
                "summary": "Delivery receipts (status callbacks) from a provider",
                "description": "Each provider posts its own format; the body must carry the "
                "provider's signature (header or field, per provider). No API token: the "
                "signature authenticates the provider.",
                "tags": ["providers"],
                "security": [],
                "parameters": [
                    {
                        "name": "name",
                        "in": "path",
                        "required": True,
                        "schema": {"type": "string"},
                        "description": "The provider's registry name, e.g. sendgrid",
                    }
                ],
                "requestBody": {
                    "required": False,
                    "content": {
                        "application/json": {"schema": {}},
                        "application/x-www-form-urlencoded": {"schema": {"type": "object"}},
                    },
                },
                "responses": {
                    "200": {
                        "description": "Receipts parsed and applied.",
                        "content": {
                            "application/json": {
                                "schema": {
                                    "type": "object",
                                    "properties": {
                                        "received": {"type": "integer"},
                                        "updated": {"type": "integer"},
                                    },
                                    "required": ["received", "updated"],
                                }
                            }
                        },
                    },
                    "400": {"description": _DESCRIPTIONS["400"], "content": _error_content()},
                    "403": {
                        "description": "Signature missing or invalid (SIGNATURE_INVALID), its"
                        " timestamp outside NP_RECEIPT_TOLERANCE_SECONDS (SIGNATURE_EXPIRED), or"
                        " its one-time token already used (RECEIPT_REPLAYED).",
                        "content": _error_content(),
                    },
                    "404": {"description": "No such provider.", "content": _error_content()},
                    "413": {"description": _DESCRIPTIONS["413"], "content": _error_content()},
                    "503": {
                        "description": "The one-time token store is unavailable; retry"
                        " (SERVICE_UNAVAILABLE, with Retry-After).",
                        "content": _error_content(),
                    },
                },
            }
        }
    }
