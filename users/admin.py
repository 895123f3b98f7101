"""Admin for accounts and API tokens.

Tokens are created and revoked through ``users.services``: the admin never writes a
key hash itself, and the secret is shown once, in the message after "Save".
"""

from __future__ import annotations

from typing import Any

from django.contrib import admin, messages
from django.contrib.auth.admin import UserAdmin as DjangoUserAdmin
from django.contrib.auth.forms import AdminUserCreationForm
from django.contrib.auth.forms import UserChangeForm as DjangoUserChangeForm
from django.core.exceptions import ValidationError
from django.db.models import QuerySet
from django.http import HttpRequest
from django.utils.html import format_html

from notifyplatform.admin_utils import NPModelAdmin

from .models import ApiToken, Device, User
from .selectors import user_email_taken
from .services import device_disable, token_create, token_revoke

PROFILE_FIELDS = ("display_name", "phone", "timezone", "locale", "region")


class UserCreationForm(AdminUserCreationForm):
    class Meta:
        model = User
        fields = ("email", *PROFILE_FIELDS)

    def clean_email(self) -> str:
        # The manager lower-cases emails; the admin form saves through the model, so
        # it must do the same and reject a case-variant of an existing address.
        email = User.objects.normalize_email(self.cleaned_data["email"]).lower()
        if user_email_taken(email):
            raise ValidationError("A user with this email already exists.", code="unique")
        return email


class UserChangeForm(DjangoUserChangeForm):
    class Meta:
        model = User
        fields = "__all__"


@admin.register(User)
class UserAdmin(DjangoUserAdmin):
    form = UserChangeForm
    add_form = UserCreationForm
    list_display = (
        "email",
        "display_name",
        "region",
        "timezone",
        "locale",
        "is_staff",
        "is_active",
        "date_joined",
    )
    list_filter = ("is_staff", "is_superuser", "is_active", "region", "locale")
    search_fields = ("email", "display_name", "phone")
    ordering = ("email",)
    date_hierarchy = "date_joined"
    readonly_fields = ("last_login", "updated_at")
    fieldsets = (
        (None, {"fields": ("email", "password")}),
        ("Profile", {"fields": PROFILE_FIELDS}),
        (
            "Permissions",
            {"fields": ("is_active", "is_staff", "is_superuser", "groups", "user_permissions")},
        ),
        ("Dates", {"fields": ("last_login", "date_joined", "updated_at")}),
    )
    add_fieldsets = (
        (
            None,
            {
                "classes": ("wide",),
                "fields": ("email", "usable_password", "password1", "password2"),
            },
        ),
        ("Profile", {"fields": PROFILE_FIELDS}),
    )
    filter_horizontal = ("groups", "user_permissions")


class ApiTokenStateFilter(admin.SimpleListFilter):
    title = "state"
    parameter_name = "state"

    def lookups(self, request: HttpRequest, model_admin: Any) -> list[tuple[str, str]]:
        return [("active", "Active"), ("revoked", "Revoked")]

    def queryset(self, request: HttpRequest, queryset: QuerySet[ApiToken]) -> QuerySet[ApiToken]:
        if self.value() == "active":
            return queryset.filter(revoked_at__isnull=True)
        if self.value() == "revoked":
            return queryset.filter(revoked_at__isnull=False)
        return queryset


@admin.register(ApiToken)
class ApiTokenAdmin(NPModelAdmin):
    list_display = (
        "name",
        "user",
        "key_prefix",
        "is_service",
        "created_at",
        "last_used_at",
        "expires_at",
        "revoked_at",
    )
    list_filter = (ApiTokenStateFilter, "is_service")
    search_fields = ("name", "key_prefix", "user__email")
    list_select_related = ("user",)
    date_hierarchy = "created_at"
    autocomplete_fields = ("user",)
    actions = ("revoke_tokens",)
    # key_hash is deliberately absent everywhere: it is a credential verifier.
    fields = (
        "user",
        "name",
        "is_service",
        "expires_at",
        "key_prefix",
        "last_used_at",
        "revoked_at",
        "created_at",
    )

    def get_readonly_fields(self, request: HttpRequest, obj: ApiToken | None = None) -> Any:
        readonly = ["key_prefix", "last_used_at", "revoked_at", "created_at"]
        if obj is not None:
            readonly += ["user", "is_service"]
        return readonly

    def get_fields(self, request: HttpRequest, obj: ApiToken | None = None) -> Any:
        if obj is None:
            return ("user", "name", "is_service", "expires_at")
        return self.fields

    def save_model(self, request: HttpRequest, obj: ApiToken, form: Any, change: bool) -> None:
        if change:
            super().save_model(request, obj, form, change)
            return
        token, raw = token_create(
            user=obj.user, name=obj.name, is_service=obj.is_service, expires_at=obj.expires_at
        )
        # The admin continues with `obj` (log entry, redirect): make it the created row.
        for field in ApiToken._meta.concrete_fields:
            setattr(obj, field.attname, getattr(token, field.attname))
        obj._state.adding = False
        obj._state.db = token._state.db
        messages.warning(
            request,
            format_html(
                "Token secret for “{}” — copy it now, it is not stored and will not be shown "
                "again: <code>{}</code>",
                token.name,
                raw,
            ),
        )

    @admin.action(description="Revoke selected tokens")
    def revoke_tokens(self, request: HttpRequest, queryset: QuerySet[ApiToken]) -> None:
        revoked = 0
        for token in queryset.filter(revoked_at__isnull=True):
            token_revoke(token=token)
            revoked += 1
        self.message_user(request, f"Revoked {revoked} token(s).", messages.SUCCESS)


@admin.register(Device)
class DeviceAdmin(NPModelAdmin):
    """Push devices: staff can see them, disable one by hand (it re-enables when the app
    registers it again) or delete it."""

    list_display = ("address_short", "user", "kind", "platform", "last_seen_at", "disabled_at")
    list_filter = ("kind", "platform", ("disabled_at", admin.EmptyFieldListFilter))
    search_fields = ("address", "user__email", "label")
    raw_id_fields = ("user",)
    readonly_fields = ("created_at", "last_seen_at")
    actions = ["disable_devices"]

    @admin.display(description="token / endpoint")
    def address_short(self, obj: Device) -> str:
        return obj.address if len(obj.address) <= 48 else f"{obj.address[:48]}…"

    @admin.action(description="Disable selected devices")
    def disable_devices(self, request: HttpRequest, queryset: QuerySet[Device]) -> None:
        disabled = sum(
            device_disable(device_id=pk, reason=f"disabled by {request.user}")
            for pk in queryset.values_list("pk", flat=True)
        )
        self.message_user(request, f"Disabled {disabled} device(s).", messages.SUCCESS)
