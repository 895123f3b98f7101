from django.urls import path
from rest_framework.routers import SimpleRouter

from .content import NewsArticleViewSet, NewsNarrationViewSet, RoleplayTemplateViewSet
from .views import (
    InvitationAcceptByTokenView,
    InvitationByTokenView,
    InvitationDeclineByTokenView,
    InvitationFunnelViewSet,
    InvitationHistoryViewSet,
    InvitationViewSet,
    ProviderPerformanceViewSet,
    UserInvitationSummaryViewSet,
)

router = SimpleRouter()
router.register("invitations", InvitationViewSet, basename="invitation")
router.register("news-articles", NewsArticleViewSet, basename="news-article")
router.register("news-narrations", NewsNarrationViewSet, basename="news-narration")
router.register("roleplay-templates", RoleplayTemplateViewSet, basename="roleplay-template")
router.register("invitation-history", InvitationHistoryViewSet, basename="invitation-history")
router.register(
    "analytics/user-invitation-summary", UserInvitationSummaryViewSet,
    basename="analytics-user-invitation-summary",
)
router.register(
    "analytics/provider-performance", ProviderPerformanceViewSet,
    basename="analytics-provider-performance",
)
router.register(
    "analytics/invitation-funnel", InvitationFunnelViewSet, basename="analytics-invitation-funnel"
)

# The token routes come first: "by-token" must not be read as an invitation id.
urlpatterns = [
    path("invitations/by-token/<str:token>/", InvitationByTokenView.as_view(),
         name="invitation-by-token"),
    path("invitations/by-token/<str:token>/accept/", InvitationAcceptByTokenView.as_view(),
         name="invitation-by-token-accept"),
    path("invitations/by-token/<str:token>/decline/", InvitationDeclineByTokenView.as_view(),
         name="invitation-by-token-decline"),
    *router.urls,
]
