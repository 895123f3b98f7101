from django.urls import path
from rest_framework.routers import SimpleRouter

from providers.api.views import ProviderEventsView, ProviderHealthViewSet, ProviderViewSet

router = SimpleRouter()
router.register("providers", ProviderViewSet, basename="provider")
router.register("provider-health", ProviderHealthViewSet, basename="provider-health")

urlpatterns = [
    path("providers/<str:name>/events/", ProviderEventsView.as_view(), name="provider-events"),
    *router.urls,
]
