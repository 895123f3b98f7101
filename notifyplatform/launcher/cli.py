"""The commands: run, test, env, stop."""

from __future__ import annotations

import os
import shlex
import signal
import subprocess
import sys
import time
from typing import TextIO

from .appenv import (
    ADMIN_SCRIPT,
    WORKERS,
    _has_command,
    _manage,
    _port_busy,
    _sandbox_available,
    _tool,
    admin_password,
    child_env,
    mail_sink,
    sandbox_argv,
)
from .demoenv import demo_env
from .procs import Supervisor, emit
from .services import PROJECT_ROOT, ServiceSet, ensure_services, stop_embedded
from .system import LauncherError, port_open

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
