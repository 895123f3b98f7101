"""Write paths for accounts, API tokens and push devices."""

from __future__ import annotations

from datetime import datetime

from django.db import transaction
from django.utils import timezone

from .models import ApiToken, Device, User, hash_token


@transaction.atomic
def token_create(
    *, user: User, name: str, is_service: bool = False, expires_at: datetime | None = None
) -> tuple[ApiToken, str]:
    """Create a token and return it with its secret, which is never stored or shown again."""
    raw = ApiToken.generate()
    token = ApiToken.objects.create(
        user=user,
        name=name,
        key_prefix=raw[:10],
        key_hash=hash_token(raw),
        is_service=is_service,
        expires_at=expires_at,
    )
    return token, raw


def token_revoke(*, token: ApiToken) -> ApiToken:
    if token.revoked_at is None:
        token.revoked_at = timezone.now()
        token.save(update_fields=["revoked_at"])
    return token


def token_authenticate(raw: str) -> ApiToken | None:
    """The usable token for a presented secret, or None. Touches last_used_at at most
    once a minute so authentication does not write on every request."""
    if not raw or not raw.startswith(ApiToken.PREFIX):
        return None
    token = ApiToken.objects.select_related("user").filter(key_hash=hash_token(raw)).first()
    if token is None or not token.is_usable or not token.user.is_active:
        return None
    now = timezone.now()
    if token.last_used_at is None or (now - token.last_used_at).total_seconds() > 60:
        ApiToken.objects.filter(pk=token.pk).update(last_used_at=now)
        token.last_used_at = now
    return token


@transaction.atomic
def device_register(
    *,
    user: User,
    kind: str,
    address: str,
    subscription: dict[str, object] | None = None,
    platform: str = "",
    label: str = "",
) -> tuple[Device, bool]:
    """Register or refresh ``user``'s device; idempotent on ``address`` (the FCM token or the
    subscription's endpoint). An address registered by another account moves to ``user``
    (the device changed hands or signed in again); a disabled one is enabled again.
    Returns the device and whether it was created."""
    device, created = Device.objects.select_for_update().get_or_create(
        address=address,
        defaults={
            "user": user,
            "kind": kind,
            "subscription": subscription,
            "platform": platform,
            "label": label,
        },
    )
    if not created:
        device.user = user
        device.kind = kind
        device.subscription = subscription
        device.platform = platform or device.platform
        device.label = label or device.label
        device.last_seen_at = timezone.now()
        device.disabled_at = None
        device.disabled_reason = ""
        device.save()
    return device, created


def device_delete(*, device: Device) -> None:
    device.delete()


def device_disable(*, device_id: int, reason: str) -> bool:
    """Disable a device a provider said is gone (``UNREGISTERED``, HTTP 410). Idempotent:
    returns whether this call disabled it."""
    return bool(
        Device.objects.filter(pk=device_id, disabled_at__isnull=True).update(
            disabled_at=timezone.now(), disabled_reason=reason[:200]
        )
    )
