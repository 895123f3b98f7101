"""The commands: run, test, env, stop."""

from __future__ import annotations

import importlib.util
import os
import secrets
import shlex
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import TextIO

from .procs import Supervisor, emit
from .services import (
    PROJECT_ROOT,
    LauncherError,
    ServiceSet,
    ensure_services,
    free_port,
    port_open,
    stop_embedded,
)

USAGE = """\
usage: python -m notifyplatform.launcher <command>

commands:
  run                  services, migrate, seed_demo, admin user, then daphne + a celery
                       worker per queue (send, batch, control) + celery beat (+ provider
                       sandbox, + SMTP sink) until Ctrl-C / SIGTERM
  test [--] ARGS...    services, then `python -m pytest ARGS...`; exits with pytest's code
  env                  services (left running) and `export DATABASE_URL=... REDIS_URL=...`
  stop                 stop the embedded services left running under the run dir

environment:
  NP_SERVICES          auto (default) | configured | local | embedded
  DATABASE_URL, REDIS_URL   used as they are when set (mode "configured"; a missing
                       database is created); written to <run dir>/services.env, which
                       manage.py reads in a second shell
  EMAIL_HOST, EMAIL_PORT    your SMTP server; unset: `run` starts an SMTP sink (aiosmtpd)
                       whose mail the admin shows at /admin/mail/
  NP_RUN_DIR           run dir (default <project>/.run)
  NP_DB_NAME           database name in local/embedded mode (default notifyplatform)
  PORT                 HTTP port of `run` (default 8000; the sandbox gets PORT+1)
  NP_ADMIN_PASSWORD    admin password (default: generated once into <run>/admin-password)
  NP_ADMIN_LOGIN       admin login (default admin, or admin@example.com for email logins)
  NP_STOP_TIMEOUT      seconds between SIGTERM and SIGKILL (default 10)
"""

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


class Signals:
    """SIGINT/SIGTERM/SIGHUP set a flag instead of raising; the loops poll it."""

    def __init__(self) -> None:
        self.received: list[int] = []
        for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
            signal.signal(sig, self._handle)

    def _handle(self, signum: int, _frame: object) -> None:
        self.received.append(signum)

    @property
    def stop(self) -> bool:
        return bool(self.received)

    @property
    def force(self) -> bool:  # a second signal: no more patience
        return len(self.received) > 1

    def name(self) -> str:
        return signal.Signals(self.received[0]).name if self.received else ""


class Launcher:
    def __init__(self, out: TextIO | None = None):
        self.out = out

    def log(self, message: str) -> None:
        emit("launcher", message, self.out or sys.stdout)


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


# Environment variable → (sandbox provider, key in sandbox DEFAULT_CREDENTIALS):
# the credentials the demo providers (demo/accounts.py) read, as the sandbox expects.
DEMO_CREDENTIALS: dict[str, tuple[str, str]] = {
    "TWILIO_ACCOUNT_SID": ("twilio", "account_sid"),
    "TWILIO_AUTH_TOKEN": ("twilio", "auth_token"),
    "VONAGE_API_KEY": ("vonage", "api_key"),
    "VONAGE_API_SECRET": ("vonage", "api_secret"),
    "VONAGE_SIGNATURE_SECRET": ("vonage", "signature_secret"),
    "MAILGUN_API_KEY": ("mailgun", "api_key"),
    "MAILGUN_WEBHOOK_SIGNING_KEY": ("mailgun", "webhook_signing_key"),
    "SENDGRID_API_KEY": ("sendgrid", "api_key"),
    "POSTMARK_SERVER_TOKEN": ("postmark", "server_token"),
    "POSTMARK_WEBHOOK_USERNAME": ("postmark", "webhook_username"),
    "POSTMARK_WEBHOOK_PASSWORD": ("postmark", "webhook_password"),
    "FCM_ACCESS_TOKEN": ("fcm", "access_token"),
}


def _demo_secret(rundir: Path | None, name: str, make: Callable[[], str]) -> str:
    """A generated demo secret, kept in the run dir so it survives restarts (a browser's
    push subscription is bound to the VAPID key it was made with)."""
    path = rundir / name if rundir is not None else None
    if path is not None:
        try:
            return path.read_text().strip()
        except FileNotFoundError:
            pass
    value = make()
    if path is not None:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as fh:
            fh.write(value + "\n")
    return value


def _vapid_key() -> str:
    import base64

    from cryptography.hazmat.primitives.asymmetric import ec

    scalar = ec.generate_private_key(ec.SECP256R1()).private_numbers().private_value
    return base64.urlsafe_b64encode(scalar.to_bytes(32, "big")).rstrip(b"=").decode()


def _webhook_secret() -> str:
    import base64

    return "whsec_" + base64.b64encode(secrets.token_bytes(24)).decode()


def demo_env(
    environ: Mapping[str, str], *, sandbox_url: str, rundir: Path | None = None
) -> tuple[dict[str, str], list[str]]:
    """The variables ``run`` adds so the demo providers send to the provider sandbox.

    Returns (variables to set, names already set and kept): a variable already in
    ``environ`` is never overridden, so real credentials win over the sandbox's.
    ``NP_SANDBOX_URL`` makes ``seed_demo`` point the providers' API base URLs at the
    sandbox. No ``NP_WEBHOOK_ALLOWED_HOSTS``: the demo's HTTP providers are called at
    their configured API base URL, which the SSRF guard (user-chosen targets: webhooks,
    push endpoints) does not apply to.
    """
    from sandbox import signing
    from sandbox.config import DEFAULT_CREDENTIALS, sendgrid_private_key_pem

    wanted: dict[str, str] = {"NP_SANDBOX_URL": sandbox_url}
    for name, (provider, key) in DEMO_CREDENTIALS.items():
        wanted[name] = str(DEFAULT_CREDENTIALS[provider][key])
    sendgrid = DEFAULT_CREDENTIALS["sendgrid"]
    wanted["SENDGRID_WEBHOOK_PUBLIC_KEY"] = signing.sendgrid_public_key_b64(
        signing.sendgrid_private_key(
            sendgrid_private_key_pem(sendgrid), sendgrid["webhook_key_seed"]
        )
    )
    added: dict[str, str] = {}
    kept: list[str] = []
    for name, value in wanted.items():
        if environ.get(name):
            kept.append(name)
        else:
            added[name] = value
    # Not sandbox-backed, but without them two demo providers would be "unconfigured".
    generated = {
        "WEBPUSH_VAPID_PRIVATE_KEY": ("webpush-vapid-key", _vapid_key),
        "WEBHOOK_SIGNING_SECRET": ("webhook-signing-secret", _webhook_secret),
    }
    for name, (filename, make) in generated.items():
        if environ.get(name):
            kept.append(name)
        else:
            added[name] = _demo_secret(rundir, filename, make)
    return added, kept


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


def _announce(
    log,
    services: ServiceSet,
    port: int,
    login: str,
    password: str,
    sandbox: bool,
    mail: dict[str, str] | None = None,
) -> None:
    base = f"http://127.0.0.1:{port}"
    if not port_open("127.0.0.1", port, 0.2):
        log(f"warning: nothing answers on port {port} yet")
    log(f"ready: admin      {base}/admin/  (login: {login}  password: {password})")
    log(f"ready: API        {base}/api/v1/")
    log(f"ready: websocket  ws://127.0.0.1:{port}/ws/v1/events/")
    log(f"ready: demo page  {base}/realtime/demo/")
    if sandbox:
        log(f"ready: sandbox    http://127.0.0.1:{port + 1}/")
    if mail:
        log(f"ready: mail       {base}/admin/mail/  (SMTP sink on 127.0.0.1:{mail['EMAIL_PORT']})")
    log("Ctrl-C stops everything")


def cmd_run() -> int:
    log = Launcher().log
    signals = Signals()
    try:
        port = int(os.environ.get("PORT") or 8000)
    except ValueError:
        log(f"error: PORT={os.environ['PORT']!r} is not a number")
        return 2
    sandbox = _sandbox_available()
    for needed in [port] + ([port + 1] if sandbox else []):
        if _port_busy(needed):
            log(f"error: port {needed} on 127.0.0.1 is already in use (set PORT=...)")
            return 1
    timeout = float(os.environ.get("NP_STOP_TIMEOUT") or 10)
    services: ServiceSet | None = None
    supervisor: Supervisor | None = None
    try:
        services = ensure_services(log=log)
        log(services.mode_line())
        if not services.development and not os.environ.get("SECRET_KEY"):
            log(
                "error: SECRET_KEY is not set; with configured services (DATABASE_URL/REDIS_URL)"
                " set it to the same long random value on every host"
            )
            return 1
        password = admin_password(services)
        supervisor = Supervisor(PROJECT_ROOT, child_env(services, port))
        if sandbox:
            sandbox_url = f"http://127.0.0.1:{port + 1}"
            added, kept = demo_env(supervisor.env, sandbox_url=sandbox_url, rundir=services.rundir)
            supervisor.env.update(added)
            log(
                f"demo credentials point at the sandbox {sandbox_url}: set "
                + (", ".join(sorted(added)) or "nothing")
                + (f"; kept from your environment: {', '.join(sorted(kept))}" if kept else "")
            )

        # before seed_demo, which writes the smtp-local provider's host and port
        mail = mail_sink(supervisor.env, services.rundir, log)
        if mail is not None:
            supervisor.env.update(mail[0])
            supervisor.spawn("mail", mail[1])
        mail_env = mail[0] if mail is not None else None

        steps = [("migrate", _manage("migrate", "--noinput"))]
        if _has_command("seed_demo"):
            steps.append(("seed", _manage("seed_demo")))
        else:
            log("note: there is no seed_demo command yet; skipping demo data")
        steps.append(("admin", _manage("shell", "--no-imports", "-c", ADMIN_SCRIPT)))
        login = "admin"
        for name, argv in steps:
            if signals.stop:
                break
            supervisor.env["NP_ADMIN_PASSWORD"] = password
            rc, tail = supervisor.run_step(name, argv, lambda: signals.stop)
            supervisor.env.pop("NP_ADMIN_PASSWORD")
            if rc is None:
                break
            if rc != 0:
                log(f"error: {name} failed with exit code {rc}; stopping")
                return 1
            login = next(
                (ln.split("=", 1)[1] for ln in tail if ln.startswith("NP_ADMIN_LOGIN=")), login
            )
        if signals.stop:
            log(f"received {signals.name()}; stopping")
            return 0

        daphne = ["-b", "127.0.0.1", "-p", str(port), "notifyplatform.asgi:application"]
        supervisor.spawn("daphne", _tool("daphne") + daphne)
        celery = _tool("celery") + ["-A", "notifyplatform"]
        for name, queue, pool in WORKERS:
            supervisor.spawn(
                name, celery + ["worker", "-l", "info", "-Q", queue, "-n", f"{name}@%h", *pool]
            )
        schedule = str(services.rundir / "celerybeat-schedule")
        supervisor.spawn("beat", celery + ["beat", "-l", "info", "-s", schedule])
        if sandbox:  # its delivery receipts come back to our receipt endpoints
            supervisor.spawn("sandbox", sandbox_argv(port + 1, f"http://127.0.0.1:{port}"))

        announced, started = False, time.monotonic()
        while not signals.stop:
            dead = supervisor.first_dead()
            if dead is not None:
                dead.flush_output(1.0)
                code = dead.popen.returncode
                log(
                    f"error: {dead.name} exited unexpectedly (exit code {code}); stopping everything"
                )
                return 1
            if not announced and (
                port_open("127.0.0.1", port, 0.2) or time.monotonic() - started > 60
            ):
                announced = True
                _announce(log, services, port, login, password, sandbox, mail_env)
            time.sleep(0.2)
        log(f"received {signals.name()}; stopping")
        return 0
    except LauncherError as exc:
        log(f"error: {exc}")
        return 1
    finally:
        if supervisor is not None:
            supervisor.stop_all(timeout, force=lambda: signals.force)
        if services is not None:
            _release(services, log)


def _release(services: ServiceSet, log) -> None:
    try:
        stopped = services.release(log)
    except Exception as exc:  # report, never mask the command's own outcome
        log(f"error stopping embedded services: {exc}")
        return
    if stopped:
        log("stopped " + ", ".join(stopped))


def _foreground() -> bool:
    """True if we are the terminal's foreground job (then the terminal's Ctrl-C
    reaches pytest directly and must not be forwarded a second time)."""
    try:
        return os.tcgetpgrp(sys.stdin.fileno()) == os.getpgrp()
    except (OSError, ValueError):
        return False


def cmd_test(args: list[str]) -> int:
    log = Launcher().log
    signals = Signals()
    services: ServiceSet | None = None
    try:
        services = ensure_services(log=log)
        log(services.mode_line())
        if signals.stop:
            return 130
        env = {**os.environ, **services.env()}
        # pytest stays in our process group: it gets the terminal's Ctrl-C and can use the tty (pdb)
        proc = subprocess.Popen([sys.executable, "-m", "pytest", *args], env=env)
        forwarded = 0
        while proc.poll() is None:
            while forwarded < len(signals.received):
                sig = signals.received[forwarded]
                forwarded += 1
                if sig != signal.SIGINT or not _foreground():
                    proc.send_signal(sig)
            time.sleep(0.1)
        rc = proc.returncode
        return 128 - rc if rc < 0 else rc  # killed by a signal: the shell's convention
    except LauncherError as exc:
        log(f"error: {exc}")
        return 1
    finally:
        if services is not None:
            _release(services, log)


def cmd_env() -> int:
    log = Launcher(sys.stderr).log
    try:
        services = ensure_services(persistent=True, log=log)
    except LauncherError as exc:
        log(f"error: {exc}")
        return 1
    log(services.mode_line())
    for key, value in services.env().items():
        print(f"export {key}={shlex.quote(value)}")
    if services.embedded:
        log("embedded services left running; `python -m notifyplatform.launcher stop` stops them")
    return 0


def cmd_stop() -> int:
    log = Launcher().log
    try:
        stopped = stop_embedded(log=log)
    except LauncherError as exc:
        log(f"error: {exc}")
        return 1
    log("stopped " + ", ".join(stopped) if stopped else "no embedded service was running")
    return 0


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if not argv or argv[0] in ("-h", "--help", "help"):
        print(USAGE, end="")
        return 0 if argv else 2
    command, rest = argv[0], argv[1:]
    if command == "test":
        return cmd_test(rest[1:] if rest[:1] == ["--"] else rest)
    if rest:
        print(f"{command} takes no arguments\n\n{USAGE}", end="", file=sys.stderr)
        return 2
    commands = {"run": cmd_run, "env": cmd_env, "stop": cmd_stop}
    if command not in commands:
        print(f"unknown command {command!r}\n\n{USAGE}", end="", file=sys.stderr)
        return 2
    return commands[command]()
