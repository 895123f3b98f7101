"""Profile target: ``notify_many`` to N users on the in-app channel with the fast path,
i.e. the rows written sent in the fan-out's transaction and their events published after
commit (``realtime.services.publish_many``, groups of ``NP_INAPP_PUBLISH_GROUP``). Prints
the seconds of the two parts. Run it under a profiler, e.g.

    DATABASE_URL=... REDIS_URL=... py-spy record -r 200 -f raw -o /tmp/p.txt -- \
        python bench/profile_inapp_publish.py --users 5000
"""

from __future__ import annotations

import time

from common import ensure_users, parse_args, setup_django, truncate


def main() -> None:
    args = parse_args(
        __doc__.splitlines()[0],
        lambda p: p.add_argument("--users", type=int, default=5000),
    )
    setup_django()
    from deliveries.services import notify_many
    from deliveries.services.notify import bulk as bulk_module
    from providers.models import Provider
    from templates.catalog import catalogue_rows
    from templates.models import NotificationTemplate

    existing = set(NotificationTemplate.objects.values_list("template_key", flat=True))
    NotificationTemplate.objects.bulk_create(
        [NotificationTemplate(**r) for r in catalogue_rows() if r["template_key"] not in existing]
    )
    if not Provider.objects.filter(provider_type="in_app", is_enabled=True).exists():
        Provider.objects.create(
            provider_name="bench-in-app", provider_type="in_app", provider_class="in_app"
        )
    users = ensure_users(args.users, prefix="pubprof")
    truncate("notifications", "notification_deliveries", "real_time_events")
    kwargs = {
        "template_key": "news_feed",
        "context": {
            "inviter_name": "A",
            "article_title": "T",
            "invitation_url": "https://x.test/i",
        },
        "channels": ["in_app"],
    }
    notify_many(users[:200], idempotency_prefix="warm", **kwargs)
    truncate("notifications", "notification_deliveries", "real_time_events")

    publish_seconds = 0.0
    original = bulk_module.publish_in_app_groups

    def timed(published):  # type: ignore[no-untyped-def]
        nonlocal publish_seconds
        started = time.perf_counter()
        original(published)
        publish_seconds += time.perf_counter() - started

    bulk_module.publish_in_app_groups = timed
    started = time.perf_counter()
    notify_many(users, idempotency_prefix="prof", **kwargs)
    total = time.perf_counter() - started
    from realtime.models import RealTimeEvent

    events = RealTimeEvent.objects.filter(published_at__isnull=False).count()
    print(
        f"users={len(users)} total={total:.2f}s publish={publish_seconds:.2f}s "
        f"write={total - publish_seconds:.2f}s events_published={events}"
    )


if __name__ == "__main__":
    main()
