"""API → mail: ``POST /api/v1/notifications/`` (daphne) → Celery worker → SMTP server
(aiosmtpd on loopback), one request at a time on an idle system; p50/p99 from the POST to
the mail's arrival.

    python bench/api_to_smtp.py [--json] [--quick] [--requests N]
"""

from __future__ import annotations

import sys
import tempfile
import threading
import time
from pathlib import Path

from common import (
    Reporter,
    celery_worker,
    child_env,
    flush_redis,
    free_port,
    parse_args,
    peak_rss_mb,
    percentile,
    setup_django,
    start,
    stop,
    truncate,
    wait_port,
)


class Sink:
    def __init__(self) -> None:
        self.arrived: dict[str, float] = {}
        self.event = threading.Condition()

    async def handle_DATA(self, server, session, envelope) -> str:  # noqa: N802
        subject = ""
        for line in (envelope.original_content or envelope.content).split(b"\r\n"):
            if line.lower().startswith(b"subject:"):
                subject = line.split(b":", 1)[1].strip().decode()
                break
        with self.event:
            self.arrived[subject] = time.perf_counter()
            self.event.notify_all()
        return "250 OK"

    def wait(self, subject: str, timeout: float) -> float | None:
        deadline = time.monotonic() + timeout
        with self.event:
            while subject not in self.arrived:
                left = deadline - time.monotonic()
                if left <= 0:
                    return None
                self.event.wait(left)
            return self.arrived[subject]


def main() -> None:
    args = parse_args(
        __doc__.splitlines()[0],
        lambda p: p.add_argument("--requests", type=int, default=None),
    )
    setup_django()
    import httpx
    from aiosmtpd.controller import Controller

    from providers.models import Provider
    from users.models import User
    from users.services import token_create

    report = Reporter(args.json)
    n = args.requests or (50 if args.quick else 150)
    log_dir = Path(tempfile.mkdtemp(prefix="np-bench-api-"))

    sink = Sink()
    smtp_port = free_port()
    controller = Controller(sink, hostname="127.0.0.1", port=smtp_port)
    controller.start()
    truncate("notifications", "notification_deliveries")
    flush_redis()
    Provider.objects.filter(provider_type="email").delete()
    Provider.objects.create(
        provider_name="bench-smtp",
        provider_type="email",
        provider_class="smtp",
        priority=10,
        configuration={"host": "127.0.0.1", "port": smtp_port, "timeout": 5},
    )
    User.objects.filter(email="api-bench@example.test").delete()
    user = User.objects.create(email="api-bench@example.test", display_name="Api Bench")
    _token, raw = token_create(user=user, name="bench", is_service=True)

    http_port = free_port()
    daphne = start(
        [
            sys.executable,
            "-m",
            "daphne",
            "-b",
            "127.0.0.1",
            "-p",
            str(http_port),
            "notifyplatform.asgi:application",
        ],
        env=child_env(),
        log=log_dir / "daphne.log",
    )
    worker = celery_worker(concurrency=4, log=log_dir / "worker.log")
    wait_port(http_port, proc=daphne)
    timings: list[float] = []
    failures = 0
    with httpx.Client(
        base_url=f"http://127.0.0.1:{http_port}",
        timeout=30,
        headers={"Authorization": f"Bearer {raw}"},
    ) as client:
        for i in range(-10, n):  # 10 warm-up requests (worker start, connections)
            subject = f"bench-{i}"
            started = time.perf_counter()
            response = client.post(
                "/api/v1/notifications/",
                json={
                    "user_id": str(user.pk),
                    "title": subject,
                    "message": "to the SMTP server",
                    "channels": ["email"],
                },
            )
            if response.status_code != 201:
                failures += 1
                continue
            arrived = sink.wait(subject, 60 if i < 0 else 10)
            if arrived is None:
                failures += 1
            elif i >= 0:
                timings.append((arrived - started) * 1000)
            time.sleep(0.02)  # idle system: one at a time, not back to back
    rss_server = peak_rss_mb(daphne.pid)
    rss_worker = peak_rss_mb(worker.pid)
    stop(worker)
    stop(daphne)
    controller.stop()
    p50, p99 = percentile(timings, 50), percentile(timings, 99)
    report.figure(
        "API POST /api/v1/notifications/ -> mail at the SMTP server, idle, p99",
        p99,
        "ms",
        goal="p99 <= 250 ms",
        met=p99 <= 250 and not failures,
        note=f"p50 {p50:.0f} ms over {len(timings)} requests; {failures} failed",
    )
    report.rss("daphne (API)", rss_server)
    report.rss("celery worker (API → SMTP)", rss_worker)
    truncate("notifications", "notification_deliveries")


if __name__ == "__main__":
    main()
