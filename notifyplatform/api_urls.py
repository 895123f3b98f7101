"""/api/v1/: each app contributes its own router; this module only mounts them."""

from django.urls import include, path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerSplitView

urlpatterns: list = [
    path("schema/", SpectacularAPIView.as_view(), name="api-schema"),
    # the split view serves Swagger UI's start-up script as a file: no inline script (CSP)
    path("docs/", SpectacularSwaggerSplitView.as_view(url_name="api-schema"), name="api-docs"),
    path("", include("users.api.urls")),
    path("", include("templates.api.urls")),
    path("", include("realtime.api.urls")),
    path("", include("deliveries.api.urls")),
    path("", include("campaigns.api.urls")),
    path("", include("auctions.api.urls")),
    path("", include("invitations.api.urls")),
    path("", include("providers.api.urls")),
]
