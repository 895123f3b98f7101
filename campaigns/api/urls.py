from rest_framework.routers import DefaultRouter

from .views import BatchJobViewSet

router = DefaultRouter()
router.register("batch-jobs", BatchJobViewSet, basename="batch-job")
urlpatterns = router.urls
