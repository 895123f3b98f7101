"""Staff analytics: click-through rates (``deliveries/analytics.py``) and the provider
performance view with each provider's click-through rate.

- ``GET /analytics/click-through/?by=template|channel|provider&hours=24``
- ``GET /analytics/provider-performance/?hours=24``: the ``provider_performance_summary``
  view's rows (all time, as the seed defines them) with a ``click_through`` object for the
  window.

Both are staff-only; ``hours`` is 1 … 744 (31 days), 24 by default. Two grouped queries at
most per request, whatever the number of rows.
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
from ..models import ProviderPerformanceSummary


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


class WindowClickThroughSerializer(serializers.Serializer):
    delivered = serializers.IntegerField()
    clicked = serializers.IntegerField()
    clicks = serializers.IntegerField()
    click_through_rate = serializers.DecimalField(max_digits=6, decimal_places=2, allow_null=True)


class ProviderPerformanceRowSerializer(serializers.ModelSerializer):
    click_through = WindowClickThroughSerializer(
        help_text="Click-through of this provider's deliveries created in the window."
    )

    class Meta:
        model = ProviderPerformanceSummary
        fields = [
            "provider_name",
            "provider_type",
            "total_deliveries",
            "successful_deliveries",
            "failed_deliveries",
            "success_rate",
            "avg_cost_per_message",
            "total_cost",
            "first_delivery",
            "last_delivery",
            "click_through",
        ]


class ProviderPerformanceSerializer(serializers.Serializer):
    since = serializers.DateTimeField()
    until = serializers.DateTimeField()
    providers = ProviderPerformanceRowSerializer(many=True)


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


class ProviderPerformanceView(APIView):
    """Staff: the provider performance summary, with each provider's click-through rate."""

    permission_classes = [permissions.IsAdminUser]

    @extend_schema(
        parameters=[WindowQuerySerializer], responses={200: ProviderPerformanceSerializer}
    )
    def get(self, request: Request) -> Response:
        query = WindowQuerySerializer(data=request.query_params)
        query.is_valid(raise_exception=True)
        since, until = ctr_window(query.validated_data["hours"])
        ctr = {r.key: r for r in click_through("provider", since=since, until=until)}
        providers = []
        for row in ProviderPerformanceSummary.objects.order_by("provider_name", "provider_type"):
            row.click_through = _ctr_dict(ctr.get(row.provider_name))  # type: ignore[attr-defined]
            providers.append(row)
        body = {"since": since, "until": until, "providers": providers}
        return Response(ProviderPerformanceSerializer(body).data)
