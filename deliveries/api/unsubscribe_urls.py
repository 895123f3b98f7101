"""One-click unsubscribe links, mounted at /u/ by the root URLconf."""

from django.urls import path

from .unsubscribe import unsubscribe

urlpatterns = [
    path("<str:token>/", unsubscribe, name="notification-unsubscribe"),
]
