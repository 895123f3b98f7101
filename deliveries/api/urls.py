from rest_framework.routers import DefaultRouter

from .staff import DeliveryViewSet
from .views import InboxViewSet, NotificationViewSet, PreferenceViewSet

router = DefaultRouter()
router.register("notifications", NotificationViewSet, basename="notification")
router.register("inbox", InboxViewSet, basename="inbox")
router.register("preferences", PreferenceViewSet, basename="preference")
router.register("deliveries", DeliveryViewSet, basename="delivery")

urlpatterns = router.urls
