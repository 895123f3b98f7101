"""The narrations' audio files; mounted at ``MEDIA_URL`` (``/media/``) by the root URLconf."""

from django.urls import path

from . import views

urlpatterns = [
    path("narrations/<str:name>", views.narration_audio, name="narration-audio"),
]
