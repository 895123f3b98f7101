from rest_framework.routers import SimpleRouter

from providers.api.views import ProviderHealthViewSet, ProviderViewSet

router = SimpleRouter()
router.register("providers", ProviderViewSet, basename="provider")
router.register("provider-health", ProviderHealthViewSet, basename="provider-health")

urlpatterns = router.urls
