"""Security behaviour of a real daphne server (issue 15): readiness under websockets and
without Redis, /metrics access, the websocket Origin rules, and tokens kept out of the
access log. Real daphne processes, real websockets and HTTP over loopback."""

from __future__ import annotations

import asyncio
import json
import re
import time

import httpx
import pytest
from django.test import Client
from websockets.asyncio.client import connect
from websockets.exceptions import InvalidStatus

from invitations.tokens import token_generate, token_sign
from notifyplatform.testing import free_port
from realtime.tests.conftest import DaphneServer
from users.services import token_create

pytestmark = [
    pytest.mark.e2e,
    pytest.mark.xdist_group("security_e2e"),
    pytest.mark.django_db(transaction=True),
]

METRICS_TOKEN = "metrics-secret-for-tests"
ALLOWED_ORIGIN = "https://app.example.test"


@pytest.fixture(scope="module")
def server(django_db_setup, django_db_blocker):
    daphne = DaphneServer(
        extra_env={
            "NP_METRICS_TOKEN": METRICS_TOKEN,
            "NP_LOCAL_RUN": "",
            "NP_WS_ALLOWED_ORIGINS": ALLOWED_ORIGIN,
        }
    )
    daphne.start()
    yield daphne
    daphne.stop()


@pytest.fixture(autouse=True)
def _server_writes_settle_before_flush():
    """Let daphne record this test's disconnects before pytest-django truncates the tables
    (a TRUNCATE racing the server's writes deadlocks); as in realtime/tests/conftest.py."""
    yield
    from realtime.models import WebsocketConnection

    open_rows = WebsocketConnection.objects.exclude(connection_status="disconnected")
    deadline = time.monotonic() + 20
    while open_rows.exists() and time.monotonic() < deadline:
        time.sleep(0.1)
    time.sleep(0.2)  # the last disconnect's counters flush right after its status


def get(server: DaphneServer, path: str, **kwargs) -> httpx.Response:
    return httpx.get(f"http://{server.base}{path}", timeout=15, **kwargs)


async def handshake(
    server: DaphneServer,
    *,
    origin: str | None,
    headers: dict[str, str] | None = None,
    query: str = "",
) -> dict:
    """The ``connected`` frame, or {"status": <HTTP status>} when the handshake is refused."""
    url = f"ws://{server.base}/ws/v1/events/" + (f"?{query}" if query else "")
    try:
        async with connect(
            url,
            origin=origin,  # type: ignore[arg-type]
            additional_headers=headers or {},
            proxy=None,
            open_timeout=20,
        ) as ws:
            return json.loads(await asyncio.wait_for(ws.recv(), 10))
    except InvalidStatus as exc:
        return {"status": exc.response.status_code}


# --- /readyz -------------------------------------------------------------------------


def test_readyz_passes_under_daphne_once_a_websocket_has_connected(server):
    async def scenario():
        async with connect(
            f"ws://{server.base}/ws/v1/events/", origin=server.origin, proxy=None
        ) as ws:
            assert '"connected"' in await asyncio.wait_for(ws.recv(), 10)
            # the realtime hub of this process is now waiting on the channel layer
            return await asyncio.to_thread(get, server, "/readyz")

    ready = asyncio.run(scenario())
    assert ready.status_code == 200, ready.text
    body = ready.json()
    assert body["status"] == "ok"
    assert {name: check["ok"] for name, check in body["checks"].items()} == {
        "database": True,
        "redis": True,
        "channel_layer": True,
    }
    assert body["checks"]["channel_layer"]["ms"] < 1000


def test_readyz_without_redis_answers_503_with_reason_codes_only(django_db_setup):
    dead_port = free_port()  # nothing listens here
    daphne = DaphneServer(
        extra_env={"REDIS_URL": f"redis://127.0.0.1:{dead_port}/0", "NP_LOCAL_RUN": ""}
    )
    daphne.start()
    try:
        ready = get(daphne, "/readyz")
        # no NP_METRICS_TOKEN, not a local run: loopback alone does not open /metrics
        assert get(daphne, "/metrics").status_code == 403
    finally:
        daphne.stop()
    assert ready.status_code == 503
    body = ready.json()
    assert body["status"] == "unavailable"
    assert body["reason"] == "REDIS_UNAVAILABLE"
    assert body["checks"]["database"]["ok"] is True
    assert body["checks"]["redis"]["ok"] is False
    assert body["checks"]["redis"]["reason"] == "REDIS_UNAVAILABLE"
    assert body["checks"]["channel_layer"]["ok"] is False
    assert body["checks"]["channel_layer"]["reason"] in (
        "CHANNEL_LAYER_UNAVAILABLE",
        "CHANNEL_LAYER_TIMEOUT",
    )
    # no exception text: no class names, hosts or ports for an anonymous caller
    assert str(dead_port) not in ready.text
    assert "Error" not in ready.text and "127.0.0.1" not in ready.text
    assert set(body["checks"]["redis"]) == {"ok", "reason", "ms"}


# --- /metrics ------------------------------------------------------------------------


def test_metrics_refuse_an_anonymous_loopback_client_outside_a_local_run(server):
    assert get(server, "/metrics").status_code == 403
    assert get(server, "/metrics", headers={"Authorization": "Bearer wrong"}).status_code == 403
    scraped = get(server, "/metrics", headers={"Authorization": f"Bearer {METRICS_TOKEN}"})
    assert scraped.status_code == 200
    assert "np_metrics_source_up" in scraped.text


# --- websocket Origin ----------------------------------------------------------------


@pytest.fixture
def session_cookie(user) -> str:
    client = Client()
    client.force_login(user)
    return f"sessionid={client.cookies['sessionid'].value}"


def test_a_token_client_from_a_foreign_page_is_refused_even_on_loopback(server, user):
    token = token_create(user=user, name="ws")[1]
    auth = {"Authorization": f"Bearer {token}"}
    foreign = [
        f"http://localhost:{server.port + 1 if server.port < 65535 else 1}",
        "http://localhost:9999",
        f"https://{server.base}",  # same host and port, other scheme
        f"http://127.0.0.1:{free_port()}",  # same host, other port
        "null",
    ]
    for origin in foreign:
        assert asyncio.run(handshake(server, origin=origin, headers=auth)) == {"status": 403}, (
            origin
        )
    same = asyncio.run(handshake(server, origin=server.origin, headers=auth))
    assert same["type"] == "connected" and same["authenticated"] is True


def test_a_configured_origin_is_compared_by_scheme_host_and_port(server, user):
    token = token_create(user=user, name="ws")[1]
    auth = {"Authorization": f"Bearer {token}"}
    ok = asyncio.run(handshake(server, origin=ALLOWED_ORIGIN, headers=auth))
    assert ok["type"] == "connected" and ok["authenticated"] is True
    assert (
        asyncio.run(handshake(server, origin="https://app.example.test:443", headers=auth))["type"]
        == "connected"
    )
    for near_miss in (
        "http://app.example.test",
        "https://app.example.test:8443",
        "https://evil.app.example.test",
    ):
        assert asyncio.run(handshake(server, origin=near_miss, headers=auth)) == {"status": 403}, (
            near_miss
        )


def test_non_browser_clients_without_origin_connect_with_a_token_or_anonymously(server, user):
    token = token_create(user=user, name="ws")[1]
    by_header = asyncio.run(
        handshake(server, origin=None, headers={"Authorization": f"Bearer {token}"})
    )
    assert by_header["type"] == "connected" and by_header["authenticated"] is True
    by_query = asyncio.run(handshake(server, origin=None, query=f"token={token}"))
    assert by_query["type"] == "connected" and by_query["authenticated"] is True
    anonymous = asyncio.run(handshake(server, origin=None))
    assert anonymous["type"] == "connected" and anonymous["authenticated"] is False


def test_a_cookie_authenticated_connection_needs_a_matching_origin(server, session_cookie):
    cookie = {"Cookie": session_cookie}
    assert asyncio.run(handshake(server, origin=None, headers=cookie)) == {"status": 403}
    assert asyncio.run(handshake(server, origin="http://localhost:9999", headers=cookie)) == {
        "status": 403
    }
    same = asyncio.run(handshake(server, origin=server.origin, headers=cookie))
    assert same["type"] == "connected" and same["authenticated"] is True


# --- access log ----------------------------------------------------------------------


def test_invitation_and_api_tokens_stay_out_of_the_access_log(server, user):
    link_token = token_sign(token_generate())
    api_token = token_create(user=user, name="ws")[1]
    marker = f"/healthz?probe={free_port()}"
    for path in (
        f"/i/{link_token}/",
        f"/i/{link_token}/accept/",
        f"/api/v1/invitations/by-token/{link_token}/",
    ):
        assert get(server, path).status_code in (200, 302, 400, 404, 405, 410)
    asyncio.run(handshake(server, origin=None, query=f"token={api_token}&topics=x"))
    get(server, f"/realtime/demo/?token={api_token}&topics=x")
    assert get(server, marker).status_code == 200  # the last line we wait for

    deadline = time.monotonic() + 10
    while marker not in server.log() and time.monotonic() < deadline:
        time.sleep(0.05)
    log = server.log()
    assert marker in log
    assert link_token not in log and link_token.split(".")[0] not in log
    assert api_token not in log
    assert re.search(r'"GET /i/\[redacted\]/ HTTP', log) or '"GET /i/[redacted]/"' in log, log
    assert "/i/[redacted]/accept/" in log
    assert "/api/v1/invitations/by-token/[redacted]/" in log
    assert "WSCONNECT /ws/v1/events/" in log
    assert '"GET /realtime/demo/?token=[redacted]&topics=x"' in log


# --- token brute force over the websocket ------------------------------------------


def test_websocket_token_guessing_is_locked_out_per_address_like_the_api(server, user):
    """The websocket accepts ``?token=``: the same per-address limit as the API applies
    (default 20 failures), after which even the right token is closed with 4401."""
    good = token_create(user=user, name="ws")[1]

    async def frame_with(token: str) -> dict:
        return await handshake(server, origin=None, query=f"token={token}")

    for n in range(20):
        assert asyncio.run(frame_with(f"np_guess{n:04d}"))["code"] == "AUTH_FAILED", n
    locked = asyncio.run(frame_with(good))
    assert locked["type"] == "error" and locked["code"] == "AUTH_FAILED"
    # the API from the same address says why, with a Retry-After
    api = get(server, "/api/v1/me/", headers={"Authorization": f"Bearer {good}"})
    assert api.status_code == 429 and int(api.headers["Retry-After"]) > 0


# --- NP_HTTPS on a real daphne ----------------------------------------------------------


def test_np_https_redirects_sets_hsts_and_secure_cookies_behind_a_proxy(django_db_setup):
    daphne = DaphneServer(extra_env={"NP_HTTPS": "1", "NP_BEHIND_PROXY": "1"})
    daphne.start()
    try:
        plain = get(daphne, "/admin/login/")
        probe = get(daphne, "/healthz")
        proxied = get(daphne, "/admin/login/", headers={"X-Forwarded-Proto": "https"})
        # a client cannot claim https past the proxy... that is the proxy's job to strip;
        # without NP_BEHIND_PROXY the header is ignored (see the next server)
    finally:
        daphne.stop()
    assert plain.status_code == 301
    assert plain.headers["Location"] == f"https://{daphne.base}/admin/login/"
    assert probe.status_code == 200  # probes stay reachable over plain HTTP inside
    assert proxied.status_code == 200
    assert proxied.headers["Strict-Transport-Security"] == (
        "max-age=31536000; includeSubDomains; preload"
    )
    cookie = proxied.headers["Set-Cookie"]
    assert "csrftoken=" in cookie and "Secure" in cookie
    assert "upgrade-insecure-requests" in proxied.headers["Content-Security-Policy"]

    direct = DaphneServer(extra_env={"NP_HTTPS": "1"})
    direct.start()
    try:
        spoofed = get(direct, "/admin/login/", headers={"X-Forwarded-Proto": "https"})
    finally:
        direct.stop()
    assert spoofed.status_code == 301  # X-Forwarded-Proto trusted only with NP_BEHIND_PROXY
