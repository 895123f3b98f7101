"""The demo app's pages, mounted under ``/realtime/`` (``/realtime/demo/``).

Signing in and out is the site's one sign-in page, ``/accounts/login/`` (users.urls, with
``next=/realtime/demo/``) and ``/accounts/logout/``; the demo's former
``/realtime/demo/login/`` redirects there, keeping its ``next``."""

from django.urls import path

from . import views

app_name = "demo"
urlpatterns = [
    path("demo/", views.demo, name="demo"),
    path("demo/login/", views.login_redirect, name="login"),
]
