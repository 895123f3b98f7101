"""The end-user preference page, mounted at the root by the root URLconf."""

from django.urls import path

from .preference_page import session_page, token_page

urlpatterns = [
    path("preferences/", session_page, name="preference-page"),
    path("p/<str:token>/", token_page, name="preference-page-link"),
]
