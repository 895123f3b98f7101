"""The API's page-number pagination: ``?page=N`` (from 1) and ``?page_size=`` (≤ 200)."""

from __future__ import annotations

from typing import Any

from rest_framework.exceptions import ValidationError
from rest_framework.pagination import PageNumberPagination


class Pagination(PageNumberPagination):
    page_size = 50
    page_size_query_param = "page_size"
    max_page_size = 200

    def get_page_size(self, request: Any) -> int | None:
        """Like DRF's, but a malformed ``page_size`` (0, -1, 1.5, abc) is a 400, not ignored."""
        raw = request.query_params.get(self.page_size_query_param)
        if raw is not None and not (raw.isdigit() and int(raw) >= 1):
            raise ValidationError({self.page_size_query_param: ["must be a positive integer"]})
        return super().get_page_size(request)

    def get_schema_operation_parameters(self, view: Any) -> list[dict[str, Any]]:
        parameters = super().get_schema_operation_parameters(view)
        for parameter in parameters:
            # A page past the end (or below 1) is 404 "Invalid page." — documented as such.
            parameter["schema"]["minimum"] = 1
            if parameter["name"] == self.page_size_query_param:
                # Larger sizes are capped, not refused (DRF's behaviour), so no "maximum".
                parameter["description"] = (
                    f"Results per page (default {self.page_size}; values above "
                    f"{self.max_page_size} are capped to {self.max_page_size})."
                )
        return parameters
