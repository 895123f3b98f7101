"""Session sign-in for users' own HTML pages (the preference page), mounted at /accounts/.

Django's own login/logout views: accounts sign in by email (the form's field is named
``username``). django-axes (``AUTHENTICATION_BACKENDS``) limits failed logins here as on the
admin's form: per account and per address, 429 while locked out. It is the site's one
sign-in page: the demo page links here with ``?next=/realtime/demo/`` (its old
``/realtime/demo/login/`` redirects here).
"""

from django.contrib.auth import views as auth_views
from django.urls import path

urlpatterns = [
    path(
        "login/",
        auth_views.LoginView.as_view(
            template_name="users/login.html", redirect_authenticated_user=True,
            next_page="/preferences/",  # without ?next=: the user's own page
        ),
        name="users-login",
    ),
    path("logout/", auth_views.LogoutView.as_view(next_page="users-login"), name="users-logout"),
]
