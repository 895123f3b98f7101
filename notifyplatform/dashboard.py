"""The operations dashboard (``/admin/dashboard/``, staff only, linked from the admin index).

Three charts, drawn here as inline SVG on the server (no CDN, no chart library, nothing to
load in the browser), each with its numbers in a table beside it:

- deliveries per hour by status over the last 24 hours (stacked bars, one query grouped
  by hour and status);
- success rate and total cost per provider, from the ``provider_performance_summary`` view
  (success = ``delivered`` out of every delivery that left for a provider, as the seed
  defines it);
- the invitation conversion funnel (created → sent → viewed → accepted), summed over the
  ``invitation_conversion_funnel`` view;
- click-through rate (clicked / delivered, with both counts) per template, channel and
  provider over the last 24 hours (``deliveries.analytics``: one grouped query each).

Every chart element carries ``data-series`` / ``data-label`` / ``data-value`` attributes so
tests (and curious operators) can read the plotted numbers back.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

from django.contrib import admin
from django.db.models import Count, Sum
from django.db.models.functions import TruncHour
from django.http import HttpRequest, HttpResponse
from django.template.response import TemplateResponse
from django.utils import timezone
from django.utils.html import format_html, format_html_join
from django.utils.safestring import SafeString

# The admin index gets a link to this page (and the console stylesheet).
admin.site.index_template = "admin_console/index.html"

HOURS = 24
SUCCESS_STATUSES = ("sent", "delivered")
FAILURE_STATUSES = ("failed", "bounced")
STATUS_COLOURS: dict[str, str] = {
    "pending": "#9aa5b1",
    "sending": "#6c8ebf",
    "sent": "#4a90d9",
    "delivered": "#2e9d4f",
    "failed": "#d0453a",
    "bounced": "#e07b39",
    "complained": "#b05fc4",
    "expired": "#8a6d3b",
    "skipped": "#c7b24a",
    "cancelled": "#5f6b77",
}


# --- numbers ---------------------------------------------------------------------------


@dataclass
class HourBucket:
    start: datetime
    counts: dict[str, int] = field(default_factory=dict)

    @property
    def total(self) -> int:
        return sum(self.counts.values())


@dataclass(frozen=True)
class ProviderStat:
    provider_name: str
    provider_type: str
    total: int
    successful: int
    failed: int
    success_rate: Decimal | None
    total_cost: Decimal | None


@dataclass(frozen=True)
class FunnelStep:
    label: str
    count: int
    percent_of_first: Decimal | None


# The apps' models are imported inside the figures below: notifyplatform is the bottom layer,
# and only this site-wide page (and /metrics) reads the apps (.importlinter exempts it).
def deliveries_per_hour(*, now: datetime | None = None, hours: int = HOURS) -> list[HourBucket]:
    """``hours`` hourly buckets ending with the current hour, each with its deliveries
    (by ``created_at``) counted per status; one grouped query."""
    from deliveries.models import NotificationDelivery

    now = timezone.localtime(now or timezone.now())
    first = now.replace(minute=0, second=0, microsecond=0) - timedelta(hours=hours - 1)
    buckets = [HourBucket(start=first + timedelta(hours=i)) for i in range(hours)]
    by_start = {b.start: b for b in buckets}
    rows = (
        NotificationDelivery.objects.filter(created_at__gte=first, created_at__lte=now)
        .annotate(hour=TruncHour("created_at", tzinfo=now.tzinfo))
        .values("hour", "status")
        .annotate(n=Count("id"))
        .order_by()
    )
    for row in rows:
        bucket = by_start.get(row["hour"])
        if bucket is not None:
            bucket.counts[row["status"]] = row["n"]
    return buckets


def delivery_kpis(buckets: Sequence[HourBucket]) -> dict[str, Any]:
    totals: dict[str, int] = {}
    for bucket in buckets:
        for status, n in bucket.counts.items():
            totals[status] = totals.get(status, 0) + n
    ok = sum(totals.get(s, 0) for s in SUCCESS_STATUSES)
    bad = sum(totals.get(s, 0) for s in FAILURE_STATUSES)
    return {
        "total": sum(totals.values()),
        "by_status": dict(sorted(totals.items())),
        "success_rate": _percent(ok, ok + bad),
    }


def provider_stats() -> list[ProviderStat]:
    """Per provider (and type), from the ``provider_performance_summary`` view."""
    from deliveries.models import ProviderPerformanceSummary

    return [
        ProviderStat(
            provider_name=row.provider_name,
            provider_type=row.provider_type,
            total=row.total_deliveries,
            successful=row.successful_deliveries,
            failed=row.failed_deliveries,
            success_rate=row.success_rate,
            total_cost=row.total_cost,
        )
        for row in ProviderPerformanceSummary.objects.order_by("provider_name", "provider_type")
    ]


def click_through_tables(*, now: datetime | None = None) -> dict[str, list[Any]]:
    """CTR rows per template, channel and provider for the last ``HOURS`` hours."""
    from deliveries.analytics import click_through, ctr_window

    since, until = ctr_window(HOURS, now=now)
    return {
        by: click_through(by, since=since, until=until)
        for by in ("template", "channel", "provider")
    }


def invitation_funnel() -> list[FunnelStep]:
    """The funnel over every invitation type and style (one aggregate over the view)."""
    from invitations.models import InvitationConversionFunnel

    sums = InvitationConversionFunnel.objects.aggregate(
        created=Sum("total_invitations"),
        sent=Sum("invitations_sent"),
        viewed=Sum("invitations_viewed"),
        accepted=Sum("invitations_accepted"),
    )
    counts = [(label, int(sums[key] or 0)) for key, label in FUNNEL_STEPS]
    first = counts[0][1]
    return [FunnelStep(label, n, _percent(n, first)) for label, n in counts]


FUNNEL_STEPS = (
    ("created", "created"),
    ("sent", "sent"),
    ("viewed", "viewed"),
    ("accepted", "accepted"),
)


def _percent(part: int, whole: int) -> Decimal | None:
    if not whole:
        return None
    return (Decimal(part * 100) / Decimal(whole)).quantize(Decimal("0.01"))


# --- SVG -------------------------------------------------------------------------------


def svg_stacked_hours(buckets: Sequence[HourBucket], statuses: Sequence[str]) -> SafeString:
    """Stacked bars, one per hour, one segment per status (bottom-up in ``statuses`` order)."""
    width, height, left, bottom, top = 760, 260, 40, 30, 10
    plot_h = height - bottom - top
    base = top + plot_h
    step = (width - left - 10) / max(len(buckets), 1)
    peak = max((b.total for b in buckets), default=0) or 1
    parts: list[SafeString] = [
        format_html(
            '<line x1="{left}" y1="{top}" x2="{left}" y2="{base}" stroke="#999"/>'
            '<text x="{tx}" y="{ty}" font-size="10" text-anchor="end">{peak}</text>'
            '<text x="{tx}" y="{base}" font-size="10" text-anchor="end">0</text>',
            left=left,
            top=top,
            base=base,
            tx=left - 4,
            ty=top + 8,
            peak=peak,
        )
    ]
    for i, bucket in enumerate(buckets):
        x = left + i * step + 2
        y = float(base)
        hour = bucket.start.strftime("%H:00")
        for status in statuses:
            n = bucket.counts.get(status, 0)
            if not n:
                continue
            h = plot_h * n / peak
            y -= h
            parts.append(
                format_html(
                    '<rect class="np-bar" x="{x}" y="{y}" width="{w}" '
                    'height="{h}" fill="{fill}" data-series="{status}" data-label="{start}" '
                    'data-value="{n}"><title>{hour} {status}: {n}</title></rect>',
                    x=_n(x),
                    y=_n(y),
                    w=_n(step - 4),
                    h=_n(h),
                    fill=STATUS_COLOURS.get(status, "#777"),
                    status=status,
                    start=bucket.start.isoformat(),
                    n=n,
                    hour=hour,
                )
            )
        if i % 3 == 0:
            parts.append(
                format_html(
                    '<text x="{x}" y="{y}" font-size="10">{hour}</text>',
                    x=_n(x),
                    y=height - bottom + 14,
                    hour=hour,
                )
            )
    for j, status in enumerate(statuses):
        parts.append(
            format_html(
                '<rect x="{x}" y="{y}" width="10" height="10" fill="{fill}"/>'
                '<text x="{tx}" y="{ty}" font-size="10">{status}</text>',
                x=left + j * 75,
                y=height - 10,
                fill=STATUS_COLOURS.get(status, "#777"),
                tx=left + j * 75 + 13,
                ty=height - 1,
                status=status,
            )
        )
    return _svg(
        "chart-deliveries-per-hour",
        width,
        height + 4,
        parts,
        label="Deliveries per hour by status, last 24 hours",
    )


def svg_hbars(
    chart_id: str,
    series: str,
    rows: Sequence[tuple[str, Decimal | int | None, str]],
    *,
    maximum: Decimal | int | None = None,
    colour: str = "#4a90d9",
) -> SafeString:
    """Horizontal bars: ``rows`` are (label, value, text shown at the bar's end)."""
    bar_h, gap, left, width = 18, 6, 150, 520
    values = [Decimal(v) for _, v, _ in rows if v is not None]
    peak = Decimal(maximum) if maximum is not None else max(values, default=Decimal(0))
    peak = peak or Decimal(1)
    plot_w = width - left - 70
    parts = []
    for i, (label, value, text) in enumerate(rows):
        y = i * (bar_h + gap) + 4
        w = float(Decimal(value) / peak) * plot_w if value is not None else 0.0
        parts.append(
            format_html(
                '<text x="{lx}" y="{ty}" font-size="11" text-anchor="end">{label}</text>'
                '<rect class="np-bar" x="{left}" y="{y}" width="{w}" height="{h}" '
                'fill="{fill}" data-series="{series}" data-label="{label}" data-value="{value}">'
                "<title>{label}: {text}</title></rect>"
                '<text x="{vx}" y="{ty}" font-size="11">{text}</text>',
                lx=left - 6,
                ty=y + 13,
                label=label,
                left=left,
                y=y,
                w=_n(w),
                h=bar_h,
                fill=colour,
                series=series,
                value="" if value is None else value,
                text=text,
                vx=_n(left + w + 4),
            )
        )
    return _svg(chart_id, width, max(len(rows), 1) * (bar_h + gap) + 8, parts, label=series)


def _n(value: float) -> str:
    """An SVG coordinate with one decimal (format_html escapes args to strings first)."""
    return f"{value:.1f}"


def _svg(
    chart_id: str, width: float, height: float, parts: Sequence[SafeString], *, label: str
) -> SafeString:
    return format_html(
        '<svg class="np-chart" id="{id}" xmlns="http://www.w3.org/2000/svg" '
        'viewBox="0 0 {w} {h}" width="{w}" height="{h}" role="img" aria-label="{label}">'
        "{body}</svg>",
        id=chart_id,
        w=width,
        h=height,
        label=label,
        body=format_html_join("", "{}", ((p,) for p in parts)),
    )


# --- the page --------------------------------------------------------------------------


def dashboard_context(*, now: datetime | None = None) -> dict[str, Any]:
    buckets = deliveries_per_hour(now=now)
    kpis = delivery_kpis(buckets)
    statuses = [s for s in STATUS_COLOURS if s in kpis["by_status"]] or ["sent", "failed"]
    providers = provider_stats()
    funnel = invitation_funnel()
    ctr = click_through_tables(now=now)
    labels = [f"{p.provider_name} ({p.provider_type})" for p in providers]
    return {
        "buckets": buckets,
        "kpis": kpis,
        "statuses": statuses,
        "providers": providers,
        "funnel": funnel,
        "ctr": ctr,
        "ctr_sections": [(by, f"Click-through per {by}", rows) for by, rows in ctr.items()],
        "chart_ctr": svg_hbars(
            "chart-click-through",
            "click_through_rate",
            [
                (
                    r.key,
                    r.click_through_rate,
                    f"{r.click_through_rate} % ({r.clicked}/{r.delivered})",
                )
                for r in ctr["channel"]
            ],
            maximum=100,
            colour="#b05fc4",
        ),
        "total_cost": sum((p.total_cost or Decimal(0) for p in providers), Decimal(0)),
        "chart_hours": svg_stacked_hours(buckets, statuses),
        "chart_success": svg_hbars(
            "chart-provider-success",
            "success_rate",
            [
                (label, p.success_rate, "-" if p.success_rate is None else f"{p.success_rate} %")
                for label, p in zip(labels, providers, strict=True)
            ],
            maximum=100,
            colour="#2e9d4f",
        ),
        "chart_cost": svg_hbars(
            "chart-provider-cost",
            "total_cost",
            [
                (label, p.total_cost, "-" if p.total_cost is None else f"{p.total_cost:.4f}")
                for label, p in zip(labels, providers, strict=True)
            ],
            colour="#a15c00",
        ),
        "chart_funnel": svg_hbars(
            "chart-invitation-funnel",
            "funnel",
            [
                (
                    s.label,
                    s.count,
                    f"{s.count}"
                    + ("" if s.percent_of_first is None else f" ({s.percent_of_first} %)"),
                )
                for s in funnel
            ],
            colour="#6c5fc7",
        ),
    }


def dashboard_view(request: HttpRequest) -> HttpResponse:
    context = {
        **admin.site.each_context(request),
        "title": "Operations dashboard",
        **dashboard_context(),
    }
    return TemplateResponse(request, "admin_console/dashboard.html", context)


# Staff only: the admin's own login check (redirects anyone else to the admin login).
view = admin.site.admin_view(dashboard_view)
