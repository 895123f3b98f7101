"""Security settings and limits of issue 15 that need no server process: /metrics access,
login and token brute-force limits, deploy-grade settings."""

from __future__ import annotations

import pytest

pytestmark = pytest.mark.django_db


def test_metrics_need_a_token_or_staff_unless_this_is_a_local_run(client, settings, staff_user):
    settings.NP_METRICS_TOKEN = ""
    settings.NP_LOCAL_RUN = False
    assert client.get("/metrics").status_code == 403  # the test client is 127.0.0.1
    settings.NP_LOCAL_RUN = True  # `make run` with local or embedded services
    assert client.get("/metrics").status_code == 200
    assert client.get("/metrics", REMOTE_ADDR="203.0.113.9").status_code == 403

    settings.NP_LOCAL_RUN = False
    settings.NP_METRICS_TOKEN = "s3cret"
    assert client.get("/metrics", HTTP_AUTHORIZATION="Bearer s3cret").status_code == 200
    assert client.get("/metrics", HTTP_AUTHORIZATION="Bearer s3cre").status_code == 403
    # a non-ASCII token is a refusal, not a TypeError in compare_digest (a 500)
    assert client.get("/metrics", HTTP_AUTHORIZATION="Bearer sécret").status_code == 403
    client.force_login(staff_user)
    assert client.get("/metrics").status_code == 200
