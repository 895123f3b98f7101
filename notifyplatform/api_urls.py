"""/api/v1/: each app contributes its own router; this module only mounts them."""

from django.urls import include, path

urlpatterns: list = [
    path("", include("deliveries.api.urls")),
    path("", include("auctions.api.urls")),
    path("", include("invitations.api.urls")),
    path("", include("providers.api.urls")),
]
