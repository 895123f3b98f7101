"""Quick throughput check of the sandbox (not part of the test suite).

    python -m sandbox.bench [--seconds 5] [--concurrency 64] [--target webhook]

Starts the sandbox in a child process on a free loopback port, drives it with keep-alive
aiohttp clients for a bounded time and number of requests, and prints requests/s.  Only
loopback addresses are used.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import json
import multiprocessing as mp
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import aiohttp

from .config import DEFAULT_CREDENTIALS

ROOT = Path(__file__).resolve().parents[1]
MAX_REQUESTS = 2_000_000


def request_for(target: str, base: str) -> tuple[str, dict[str, str], bytes]:
    if target == "webhook":
        body = json.dumps({"type": "notification.delivered", "id": "n-1"}).encode()
        return f"{base}/hooks/bench", {"Content-Type": "application/json"}, body
    if target == "twilio":
        creds = DEFAULT_CREDENTIALS["twilio"]
        token = base64.b64encode(f"{creds['account_sid']}:{creds['auth_token']}".encode())
        headers = {
            "Authorization": "Basic " + token.decode(),
            "Content-Type": "application/x-www-form-urlencoded",
        }
        body = b"To=%2B15551230001&From=%2B15557650000&Body=hello"
        return f"{base}/2010-04-01/Accounts/{creds['account_sid']}/Messages.json", headers, body
    if target == "fcm":
        headers = {
            "Authorization": f"Bearer {DEFAULT_CREDENTIALS['fcm']['access_token']}",
            "Content-Type": "application/json",
        }
        body = json.dumps(
            {"message": {"token": "tok", "notification": {"title": "t", "body": "b"}}}
        ).encode()
        return f"{base}/v1/projects/bench/messages:send", headers, body
    raise SystemExit(f"unknown target {target}")


async def drive(url: str, headers: dict[str, str], body: bytes, seconds: float, conc: int) -> int:
    deadline = time.monotonic() + seconds
    done = 0
    errors = 0
    connector = aiohttp.TCPConnector(limit=conc, force_close=False)
    async with aiohttp.ClientSession(connector=connector) as session:

        async def worker() -> None:
            nonlocal done, errors
            while time.monotonic() < deadline and done < MAX_REQUESTS:
                async with session.post(url, data=body, headers=headers) as resp:
                    await resp.read()
                    if resp.status >= 300:
                        errors += 1
                done += 1

        await asyncio.gather(*(worker() for _ in range(conc)))
    if errors:
        print(f"  {errors} non-2xx responses", file=sys.stderr)
    return done


def cpu_seconds(pid: int) -> float:
    """user + system CPU time of a process (Linux /proc)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return float("nan")
    ticks = os.sysconf("SC_CLK_TCK")
    return (int(fields[11]) + int(fields[12])) / ticks


def client_process(args: tuple[str, dict[str, str], bytes, float, int], out: Any) -> None:
    out.put(asyncio.run(drive(*args)))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m sandbox.bench")
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--concurrency", type=int, default=64, help="connections per client")
    parser.add_argument("--clients", type=int, default=1, help="client processes")
    parser.add_argument("--target", default="webhook", choices=["webhook", "twilio", "fcm"])
    args = parser.parse_args(argv)
    seconds = min(args.seconds, 60.0)
    server = subprocess.Popen(
        [sys.executable, "-m", "sandbox", "--host", "127.0.0.1", "--port", "0"],
        cwd=ROOT,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert server.stderr is not None
        line = server.stderr.readline()
        match = re.search(r"listening on (http://\S+)", line)
        if not match:
            print(f"sandbox did not start: {line}", file=sys.stderr)
            return 1
        url, headers, body = request_for(args.target, match.group(1))
        asyncio.run(drive(url, headers, body, 0.5, 8))  # warm-up
        queue: Any = mp.Queue()
        procs = [
            mp.Process(
                target=client_process, args=((url, headers, body, seconds, args.concurrency), queue)
            )
            for _ in range(args.clients)
        ]
        started = time.monotonic()
        cpu_before = cpu_seconds(server.pid)
        for proc in procs:
            proc.start()
        total = sum(queue.get(timeout=seconds + 30) for _ in procs)
        elapsed = time.monotonic() - started
        server_cpu = cpu_seconds(server.pid) - cpu_before
        for proc in procs:
            proc.join()
        print(
            f"{args.target}: {total} requests in {elapsed:.1f}s = {total / elapsed:.0f} req/s "
            f"({args.clients} client process(es) x {args.concurrency} keep-alive connections)"
        )
        if server_cpu > 0:
            print(
                f"  server CPU {server_cpu:.2f}s = {total / server_cpu:.0f} requests per "
                "server CPU-second (the ceiling of one core)"
            )
        return 0
    finally:
        server.send_signal(signal.SIGTERM)
        try:
            server.wait(10)
        except subprocess.TimeoutExpired:
            server.kill()


if __name__ == "__main__":
    sys.exit(main())
