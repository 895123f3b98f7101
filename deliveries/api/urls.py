from rest_framework.routers import DefaultRouter

from .views import InboxViewSet, NotificationViewSet, PreferenceViewSet

router = DefaultRouter()
router.register("notifications", NotificationViewSet, basename="notification")
router.register("inbox", InboxViewSet, basename="inbox")
router.register("preferences", PreferenceViewSet, basename="preference")

urlpatterns = router.urls
