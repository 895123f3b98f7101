from rest_framework.routers import SimpleRouter

from .views import RealTimeEventViewSet, WebsocketConnectionViewSet

router = SimpleRouter()
router.register("realtime/events", RealTimeEventViewSet, basename="realtime-event")
router.register("realtime/connections", WebsocketConnectionViewSet, basename="realtime-connection")

urlpatterns = router.urls
