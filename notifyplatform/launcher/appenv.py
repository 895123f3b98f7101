"""What ``run`` starts: the app processes' command lines (daphne, a Celery worker per
queue, beat, the provider sandbox, the SMTP sink), the admin user script, and the
environment the children get."""

from __future__ import annotations

import importlib.util
import os
import secrets
import socket
import sys
from collections.abc import Callable, Mapping
from pathlib import Path

from .services import PROJECT_ROOT, ServiceSet
from .system import free_port

# One Celery worker per queue (settings.CELERY_TASK_ROUTES), so that sends piling up never
# hold back a batch's fan-out or beat's control tasks (auctions closing, the dispatcher).
WORKERS = (
    ("w-send", "send", ["--concurrency", "2"]),
    ("w-batch", "batch", ["--pool", "threads", "--concurrency", "2"]),
    ("w-ctl", "control", ["--pool", "threads", "--concurrency", "4"]),
)

BIN_DIR = Path(sys.executable).parent  # the venv's bin (not resolved: keep the venv)

# Ensure the admin superuser exists with the given password, whatever the user model
# (username or email as USERNAME_FIELD). Printed last: NP_ADMIN_LOGIN=<login>.
ADMIN_SCRIPT = """
import os
from django.contrib.auth import get_user_model

User = get_user_model()
manager = User._default_manager
login_field = User.USERNAME_FIELD
email_field = User.get_email_field_name()
fields = {f.name: f for f in User._meta.get_fields() if getattr(f, "concrete", False)}
is_email_login = login_field == email_field or fields[login_field].get_internal_type() == "EmailField"
login = os.environ.get("NP_ADMIN_LOGIN") or ("admin@example.com" if is_email_login else "admin")
password = os.environ["NP_ADMIN_PASSWORD"]
user = manager.filter(**{login_field: login}).first()
if user is None:
    extra = {}
    if "username" in fields and login_field != "username":
        extra["username"] = "admin"
    if email_field in fields and login_field != email_field:
        extra[email_field] = "admin@example.com"
    for name in User.REQUIRED_FIELDS:
        extra.setdefault(name, "admin")
    user = manager.create_superuser(**{login_field: login}, password=password, **extra)
    print(f"created superuser {login}")
else:
    for flag in ("is_staff", "is_superuser", "is_active"):
        if hasattr(user, flag):
            setattr(user, flag, True)
    user.set_password(password)
    user.save()
    print(f"superuser {login} exists; password set")
print(f"NP_ADMIN_LOGIN={getattr(user, login_field)}")
"""


def _tool(name: str) -> list[str]:
    """`python -m name` with this interpreter: the environment the launcher runs in,
    whatever it is called and wherever its console scripts went."""
    return [sys.executable, "-m", name]


def _manage(*args: str) -> list[str]:
    return [sys.executable, str(PROJECT_ROOT / "manage.py"), *args]


def _has_command(name: str) -> bool:
    return any(PROJECT_ROOT.glob(f"*/management/commands/{name}.py"))


def _sandbox_available() -> bool:
    return (PROJECT_ROOT / "sandbox" / "__main__.py").exists()


def sandbox_argv(port: int, receipt_url: str | None) -> list[str]:
    """The provider sandbox's command line; its delivery receipts go to ``receipt_url``."""
    argv = [sys.executable, "-m", "sandbox", "--host", "127.0.0.1", "--port", str(port)]
    if receipt_url:
        argv += ["--receipt-url", receipt_url]
    return argv


def mail_sink(
    environ: Mapping[str, str],
    rundir: Path,
    log: Callable[[str], None],
    preferred_port: int = 1025,
) -> tuple[dict[str, str], list[str]] | None:
    """The local SMTP sink of the demo (``notifyplatform.mailsink``): (variables for the
    app processes, its command line), or None when ``EMAIL_HOST`` / ``EMAIL_PORT`` name
    your own server or aiosmtpd is not installed. Port 1025 unless taken, then a free one."""
    if environ.get("EMAIL_HOST") or environ.get("EMAIL_PORT"):
        log("mail: EMAIL_HOST/EMAIL_PORT are set; the smtp-local provider sends there (no sink)")
        return None
    if importlib.util.find_spec("aiosmtpd") is None:
        log("note: aiosmtpd is not installed (requirements-dev.txt): no local SMTP sink")
        return None
    port = preferred_port if not _port_busy(preferred_port) else free_port()
    maildir = rundir / "mailbox"
    variables = {
        "EMAIL_HOST": "127.0.0.1",
        "EMAIL_PORT": str(port),
        "NP_MAIL_SINK_DIR": str(maildir),
    }
    argv = [sys.executable, "-m", "notifyplatform.mailsink", "--port", str(port)]
    return variables, argv + ["--maildir", str(maildir)]


def admin_password(services: ServiceSet) -> str:
    if os.environ.get("NP_ADMIN_PASSWORD"):
        return os.environ["NP_ADMIN_PASSWORD"]
    path = services.rundir / "admin-password"
    try:
        return path.read_text().strip()
    except FileNotFoundError:
        password = secrets.token_urlsafe(12)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as fh:
            fh.write(password + "\n")
        return password


def _port_busy(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return True
    return False


def child_env(services: ServiceSet, port: int) -> dict[str, str]:
    env = dict(os.environ)
    env.update(services.env())
    env.setdefault("DJANGO_SETTINGS_MODULE", "notifyplatform.settings")
    env.setdefault("NP_PUBLIC_BASE_URL", f"http://127.0.0.1:{port}")
    if set(services.modes.values()) <= {"local", "embedded"}:
        # a developer's machine: /metrics is open to loopback clients (see settings)
        env.setdefault("NP_LOCAL_RUN", "1")
    env["PORT"] = str(port)
    env["PYTHONUNBUFFERED"] = "1"
    env["PATH"] = f"{BIN_DIR}{os.pathsep}{env.get('PATH', '')}"
    return env
