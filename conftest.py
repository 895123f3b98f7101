"""Fixtures shared by every app's tests: real PostgreSQL and Redis, no mocks of our code."""

from __future__ import annotations

import contextlib
import itertools
import os

import pytest

_counter = itertools.count(1)

# What provider rows may point at (providers/policy.py), for the whole suite and the
# workers and servers it starts: the provider sandbox and the tests' own receivers listen
# on loopback ports, and test credentials are named NP_TEST_*. Production allows neither.
TEST_PROVIDER_POLICY = {
    "NP_PROVIDER_ALLOWED_HOSTS": "127.0.0.1,localhost",
    "NP_PROVIDER_CREDENTIAL_ENV_ALLOWED": "NP_TEST_*",
}
for _name, _value in TEST_PROVIDER_POLICY.items():
    os.environ.setdefault(_name, _value)


@pytest.fixture(autouse=True)
def _test_provider_policy(settings):
    """The same in this process (settings were read before this module was imported)."""
    for name in TEST_PROVIDER_POLICY:
        setattr(settings, name, [v for v in os.environ[name].split(",") if v])


@pytest.fixture
def make_user(db):
    """Create a user; every call gets a fresh email unless one is given."""
    from users.models import User

    def make(**fields):
        n = next(_counter)
        fields.setdefault("email", f"user{n}@example.test")
        password = fields.pop("password", "pw-for-tests-1")
        return User.objects.create_user(password=password, **fields)

    return make


@pytest.fixture
def user(make_user):
    return make_user(email="alice@example.test", display_name="Alice")


@pytest.fixture
def other_user(make_user):
    return make_user(email="bob@example.test", display_name="Bob")


@pytest.fixture
def staff_user(make_user):
    return make_user(email="staff@example.test", is_staff=True)


@pytest.fixture
def api_client():
    from rest_framework.test import APIClient

    return APIClient()


@pytest.fixture(autouse=True)
def _fast_password_hashing(settings):
    """Full PBKDF2 costs ~1 s per user on this machine; tests don't need it."""
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture(autouse=True)
def _token_failures_forgotten():
    """Failed token authentications are counted per address (users.lockout) in Redis,
    which outlives a test; every test client (and daphne child) is 127.0.0.1."""
    yield
    from django.core.cache import cache

    from users.lockout import KEY

    key = KEY.format("127.0.0.1")
    with contextlib.suppress(Exception):  # a test that stopped Redis
        cache.delete_many([key, f"{key}:since"])
