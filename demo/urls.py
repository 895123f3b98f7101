"""The demo app's pages, mounted under ``/realtime/`` (``/realtime/demo/`` and its sign
in / sign out)."""

from django.contrib.auth import views as auth_views
from django.urls import path

from . import views

app_name = "demo"
urlpatterns = [
    path("demo/", views.demo, name="demo"),
    # Django's own login (django-axes' lockouts apply, as on the admin's)
    path(
        "demo/login/",
        auth_views.LoginView.as_view(
            template_name="demo/login.html", next_page="/realtime/demo/",
            redirect_authenticated_user=True,
        ),
        name="login",
    ),
    path("demo/logout/", auth_views.LogoutView.as_view(next_page="/realtime/demo/"), name="logout"),
]
