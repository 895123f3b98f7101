"""A publisher process for the fault tests: ``python -m realtime.tests.publisher``.

Waits (bounded) for a go-file so several of them start publishing together, publishes
``--count`` events through ``realtime.services.publish`` (public on ``--topic``, every
other one private to ``--user`` when given) and prints their sequence numbers as JSON."""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--topic", required=True)
    parser.add_argument("--count", type=int, required=True)
    parser.add_argument("--tag", required=True)
    parser.add_argument("--user")
    parser.add_argument("--go-file", required=True)
    args = parser.parse_args()
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "notifyplatform.settings")
    import django

    django.setup()
    from realtime.services import publish

    deadline = time.monotonic() + 60
    while not Path(args.go_file).exists():
        if time.monotonic() > deadline:
            sys.exit("publisher: no go-file within 60 s")
        time.sleep(0.01)
    seqs = []
    for n in range(args.count):
        if args.user and n % 2:
            event = publish(
                event_type="order.private",
                category="user",
                data={"tag": args.tag, "n": n},
                visibility="private",
                user=args.user,
            )
        else:
            event = publish(
                event_type="order.public",
                category="user",
                data={"tag": args.tag, "n": n},
                visibility="public",
                topics=[args.topic],
            )
        seqs.append(event.sequence_number)
    print(json.dumps(seqs), flush=True)


if __name__ == "__main__":
    main()
