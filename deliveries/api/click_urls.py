"""Tracked links, mounted at /c/ by the root URLconf."""

from django.urls import path

from .clicks import follow_click

urlpatterns = [
    path("<str:token>/", follow_click, name="notification-click"),
]
