from django.urls import path
from rest_framework.routers import DefaultRouter

from .analytics import ClickThroughView
from .receipts import ProviderEventsView
from .staff import DeliveryViewSet
from .suppressions import SuppressionViewSet
from .views import InboxViewSet, NotificationViewSet, PreferenceViewSet

router = DefaultRouter()
router.register("notifications", NotificationViewSet, basename="notification")
router.register("inbox", InboxViewSet, basename="inbox")
router.register("preferences", PreferenceViewSet, basename="preference")
router.register("deliveries", DeliveryViewSet, basename="delivery")
router.register("suppressions", SuppressionViewSet, basename="suppression")

urlpatterns = [
    # providers post signed status callbacks here (verified by their adapter, applied here)
    path("providers/<str:name>/events/", ProviderEventsView.as_view(), name="provider-events"),
    path("analytics/click-through/", ClickThroughView.as_view(), name="analytics-click-through"),
    *router.urls,
]
