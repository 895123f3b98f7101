"""`make run`'s SMTP sink: a real SMTP server (aiosmtpd) on loopback that accepts every
message and keeps it in a Maildir, so the demo's ``smtp-local`` provider delivers to
something and the admin's "Caught mail" page (``/admin/mail/``) shows what it caught.

    python -m notifyplatform.mailsink --port 1025 --maildir .run/mailbox [--keep 1000]

It keeps the newest ``--keep`` messages and deletes older ones. A development tool: it
never relays anything, and production points ``EMAIL_HOST`` at a real server instead.

This module imports neither Django nor aiosmtpd at import time: the launcher runs it as a
process of its own, and the admin page only reads the Maildir (``caught_mail``).
"""

from __future__ import annotations

import argparse
import contextlib
import mailbox
import os
import signal
import sys
import threading
from dataclasses import dataclass
from datetime import UTC, datetime
from email.message import Message
from email.utils import parsedate_to_datetime
from pathlib import Path

DEFAULT_KEEP = 1000
DELIVERY_HEADER = "X-Notifyplatform-Delivery"


@dataclass(frozen=True)
class CaughtMail:
    key: str
    received_at: datetime
    mail_from: str
    rcpt_to: str
    subject: str
    delivery_id: str
    text: str
    html: str
    headers: list[tuple[str, str]]


def _maildir(path: Path) -> mailbox.Maildir | None:
    if not (path / "cur").is_dir():
        return None
    return mailbox.Maildir(path, factory=None, create=False)


def _parts(message: Message) -> tuple[str, str]:
    text = html = ""
    for part in message.walk():
        if part.is_multipart():
            continue
        payload = part.get_payload(decode=True)
        if not isinstance(payload, bytes):
            continue
        charset = part.get_content_charset() or "utf-8"
        body = payload.decode(charset, errors="replace")
        if part.get_content_type() == "text/plain" and not text:
            text = body
        elif part.get_content_type() == "text/html" and not html:
            html = body
    return text, html


def _received_at(message: mailbox.MaildirMessage) -> datetime:
    with contextlib.suppress(TypeError, ValueError):
        if message["Date"]:
            return parsedate_to_datetime(message["Date"])
    return datetime.fromtimestamp(message.get_date(), tz=UTC)


def _caught(key: str, message: mailbox.MaildirMessage) -> CaughtMail:
    text, html = _parts(message)
    return CaughtMail(
        key=key,
        received_at=_received_at(message),
        mail_from=str(message.get("X-MailFrom") or message.get("From") or ""),
        rcpt_to=str(message.get("X-RcptTo") or message.get("To") or ""),
        subject=str(message.get("Subject") or ""),
        delivery_id=str(message.get(DELIVERY_HEADER) or ""),
        text=text,
        html=html,
        headers=[(name, str(value)) for name, value in message.items()],
    )


def caught_mail(path: Path, limit: int = 200) -> list[CaughtMail]:
    """The newest ``limit`` messages of the sink's Maildir, newest first ([] without one)."""
    box = _maildir(path)
    if box is None:
        return []
    # Maildir names start with the delivery time in seconds: sort on the file's mtime
    # (same clock, finer) and read only the messages shown
    stamped = []
    for sub in ("new", "cur"):
        with os.scandir(path / sub) as entries:
            for entry in entries:
                with contextlib.suppress(FileNotFoundError):
                    stamped.append((entry.stat().st_mtime_ns, entry.name.split(":", 1)[0]))
    stamped.sort(reverse=True)
    found = []
    for _mtime, key in stamped[:limit]:
        with contextlib.suppress(KeyError, FileNotFoundError):
            found.append(_caught(key, box[key]))
    return found


def caught_one(path: Path, key: str) -> CaughtMail | None:
    box = _maildir(path)
    if box is None or "/" in key or key.startswith("."):
        return None
    try:
        return _caught(key, box[key])
    except (KeyError, FileNotFoundError):
        return None


def prune(path: Path, keep: int) -> int:
    """Delete all but the newest ``keep`` messages; the number deleted."""
    files = []
    for sub in ("new", "cur"):
        with contextlib.suppress(FileNotFoundError), os.scandir(path / sub) as entries:
            for entry in entries:
                with contextlib.suppress(FileNotFoundError):
                    files.append((entry.stat().st_mtime_ns, entry.path))
    if len(files) <= keep:
        return 0
    files.sort()
    doomed = files[: len(files) - keep]
    for _mtime, file in doomed:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(file)
    return len(doomed)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m notifyplatform.mailsink", description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=1025)
    parser.add_argument("--maildir", type=Path, required=True)
    parser.add_argument("--keep", type=int, default=DEFAULT_KEEP, help="messages kept")
    args = parser.parse_args(argv)

    from aiosmtpd.controller import Controller
    from aiosmtpd.handlers import Mailbox

    class KeepingMailbox(Mailbox):
        def handle_message(self, message: Message) -> None:
            super().handle_message(message)
            prune(args.maildir, args.keep)
            print(
                f"caught mail to {message.get('X-RcptTo', '?')}: {message.get('Subject', '')!r}",
                flush=True,
            )

    # the three folders of a Maildir (mailbox.Maildir creates them only with the folder)
    for sub in ("cur", "new", "tmp"):
        (args.maildir / sub).mkdir(parents=True, exist_ok=True)
    controller = Controller(KeepingMailbox(args.maildir), hostname=args.host, port=args.port)
    try:
        controller.start()
    except Exception as exc:  # noqa: BLE001 - e.g. the port is taken: one line, no traceback
        print(f"error: SMTP sink cannot listen on {args.host}:{args.port}: {exc}", file=sys.stderr)
        return 1
    print(f"SMTP sink on {args.host}:{args.port}; mail kept in {args.maildir}", flush=True)
    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    stop.wait()
    controller.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
