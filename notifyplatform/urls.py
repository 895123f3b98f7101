"""Root URLs: the admin console, the REST API under /api/v1/, health probes."""

from django.contrib import admin
from django.urls import include, path

from . import dashboard, mail_admin, metrics, views

admin.site.site_header = "notifyplatform"
admin.site.site_title = "notifyplatform admin"
admin.site.index_title = "Operations console"

api_v1 = [
    path("", include("notifyplatform.api_urls")),
]

urlpatterns = [
    path("admin/dashboard/", dashboard.view, name="admin_dashboard"),
    path("admin/mail/", mail_admin.mail_list, name="admin_mail"),
    path("admin/mail/<str:key>/", mail_admin.mail_detail, name="admin_mail_detail"),
    path("admin/", admin.site.urls),
    path("api/v1/", include(api_v1)),
    path("healthz", views.healthz, name="healthz"),
    path("readyz", views.readyz, name="readyz"),
    path("metrics", metrics.metrics, name="metrics"),
    path("i/", include("invitations.urls")),
    # tracked links in notifications: record the click, redirect to the action URL
    path("c/", include("deliveries.api.click_urls")),
    path("u/", include("deliveries.api.unsubscribe_urls")),
    # the end-user preference page: signed-in, and by the signed link in every email
    path("accounts/", include("users.urls")),
    path("", include("deliveries.api.preference_page_urls")),
    path("realtime/", include("demo.urls")),
    path("media/", include("invitations.media_urls")),
]

handler404 = "notifyplatform.api_errors.page_not_found"
handler500 = "notifyplatform.api_errors.server_error"
