"""Accounts and API tokens.

`users` is referenced by every seed table through a UUID `id`. Email is the login
name; phone numbers are stored in E.164; timezone/locale/region drive quiet hours,
template language and provider geography.
"""

from __future__ import annotations

import hashlib
import secrets
import uuid
import zoneinfo
from typing import ClassVar

from django.contrib.auth.models import AbstractBaseUser, BaseUserManager, PermissionsMixin
from django.core.exceptions import ValidationError
from django.db import models
from django.utils import timezone as dj_timezone

from notifyplatform.db import SeedIndex


def validate_timezone(value: str) -> None:
    try:
        zoneinfo.ZoneInfo(value)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError) as exc:
        raise ValidationError(f"unknown time zone {value!r}") from exc


class UserManager(BaseUserManager["User"]):
    use_in_migrations = True

    def _create_user(self, email: str, password: str | None, **extra: object) -> User:
        if not email:
            raise ValueError("users need an email address")
        user = self.model(email=self.normalize_email(email).lower(), **extra)
        user.set_password(password)
        user.save(using=self._db)
        return user

    def create_user(self, email: str, password: str | None = None, **extra: object) -> User:
        extra.setdefault("is_staff", False)
        extra.setdefault("is_superuser", False)
        return self._create_user(email, password, **extra)

    def create_superuser(self, email: str, password: str | None = None, **extra: object) -> User:
        extra["is_staff"] = True
        extra["is_superuser"] = True
        return self._create_user(email, password, **extra)


class User(AbstractBaseUser, PermissionsMixin):
    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    email = models.EmailField(max_length=254, unique=True)
    display_name = models.CharField(max_length=150, blank=True)
    phone = models.CharField(max_length=20, blank=True, help_text="E.164, e.g. +14155550100")
    timezone = models.CharField(max_length=64, default="UTC", validators=[validate_timezone])
    locale = models.CharField(max_length=16, default="en", help_text="e.g. en, pt-BR")
    region = models.CharField(
        max_length=50, blank=True, help_text="Geographic region used for provider routing"
    )
    is_active = models.BooleanField(default=True)
    is_staff = models.BooleanField(default=False)
    date_joined = models.DateTimeField(default=dj_timezone.now)
    updated_at = models.DateTimeField(auto_now=True)

    objects = UserManager()

    USERNAME_FIELD = "email"
    EMAIL_FIELD = "email"
    REQUIRED_FIELDS: ClassVar[list[str]] = []

    class Meta:
        db_table = "users"
        ordering = ["email"]
        indexes = [SeedIndex(fields=["region"], name="idx_users_region")]

    def __str__(self) -> str:
        return self.email

    def get_full_name(self) -> str:
        return self.display_name or self.email

    def get_short_name(self) -> str:
        return self.display_name or self.email.split("@")[0]


def hash_token(raw: str) -> str:
    return hashlib.sha256(raw.encode()).hexdigest()


class ApiToken(models.Model):
    """A bearer token for the API and websockets.

    Only a SHA-256 of the secret is stored; the secret is shown once at creation.
    A *service* token may send notifications to any user (for back-end callers);
    a plain token acts as its user.
    """

    PREFIX = "np_"

    id = models.AutoField(primary_key=True)
    user = models.ForeignKey(User, on_delete=models.CASCADE, related_name="api_tokens")
    name = models.CharField(max_length=100)
    key_prefix = models.CharField(max_length=12, editable=False)
    key_hash = models.CharField(max_length=64, unique=True, editable=False)
    is_service = models.BooleanField(
        default=False, help_text="May send notifications to any user (server-to-server)."
    )
    created_at = models.DateTimeField(auto_now_add=True)
    last_used_at = models.DateTimeField(null=True, blank=True)
    expires_at = models.DateTimeField(null=True, blank=True)
    revoked_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        db_table = "api_tokens"
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"{self.name} ({self.key_prefix}…)"

    @property
    def is_usable(self) -> bool:
        now = dj_timezone.now()
        return self.revoked_at is None and (self.expires_at is None or self.expires_at > now)

    @classmethod
    def generate(cls) -> str:
        return cls.PREFIX + secrets.token_urlsafe(32)


class Device(models.Model):
    """A push device of a user: an FCM registration token or a Web Push subscription.

    ``address`` (the FCM token or the subscription's endpoint URL) is unique: registering it
    again refreshes the row, and registering it from another account moves it there. A
    provider answering ``UNREGISTERED``/410 disables the row (``disabled_at`` + reason); a
    disabled device gets no push until it is registered again.
    """

    class Kind(models.TextChoices):
        FCM = "fcm", "FCM registration token"
        WEBPUSH = "webpush", "Web Push subscription"

    id = models.BigAutoField(primary_key=True)
    user = models.ForeignKey(User, on_delete=models.CASCADE, related_name="devices")
    kind = models.CharField(max_length=10, choices=Kind.choices)
    address = models.CharField(
        max_length=1024, unique=True, help_text="FCM token, or the subscription's endpoint URL"
    )
    subscription = models.JSONField(
        null=True, blank=True, help_text="Web Push: {endpoint, keys: {p256dh, auth}}"
    )
    platform = models.CharField(max_length=20, blank=True, help_text="e.g. android, ios, web")
    label = models.CharField(max_length=200, blank=True, help_text="user agent or a name")
    created_at = models.DateTimeField(auto_now_add=True)
    last_seen_at = models.DateTimeField(default=dj_timezone.now)
    disabled_at = models.DateTimeField(null=True, blank=True)
    disabled_reason = models.CharField(max_length=200, blank=True)

    class Meta:
        db_table = "user_devices"
        ordering = ["-last_seen_at", "-id"]
        indexes = [models.Index(fields=["user", "disabled_at"], name="idx_user_devices_active")]

    def __str__(self) -> str:
        return f"{self.kind} {self.address[:24]}…"
