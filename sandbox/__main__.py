"""``python -m sandbox``: run the provider sandbox until SIGINT/SIGTERM."""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import signal
import sys
from typing import Any

from .config import ConfigError
from .server import serve
from .state import DEFAULT_MAX_MESSAGES, SandboxState


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m sandbox",
        description="Local fake of the notification providers' HTTP APIs.",
    )
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8025)
    parser.add_argument(
        "--receipt-url",
        help="base URL receipts are posted to (+ /api/v1/providers/<provider>/events/)",
    )
    parser.add_argument("--receipt-delay-ms", type=float, help="delay before receipts")
    parser.add_argument("--latency-ms", type=float, help="latency added to every request")
    parser.add_argument("--config", help="JSON file with the initial configuration")
    parser.add_argument(
        "--log-requests", action="store_true", help="log one line per request (slower)"
    )
    parser.add_argument(
        "--max-messages",
        type=int,
        default=DEFAULT_MAX_MESSAGES,
        help="recorded requests kept in memory (oldest dropped first)",
    )
    return parser.parse_args(argv)


def build_config(args: argparse.Namespace) -> dict[str, Any]:
    config: dict[str, Any] = {}
    if args.config:
        with open(args.config, encoding="utf-8") as fh:
            loaded = json.load(fh)
        if not isinstance(loaded, dict):
            raise ConfigError("--config must hold a JSON object")
        config.update(loaded)
    common = dict(config.get("*", {}))
    if args.receipt_url:
        common["receipt_url"] = args.receipt_url
    if args.receipt_delay_ms is not None:
        common["receipt_delay_ms"] = args.receipt_delay_ms
    if args.latency_ms is not None:
        common["latency_ms"] = args.latency_ms
    if common:
        config["*"] = common
    SandboxState(config)  # validate before binding the port
    return config


async def main_async(args: argparse.Namespace, config: dict[str, Any]) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    await serve(
        args.host,
        args.port,
        config,
        log_requests=args.log_requests,
        max_messages=args.max_messages,
        stop=stop,
    )


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    try:
        config = build_config(args)
    except (OSError, ValueError) as exc:
        print(f"sandbox: invalid configuration: {exc}", file=sys.stderr)
        return 2
    try:
        asyncio.run(main_async(args, config))
    except OSError as exc:
        print(f"sandbox: cannot listen on {args.host}:{args.port}: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
