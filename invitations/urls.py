"""The invitee's pages; mounted at ``/i/`` by the root URLconf."""

from django.urls import path

from . import views

app_name = "invitations"

urlpatterns = [
    path("<str:token>/", views.invitation_page, name="page"),
    path("<str:token>/accept/", views.invitation_accept_page, name="accept"),
    path("<str:token>/decline/", views.invitation_decline_page, name="decline"),
]
