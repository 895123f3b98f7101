from django.urls import path

from . import views

app_name = "realtime"
urlpatterns = [path("demo/", views.demo, name="demo")]
