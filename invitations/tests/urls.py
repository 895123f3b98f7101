"""The project's URLs plus the invitee pages at /i/ (until the root URLconf mounts
``invitations.urls`` there)."""

from django.urls import include, path

from notifyplatform.urls import urlpatterns as project_urlpatterns

urlpatterns = [
    path("i/", include("invitations.urls")),
    *project_urlpatterns,
]
