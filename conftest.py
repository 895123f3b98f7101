"""Fixtures shared by every app's tests: real PostgreSQL and Redis, no mocks of our code."""

from __future__ import annotations

import itertools

import pytest

_counter = itertools.count(1)


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
