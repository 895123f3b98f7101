"""One sign-in page: the demo page signs in at ``/accounts/login/`` and comes back, the
former ``/realtime/demo/login/`` redirects there, and signing out returns to the demo."""

from __future__ import annotations

import pytest
from django.test import Client

pytestmark = pytest.mark.django_db

DEMO_LOGIN = "/accounts/login/?next=/realtime/demo/"


def test_the_old_demo_login_redirects_to_the_one_sign_in_page():
    client = Client()
    assert client.get("/realtime/demo/login/")["Location"] == DEMO_LOGIN
    assert client.get("/realtime/demo/login/?next=/preferences/")["Location"] == (
        "/accounts/login/?next=/preferences/"
    )


def test_an_anonymous_visitor_signs_in_from_the_demo_page_and_comes_back(make_user, settings):
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
    user = make_user(email="ann@example.test", display_name="Ann")
    user.set_password("pw-for-tests-1")
    user.save(update_fields=["password"])
    client = Client()
    page = client.get("/realtime/demo/").content.decode()
    assert f'<a id="sign-in" href="{DEMO_LOGIN}">' in page

    form = client.get(DEMO_LOGIN)
    assert form.status_code == 200
    assert b'name="next" value="/realtime/demo/"' in form.content
    signed_in = client.post(DEMO_LOGIN, {"username": "ann@example.test",
                                         "password": "pw-for-tests-1",
                                         "next": "/realtime/demo/"})
    assert signed_in.status_code == 302 and signed_in["Location"] == "/realtime/demo/"
    page = client.get("/realtime/demo/").content.decode()
    assert "You are signed in as" in page and 'action="/accounts/logout/"' in page

    signed_out = client.post("/accounts/logout/", {"next": "/realtime/demo/"})
    assert signed_out["Location"] == "/realtime/demo/"
    assert "You are not signed in" in client.get("/realtime/demo/").content.decode()


def test_a_next_elsewhere_is_not_followed(make_user, settings):
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
    user = make_user(email="ben@example.test")
    user.set_password("pw-for-tests-1")
    user.save(update_fields=["password"])
    answer = Client().post("/accounts/login/?next=https://evil.example/",
                           {"username": "ben@example.test", "password": "pw-for-tests-1",
                            "next": "https://evil.example/"})
    assert answer.status_code == 302 and answer["Location"] == "/preferences/"
