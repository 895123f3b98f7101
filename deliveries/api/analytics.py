"""Staff analytics: ``GET /analytics/click-through/?by=template|channel|provider&hours=24``,
the click-through rates of ``deliveries/analytics.py`` (one grouped query). ``hours`` is
1 … 744 (31 days), 24 by default. (Per provider, the rates are also in
``/analytics/provider-performance/``, ``invitations/api/views.py``.)
"""

from __future__ import annotations

from typing import Any

from drf_spectacular.utils import extend_schema
from rest_framework import permissions, serializers
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from ..analytics import (
    CTR_DEFAULT_HOURS,
    CTR_MAX_HOURS,
    DIMENSIONS,
    ClickThrough,
    click_through,
    ctr_window,
)


class WindowQuerySerializer(serializers.Serializer):
    hours = serializers.IntegerField(
        required=False,
        default=CTR_DEFAULT_HOURS,
        min_value=1,
        max_value=CTR_MAX_HOURS,
        help_text="The window: the deliveries created in the last N hours.",
    )


class ClickThroughQuerySerializer(WindowQuerySerializer):
    by = serializers.ChoiceField(
        choices=sorted(DIMENSIONS), default="template", help_text="What to group by."
    )


class ClickThroughRowSerializer(serializers.Serializer):
    key = serializers.CharField(
        allow_null=True,
        help_text="The template key, channel or provider name (null: no template).",
    )
    delivered = serializers.IntegerField(help_text="Deliveries sent or delivered.")
    clicked = serializers.IntegerField(help_text="Of those, clicked at least once.")
    clicks = serializers.IntegerField(help_text="Every click on them.")
    click_through_rate = serializers.DecimalField(
        max_digits=6, decimal_places=2, allow_null=True, help_text="clicked / delivered, in %."
    )


class ClickThroughSerializer(serializers.Serializer):
    by = serializers.CharField()
    since = serializers.DateTimeField()
    until = serializers.DateTimeField()
    rows = ClickThroughRowSerializer(many=True)


def _ctr_dict(row: ClickThrough | None) -> dict[str, Any]:
    if row is None:
        return {"delivered": 0, "clicked": 0, "clicks": 0, "click_through_rate": None}
    return {
        "delivered": row.delivered,
        "clicked": row.clicked,
        "clicks": row.clicks,
        "click_through_rate": row.click_through_rate,
    }


class ClickThroughView(APIView):
    """Staff: click-through rate (clicked / delivered) per template, channel or provider."""

    permission_classes = [permissions.IsAdminUser]

    @extend_schema(
        parameters=[ClickThroughQuerySerializer], responses={200: ClickThroughSerializer}
    )
    def get(self, request: Request) -> Response:
        query = ClickThroughQuerySerializer(data=request.query_params)
        query.is_valid(raise_exception=True)
        since, until = ctr_window(query.validated_data["hours"])
        by = query.validated_data["by"]
        rows = [_ctr_dict(r) | {"key": r.key} for r in click_through(by, since=since, until=until)]
        body = {"by": by, "since": since, "until": until, "rows": rows}
        return Response(ClickThroughSerializer(body).data)
