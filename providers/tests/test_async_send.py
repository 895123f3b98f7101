"""The batch sender's coroutine path (``providers.aio``, ``asend``,
``send_with_failover_async``) against real loopback servers: the same signing, status
mapping, SSRF refusals and failover as the blocking path; circuit successes tallied per
batch; and the lean benchmark receiver (``sandbox.fasthooks``)."""

from __future__ import annotations

import base64
import json
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import httpx
import pytest

from providers import aio, circuit, kv
from providers.errors import ProviderError
from providers.registry import get_adapter
from providers.services import SuccessTally, send_with_failover_async
from providers.tests.conftest import Reply
from sandbox.signing import verify_standard_webhooks_signature

SECRET = "whsec_" + base64.b64encode(b"sixteen-byte-key-for-async").decode()
ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def webhook_provider(make_provider, monkeypatch):
    monkeypatch.setenv("NP_TEST_ASYNC_SECRET", SECRET)
    return make_provider(
        provider_name="webhook-async",
        provider_type="webhook",
        provider_class="webhook",
        credentials_required=["NP_TEST_ASYNC_SECRET"],
    )


def run(coro):
    return aio.submit(coro).result(timeout=30)


def test_async_send_is_signed_like_the_blocking_one(
    webhook_provider, http_server, outbound, settings
):
    settings.NP_WEBHOOK_ALLOWED_HOSTS = ["127.0.0.1"]
    message = outbound(recipient=f"{http_server.url}/hook", idempotency_key="delivery-7-a")

    result = run(get_adapter(webhook_provider).asend(message))

    [request] = http_server.requests
    assert request.path == "/hook"
    assert request.headers["webhook-id"] == "delivery-7-a"
    assert verify_standard_webhooks_signature(
        SECRET,
        request.headers["webhook-id"],
        request.headers["webhook-timestamp"],
        request.body,
        request.headers["webhook-signature"],
    )
    assert json.loads(request.body)["data"]["delivery_id"] == message.delivery_id
    assert result.provider_message_id == "delivery-7-a"
    assert result.response["status_code"] == 200
    assert result.response["target_ip"] == "127.0.0.1"


@pytest.mark.parametrize(
    ("status", "code", "retryable"),
    [
        (503, "PROVIDER_UNAVAILABLE", True),
        (429, "RATE_LIMITED", True),
        (404, "INVALID_RECIPIENT", False),
        (302, "REJECTED", False),
    ],
)
def test_async_status_mapping(
    webhook_provider, http_server, outbound, settings, status, code, retryable
):
    settings.NP_WEBHOOK_ALLOWED_HOSTS = ["127.0.0.1"]
    headers = {"Retry-After": "7"} if status == 429 else {}
    if status == 302:
        headers = {"Location": "http://10.0.0.1/"}
    http_server.reply("/hook", Reply(status=status, body={"message": "nope"}, headers=headers))

    with pytest.raises(ProviderError) as caught:
        run(get_adapter(webhook_provider).asend(outbound(recipient=f"{http_server.url}/hook")))

    assert caught.value.error_code == code
    assert caught.value.retryable is retryable
    assert len(http_server.requests) == 1  # a redirect is not followed


def test_async_timeout_is_retryable(make_provider, outbound, settings):
    settings.NP_WEBHOOK_ALLOWED_HOSTS = ["127.0.0.1"]
    provider = make_provider(configuration={"timeout": 0.3})
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(1)
        port = listener.getsockname()[1]

        with pytest.raises(ProviderError) as caught:
            run(get_adapter(provider).asend(outbound(recipient=f"http://127.0.0.1:{port}/h")))

    assert caught.value.error_code == "TIMEOUT"
    assert caught.value.retryable is True


def test_async_ssrf_check_follows_the_allowlist_it_was_cached_with(
    webhook_provider, http_server, outbound, settings
):
    # Given a loopback target that was allowed (and its check cached)
    settings.NP_WEBHOOK_ALLOWED_HOSTS = ["127.0.0.1"]
    adapter = get_adapter(webhook_provider)
    run(adapter.asend(outbound(recipient=f"{http_server.url}/hook")))

    # When the allowlist no longer names it
    settings.NP_WEBHOOK_ALLOWED_HOSTS = []

    # Then the same URL is refused before any connection
    with pytest.raises(ProviderError) as caught:
        run(adapter.asend(outbound(recipient=f"{http_server.url}/hook")))
    assert caught.value.error_code == "INVALID_RECIPIENT"
    assert len(http_server.requests) == 1


def test_async_failover_keeps_the_idempotency_key_and_tallies_successes(
    make_provider, http_server, outbound, settings
):
    # Given a first provider whose target answers 503 and a second that accepts
    settings.NP_WEBHOOK_ALLOWED_HOSTS = ["127.0.0.1"]
    first = make_provider(provider_name="async-first", priority=1)
    second = make_provider(provider_name="async-second", priority=2)
    http_server.reply(
        "/hook", Reply(status=503, body={"message": "down"}), Reply(status=200, body={"ok": True})
    )
    tally = SuccessTally()

    outcome = run(
        send_with_failover_async(
            outbound(recipient=f"{http_server.url}/hook", idempotency_key="delivery-9"),
            [first, second],
            tally,
        )
    )

    # Then the second carried it, both tries used the same webhook-id
    assert outcome.provider.provider_name == "async-second"
    assert [a.ok for a in outcome.attempts] == [False, True]
    assert [r.headers["webhook-id"] for r in http_server.requests] == ["delivery-9"] * 2
    # and the success is counted once the tally is flushed, not before
    assert circuit.stats(second)["ok"] == 0
    tally.flush()
    assert circuit.stats(second)["ok"] == 1
    assert circuit.stats(first)["errors"] == 1


def test_record_successes_keeps_a_failure_streak_when_the_last_outcome_failed(make_provider):
    provider = make_provider(provider_name="tally-streak")
    for _ in range(3):
        circuit.record_failure(provider)

    circuit.record_successes(provider, 5, reset_consecutive=False)
    assert circuit.stats(provider) == {"ok": 5, "errors": 3, "consecutive": 3}

    circuit.record_successes(provider, 2)
    assert circuit.stats(provider) == {"ok": 7, "errors": 3, "consecutive": 0}


def test_record_successes_closes_a_half_open_circuit(make_provider):
    provider = make_provider(provider_name="tally-halfopen")
    circuit.open_circuit(provider, reason="test")
    assert kv.client().get(circuit.opened_at_key("tally-halfopen")) is not None

    circuit.record_successes(provider, 3)

    provider.refresh_from_db()
    assert provider.is_healthy is True


# --- the benchmark receiver -------------------------------------------------------------


@pytest.fixture
def fasthooks(tmp_path):
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    config = tmp_path / "hooks.json"
    config.write_text(json.dumps({"webhook": {"name": "bench", "secret": SECRET}}))
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "sandbox.fasthooks",
            "--port",
            str(port),
            "--config",
            str(config),
        ],
        cwd=ROOT,
        stderr=subprocess.PIPE,
    )
    deadline = time.monotonic() + 20
    while True:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            break
        except OSError:
            if time.monotonic() > deadline or proc.poll() is not None:
                proc.kill()
                raise RuntimeError("fasthooks did not start") from None
            time.sleep(0.05)
    yield f"http://127.0.0.1:{port}"
    proc.terminate()
    proc.wait(10)


def counters(base: str) -> dict:
    with urllib.request.urlopen(f"{base}/_sandbox/hooks", timeout=5) as answer:  # noqa: S310
        return json.loads(answer.read())


def test_fast_receiver_verifies_signatures_and_counts_duplicates(
    fasthooks, webhook_provider, outbound, settings
):
    settings.NP_WEBHOOK_ALLOWED_HOSTS = ["127.0.0.1"]
    adapter = get_adapter(webhook_provider)
    # two signed webhooks, one of them sent twice (same webhook-id)
    adapter.send(outbound(recipient=f"{fasthooks}/hooks/bench", idempotency_key="delivery-1"))
    adapter.send(outbound(recipient=f"{fasthooks}/hooks/bench", idempotency_key="delivery-2"))
    run(adapter.asend(outbound(recipient=f"{fasthooks}/hooks/bench", idempotency_key="delivery-2")))
    # one forged: right headers, wrong signature
    with httpx.Client() as client:
        forged = client.post(
            f"{fasthooks}/hooks/bench",
            content=b"{}",
            headers={
                "webhook-id": "delivery-3",
                "webhook-timestamp": str(int(time.time())),
                "webhook-signature": "v1,AAAA",
            },
        )
        unsigned = client.post(f"{fasthooks}/hooks/bench", content=b"{}")
    assert forged.status_code == 401
    assert unsigned.status_code == 401

    assert counters(fasthooks) == {
        "bench": {"received": 5, "verified": 3, "unverified": 2, "unique": 2, "duplicates": 1}
    }
