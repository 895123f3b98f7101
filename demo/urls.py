"""The demo app's pages, mounted under ``/realtime/`` (``/realtime/demo/``)."""

from django.urls import path

from . import views

app_name = "demo"
urlpatterns = [path("demo/", views.demo, name="demo")]
