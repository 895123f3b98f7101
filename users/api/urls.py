from django.urls import path
from rest_framework.routers import SimpleRouter

from .views import ApiTokenViewSet, MeView

router = SimpleRouter()
router.register("me/tokens", ApiTokenViewSet, basename="me-token")

urlpatterns = [path("me/", MeView.as_view(), name="me"), *router.urls]
