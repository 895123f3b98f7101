"""Refuse query strings PostgreSQL cannot compare: a NUL byte in any parameter.

A NUL (``%00``) in a filter value reaches PostgreSQL as a text parameter and fails there
(``DataError``: text fields cannot contain NUL), a 500 from any list endpoint or admin
search that filters on it. Checked once here for every view, API and pages alike,
instead of in each filter: the API answers its 400 envelope naming the parameter, other
pages a plain 400.
"""

from __future__ import annotations

from collections.abc import Callable

from django.http import HttpRequest, HttpResponse, HttpResponseBadRequest, JsonResponse

from notifyplatform.api_errors import error_body


class RejectNulQueryMiddleware:
    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        bad = sorted(
            {
                name
                for name, values in request.GET.lists()
                if "\x00" in name or any("\x00" in value for value in values)
            }
        )
        if not bad:
            return self.get_response(request)
        reason = "must not contain a NUL character"
        if request.path.startswith("/api/"):
            fields = {name.replace("\x00", "\\x00"): [reason] for name in bad}
            return JsonResponse(
                error_body("VALIDATION_ERROR", "bad query parameter", fields), status=400
            )
        return HttpResponseBadRequest(f"query parameters {reason}", content_type="text/plain")
