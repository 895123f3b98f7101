from django.urls import path
from rest_framework.routers import SimpleRouter

from .views import ApiTokenViewSet, DeviceViewSet, MeView

router = SimpleRouter()
router.register("me/tokens", ApiTokenViewSet, basename="me-token")
router.register("devices", DeviceViewSet, basename="device")

urlpatterns = [path("me/", MeView.as_view(), name="me"), *router.urls]
