"""A provider row cannot redirect secrets (issue 15, item 3): credential variable names
and the servers credentials go to are restricted, at validation (admin form, API) and
again at send time; changes are audit-logged."""

from __future__ import annotations

import json
import logging

import pytest
from django.contrib.admin.models import LogEntry
from django.urls import reverse

from providers.errors import ProviderError
from providers.health import provider_check_health
from providers.models import Provider
from providers.registry import get_adapter
from providers.routing import candidates
from providers.services import send_with_failover

SECRET = "the-secret-key-an-attacker-wants"


@pytest.fixture
def production_policy(settings):
    """No allowlist at all (the defaults), and secrets in the environment."""
    settings.NP_PROVIDER_ALLOWED_HOSTS = []
    settings.NP_PROVIDER_CREDENTIAL_ENV_ALLOWED = []
    settings.NP_SANDBOX_URL = ""
    return settings


@pytest.fixture
def secrets_in_env(monkeypatch):
    monkeypatch.setenv("SECRET_KEY", SECRET)
    monkeypatch.setenv("DATABASE_URL", "postgres://db-user:db-password@db.internal/prod")
    monkeypatch.setenv("TWILIO_ACCOUNT_SID", "AC-real-sid")
    monkeypatch.setenv("TWILIO_AUTH_TOKEN", "real-twilio-token")


@pytest.fixture
def twilio(make_provider):
    return make_provider(
        provider_name="twilio-prod",
        provider_type="sms",
        provider_class="twilio",
        configuration={"from_number": "+15005550006", "receipt_url": False},
        credentials_required=["TWILIO_ACCOUNT_SID", "TWILIO_AUTH_TOKEN"],
    )


def sms(outbound):
    return outbound(
        channel="sms", recipient="+14155550100", recipient_type="phone", subject=None, html=None
    )


EXFILTRATION = [
    # the secret as a credential, sent to the attacker's server
    lambda url: {
        "credential_env": {"auth_token": "SECRET_KEY", "account_sid": "DATABASE_URL"},
        "api_base_url": url,
    },
    # the real credentials, sent to the attacker's server
    lambda url: {"api_base_url": url},
    # the secret as a credential (a renamed variable), to the same listener
    lambda url: {"credential_env": {"auth_token": "SECRET_KEY"}, "api_base_url": url},
]


@pytest.mark.parametrize("make_config", EXFILTRATION)
def test_a_row_edited_in_the_database_cannot_send_secrets_to_a_listener(
    make_config, twilio, http_server, outbound, production_policy, secrets_in_env
):
    # given a row rewritten behind the admin's back (straight in the database)
    config = {"from_number": "+15005550006", "receipt_url": False, **make_config(http_server.url)}
    Provider.objects.filter(pk=twilio.pk).update(configuration=config)
    twilio.refresh_from_db()

    # when the platform routes and sends an SMS
    routed = candidates(channel="sms")
    outcome = send_with_failover(sms(outbound), [twilio])
    # then nothing reached the listener, and the outcome says why
    assert http_server.requests == []
    assert routed == []
    assert outcome.ok is False
    assert outcome.error is not None and outcome.error.error_code == "UNCONFIGURED"
    assert "configuration refused" in outcome.error.message

    # the adapter itself refuses too, and so does the health probe ("Check now")
    with pytest.raises(ProviderError) as raised:
        get_adapter(twilio).send(sms(outbound))
    metric = provider_check_health(twilio)
    assert http_server.requests == []
    assert raised.value.error_code == "UNCONFIGURED"
    assert (metric.is_healthy, metric.error_code) == (False, "UNCONFIGURED")
    assert SECRET not in json.dumps(outcome.attempts, default=str)


def test_the_same_row_sends_once_its_server_is_allowlisted(
    twilio, http_server, outbound, production_policy, secrets_in_env
):
    """The allowlist is how the sandbox (or a regional endpoint) is allowed: proof that
    the refusal above is the policy, not a broken adapter."""
    config = {"from_number": "+15005550006", "receipt_url": False, "api_base_url": http_server.url}
    Provider.objects.filter(pk=twilio.pk).update(configuration=config)
    twilio.refresh_from_db()
    host, port = http_server.server.server_address[:2]
    production_policy.NP_PROVIDER_ALLOWED_HOSTS = [f"{host}:{port}"]

    send_with_failover(sms(outbound), [twilio])

    assert len(http_server.requests) == 1
    assert SECRET not in repr(http_server.requests[0])
    # ... and a different port of the same host is still refused
    production_policy.NP_PROVIDER_ALLOWED_HOSTS = [f"{host}:{port + 1}"]
    assert get_adapter(twilio).configuration_refused()


# --- validation: the admin form and the API ---------------------------------------


def _change_form_data(admin_client, provider, **overrides):
    url = reverse("admin:providers_provider_change", args=[provider.pk])
    form = admin_client.get(url).context["adminform"].form
    data = {name: form[name].value() for name in form.fields}
    data = {k: ("" if v is None else v) for k, v in data.items()}
    data["configuration"] = json.dumps(provider.configuration)
    data["supported_features"] = json.dumps(provider.supported_features)
    data["webhook_config"] = json.dumps(provider.webhook_config)
    data["geographic_coverage"] = ""
    data["credentials_required"] = ",".join(provider.credentials_required or [])
    data.update(overrides)
    return url, data


@pytest.fixture
def admin_client(client, staff_user):
    staff_user.is_superuser = True
    staff_user.save(update_fields=["is_superuser"])
    client.force_login(staff_user)
    return client


@pytest.mark.parametrize(
    ("configuration", "message"),
    [
        ({"credential_env": {"auth_token": "SECRET_KEY"}}, "SECRET_KEY is not a twilio credential"),
        ({"credential_env": {"account_sid": "DATABASE_URL"}}, "DATABASE_URL is not a twilio"),
        ({"api_base_url": "https://attacker.example"}, "attacker.example is not a twilio server"),
        ({"api_base_url": "http://api.twilio.com"}, "api.twilio.com is not a twilio server"),
        ({"api_base_url": "https://u:p@api.twilio.com"}, "may not carry a user name"),
    ],
)
def test_the_admin_form_refuses_secret_redirection(
    admin_client, twilio, production_policy, configuration, message
):
    url, data = _change_form_data(
        admin_client, twilio, configuration=json.dumps({**twilio.configuration, **configuration})
    )
    response = admin_client.post(url, data)
    assert response.status_code == 200
    errors = response.context["adminform"].form.errors
    assert any(message in error for error in errors["configuration"]), errors
    twilio.refresh_from_db()
    assert twilio.configuration == {"from_number": "+15005550006", "receipt_url": False}


def test_the_admin_form_refuses_a_foreign_credentials_required_name(
    admin_client, twilio, production_policy
):
    url, data = _change_form_data(
        admin_client, twilio, credentials_required="TWILIO_ACCOUNT_SID,SECRET_KEY"
    )
    response = admin_client.post(url, data)
    assert response.status_code == 200
    assert "SECRET_KEY is not a twilio credential" in str(
        response.context["adminform"].form.errors["credentials_required"]
    )


def test_an_admin_change_of_server_or_credentials_is_audit_logged_with_the_diff(
    admin_client, twilio, staff_user, production_policy, caplog
):
    new = {**twilio.configuration, "api_base_url": "https://api.twilio.com"}
    url, data = _change_form_data(
        admin_client,
        twilio,
        configuration=json.dumps(new),
        credentials_required="TWILIO_ACCOUNT_SID,TWILIO_AUTH_TOKEN,TWILIO_EXTRA",
    )
    with caplog.at_level(logging.WARNING, logger="providers.audit"):
        response = admin_client.post(url, data)
    assert response.status_code == 302, response.context["adminform"].form.errors
    entry = LogEntry.objects.get(object_id=str(twilio.pk))
    message = entry.get_change_message()
    assert entry.user_id == staff_user.pk
    assert "configuration.api_base_url: None -> 'https://api.twilio.com'" in message
    assert "'TWILIO_EXTRA'" in message
    assert "Changed" in message  # the admin's own summary is kept
    [record] = [r for r in caplog.records if r.name == "providers.audit"]
    assert "twilio-prod" in record.getMessage() and staff_user.email in record.getMessage()


def test_an_unrelated_admin_change_writes_no_audit_line(
    admin_client, twilio, production_policy, caplog
):
    url, data = _change_form_data(admin_client, twilio, priority="7")
    with caplog.at_level(logging.WARNING, logger="providers.audit"):
        assert admin_client.post(url, data).status_code == 302
    assert [r for r in caplog.records if r.name == "providers.audit"] == []
    assert "Credentials/servers" not in LogEntry.objects.get().get_change_message()


def test_the_api_refuses_secret_redirection_with_a_field_error(
    api_client, staff_user, twilio, production_policy
):
    api_client.force_authenticate(staff_user)
    url = f"/api/v1/providers/{twilio.provider_name}/"
    response = api_client.patch(
        url,
        {"configuration": {"credential_env": {"auth_token": "SECRET_KEY"}}},
        format="json",
    )
    assert response.status_code == 400
    body = response.json()["error"]
    assert body["code"] == "VALIDATION_ERROR"
    assert "SECRET_KEY is not a twilio credential" in body["fields"]["configuration"][0]
    response = api_client.patch(
        url, {"configuration": {"api_base_url": "http://127.0.0.1:9"}}, format="json"
    )
    assert response.status_code == 400
    assert (
        "127.0.0.1 is not a twilio server" in response.json()["error"]["fields"]["configuration"][0]
    )
    twilio.refresh_from_db()
    assert twilio.configuration == {"from_number": "+15005550006", "receipt_url": False}
    assert not LogEntry.objects.exists()


def test_an_api_change_of_the_base_url_is_audit_logged(
    api_client, staff_user, twilio, production_policy, caplog
):
    api_client.force_authenticate(staff_user)
    new = {**twilio.configuration, "api_base_url": "https://api.twilio.com"}
    with caplog.at_level(logging.WARNING, logger="providers.audit"):
        response = api_client.patch(
            f"/api/v1/providers/{twilio.provider_name}/", {"configuration": new}, format="json"
        )
    assert response.status_code == 200, response.json()
    assert response.json()["configuration"] == new
    entry = LogEntry.objects.get(object_id=str(twilio.pk))
    assert entry.user_id == staff_user.pk
    assert entry.get_change_message() == (
        "Changed via API: configuration.api_base_url: None -> 'https://api.twilio.com'"
    )
    assert any(r.name == "providers.audit" for r in caplog.records)


def test_the_sandbox_and_allowlisted_names_pass(twilio, settings):
    settings.NP_PROVIDER_ALLOWED_HOSTS = []
    settings.NP_SANDBOX_URL = "http://127.0.0.1:8001"
    settings.NP_PROVIDER_CREDENTIAL_ENV_ALLOWED = ["ACME_SMS_*", "OTHER_TOKEN"]
    twilio.configuration = {
        "api_base_url": "http://127.0.0.1:8001",
        "credential_env": {"auth_token": "ACME_SMS_TOKEN", "account_sid": "OTHER_TOKEN"},
    }
    twilio.full_clean()
    assert get_adapter(twilio).configuration_refused() == []
    twilio.configuration["api_base_url"] = "http://127.0.0.1:8002"
    assert get_adapter(twilio).configuration_refused()
