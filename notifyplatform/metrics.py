"""Prometheus ``/metrics`` (text exposition format), computed at scrape time.

Everything is read from the database and Redis when Prometheus scrapes, not counted in
process memory: the platform runs several daphne and Celery processes, and per-process
counters would each see a fraction (and reset on restart). A scrape costs four small queries:

- ``np_deliveries{status,channel,provider}``: deliveries created in the last
  ``NP_METRICS_WINDOW_SECONDS`` (default an hour) by their current status: one GROUP BY over
  that window, read through ``idx_notification_deliveries_created``, never over the whole
  table (which grows with traffic until retention deletes it).
- ``np_delivery_send_latency_seconds{channel}``: a histogram of ``sent_at - created_at`` for
  deliveries sent in the last ``NP_METRICS_LATENCY_WINDOW_SECONDS`` (one query with one
  conditional count per bucket), among those created in the last three windows (the index
  again; a send later than that falls out of the histogram, far past its top bucket). It is
  a sliding window, so the buckets can go down; read it with ``histogram_quantile`` over the
  current values, not with ``rate()``.
- ``np_websocket_connections{status}``: one GROUP BY over ``websocket_connections``.
- ``np_celery_queue_depth{queue}``: messages waiting in each Celery queue (a Redis list's
  ``LLEN``, or a RabbitMQ queue's message count).
- ``np_realtime_gap_fill_events_total``, ``np_realtime_fanout_resyncs_total``: what the
  server processes' hubs counted (``realtime.hub``), kept in one Redis hash by all of them.

Access: ``Authorization: Bearer <NP_METRICS_TOKEN>`` or a staff session. A loopback
client without either is let in only in a local run (``NP_LOCAL_RUN``, which ``make run``
sets when its PostgreSQL and Redis are local or embedded): behind a reverse proxy on the
same host every request comes from loopback, so loopback alone proves nothing.
"""

from __future__ import annotations

import hmac
import ipaddress
import logging
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

from django.conf import settings
from django.db.models import Count, DurationField, ExpressionWrapper, F, Q, Sum
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.utils import timezone
from django.views.decorators.http import require_GET
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)

from .api_errors import error_body

logger = logging.getLogger(__name__)

LATENCY_BUCKETS = (0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0, 900.0, 3600.0)


# The apps' models are imported inside the collectors: notifyplatform is the bottom layer,
# and only this site-wide view (and the dashboard) reads the apps (.importlinter exempts it).
def _delivery_counts() -> GaugeMetricFamily:
    from deliveries.models import NotificationDelivery

    window = timedelta(seconds=int(getattr(settings, "NP_METRICS_WINDOW_SECONDS", 3600)))
    gauge = GaugeMetricFamily(
        "np_deliveries",
        "Deliveries created in the recent window (NP_METRICS_WINDOW_SECONDS) by current "
        "status, channel and provider.",
        labels=["status", "channel", "provider"],
    )
    rows = (
        NotificationDelivery.objects.filter(created_at__gte=timezone.now() - window)
        .order_by()
        .values("status", "delivery_type", "provider_name")
        .annotate(n=Count("id"))
    )
    for row in rows:
        gauge.add_metric(
            [row["status"], row["delivery_type"], row["provider_name"] or ""], row["n"]
        )
    return gauge


def _send_latency() -> HistogramMetricFamily:
    from deliveries.models import NotificationDelivery

    window = timedelta(seconds=int(getattr(settings, "NP_METRICS_LATENCY_WINDOW_SECONDS", 3600)))
    latency = ExpressionWrapper(F("sent_at") - F("created_at"), output_field=DurationField())
    aggregates: dict[str, Any] = {
        f"le_{i}": Count("id", filter=Q(latency__lte=timedelta(seconds=bound)))
        for i, bound in enumerate(LATENCY_BUCKETS)
    }
    aggregates["count"] = Count("id")
    aggregates["total"] = Sum("latency")
    now = timezone.now()
    rows = (
        NotificationDelivery.objects.filter(
            created_at__gte=now - 3 * window, sent_at__gte=now - window
        )
        .annotate(latency=latency)
        .order_by()
        .values("delivery_type")
        .annotate(**aggregates)
    )
    histogram = HistogramMetricFamily(
        "np_delivery_send_latency_seconds",
        "Time from a delivery's creation to its provider accepting it, for deliveries sent "
        "in the recent window (NP_METRICS_LATENCY_WINDOW_SECONDS).",
        labels=["channel"],
    )
    for row in rows:
        buckets = [(str(bound), row[f"le_{i}"]) for i, bound in enumerate(LATENCY_BUCKETS)]
        buckets.append(("+Inf", row["count"]))
        total = row["total"].total_seconds() if row["total"] is not None else 0.0
        histogram.add_metric([row["delivery_type"]], buckets, total)
    return histogram


def _websocket_connections() -> GaugeMetricFamily:
    from realtime.models import WebsocketConnection

    gauge = GaugeMetricFamily(
        "np_websocket_connections", "Websocket connections by status.", labels=["status"]
    )
    rows = (
        WebsocketConnection.objects.order_by().values("connection_status").annotate(n=Count("id"))
    )
    for row in rows:
        gauge.add_metric([row["connection_status"]], row["n"])
    return gauge


def _queue_depth() -> GaugeMetricFamily:
    gauge = GaugeMetricFamily(
        "np_celery_queue_depth", "Messages waiting in each Celery queue.", labels=["queue"]
    )
    from notifyplatform.broker import queue_depths

    depths = queue_depths(getattr(settings, "NP_METRICS_QUEUES", ["celery"])) or {}
    for queue, depth in depths.items():
        gauge.add_metric([queue], depth)
    return gauge


REALTIME_COUNTERS = {
    "gap_fill_events": (
        "np_realtime_gap_fill_events_total",
        "Events a server process read from the database because the channel layer did not "
        "bring them in time (dropped at a full queue, lost in a Redis restart, a send into "
        "a group the process had not re-joined yet).",
    ),
    "resyncs": (
        "np_realtime_fanout_resyncs_total",
        "Times a server process found its fan-out path broken (Redis away or restarted "
        "empty) and re-joined its groups.",
    ),
}


def _realtime_counters() -> Iterator[Metric]:
    from notifyplatform.redis_pool import sync_client
    from realtime.hub import metrics_key

    config = settings.CHANNEL_LAYERS["default"]["CONFIG"]
    # settings.py's literal types CONFIG as a Collection; it is the channel layer's dict
    prefix = config.get("prefix", "asgi") if isinstance(config, dict) else "asgi"
    client = sync_client(
        settings.CHANNEL_LAYER_REDIS_URL, socket_connect_timeout=1, socket_timeout=1
    )
    try:
        values = client.hgetall(metrics_key(prefix))
    finally:
        client.close()
    for field, (name, documentation) in REALTIME_COUNTERS.items():
        counter = CounterMetricFamily(name.removesuffix("_total"), documentation)
        counter.add_metric([], int(values.get(field.encode(), 0)))
        yield counter


class _ScrapeCollector:
    """A collector whose metrics are computed afresh on every ``collect()``."""

    def collect(self) -> Iterator[Metric]:
        up = GaugeMetricFamily(
            "np_metrics_source_up", "1 if the source answered this scrape.", labels=["source"]
        )
        for name, build in (
            ("deliveries", _delivery_counts),
            ("send_latency", _send_latency),
            ("websockets", _websocket_connections),
            ("queue", _queue_depth),
        ):
            try:
                metric = build()
            except Exception:  # noqa: BLE001 - one broken source must not hide the others
                logger.exception("metrics source %s failed", name)
                up.add_metric([name], 0)
                continue
            up.add_metric([name], 1)
            yield metric
        try:
            counters = list(_realtime_counters())
        except Exception:  # noqa: BLE001
            logger.exception("metrics source realtime failed")
            up.add_metric(["realtime"], 0)
        else:
            up.add_metric(["realtime"], 1)
            yield from counters
        yield up


def _is_loopback(request: HttpRequest) -> bool:
    try:
        return ipaddress.ip_address(request.META.get("REMOTE_ADDR", "")).is_loopback
    except ValueError:
        return False


def _allowed(request: HttpRequest) -> bool:
    user = getattr(request, "user", None)
    if user is not None and user.is_authenticated and user.is_staff:
        return True
    token = getattr(settings, "NP_METRICS_TOKEN", "")
    if token:
        header = request.headers.get("Authorization", "")
        scheme, _, presented = header.partition(" ")
        return scheme.lower() == "bearer" and hmac.compare_digest(
            presented.strip().encode(), token.encode()
        )
    return bool(getattr(settings, "NP_LOCAL_RUN", False)) and _is_loopback(request)


@require_GET
def metrics(request: HttpRequest) -> HttpResponse:
    if not _allowed(request):
        return JsonResponse(
            error_body("PERMISSION_DENIED", "Metrics need NP_METRICS_TOKEN or a staff session."),
            status=403,
        )
    registry = CollectorRegistry(auto_describe=False)
    registry.register(_ScrapeCollector())
    return HttpResponse(generate_latest(registry), content_type=CONTENT_TYPE_LATEST)
