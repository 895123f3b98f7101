from rest_framework.routers import SimpleRouter

from .views import AuctionItemViewSet, AuctionViewSet

router = SimpleRouter()
router.register("auctions", AuctionViewSet, basename="auction")
router.register("auction-items", AuctionItemViewSet, basename="auction-item")

urlpatterns = router.urls
