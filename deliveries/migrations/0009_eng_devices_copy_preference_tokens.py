"""Copy the push tokens kept in preference rows (``delivery_preferences.device_token`` or
``push_subscription``) into the device registry (``users.Device``), so those users get the
registry's per-device push (and UNREGISTERED/410 handling). The preference rows are left as
they were; a token already registered stays with its owner. Reversing removes nothing."""

from django.db import migrations


def copy_tokens(apps, schema_editor):
    Preference = apps.get_model("deliveries", "UserNotificationPreference")
    Device = apps.get_model("users", "Device")
    devices = {}
    rows = (
        Preference.objects.filter(delivery_method="push", user__isnull=False)
        .exclude(delivery_preferences__isnull=True)
        .order_by("id")
        .values_list("user_id", "delivery_preferences")
    )
    for user_id, prefs in rows.iterator(chunk_size=2000):
        if not isinstance(prefs, dict):
            continue
        token = prefs.get("device_token")
        subscription = prefs.get("push_subscription") or prefs.get("subscription")
        if isinstance(token, str) and token.strip():
            address = token.strip()[:1024]
            devices.setdefault(address, Device(user_id=user_id, kind="fcm", address=address))
        elif (
            isinstance(subscription, dict)
            and isinstance(subscription.get("endpoint"), str)
            and isinstance(subscription.get("keys"), dict)
        ):
            address = subscription["endpoint"][:1024]
            devices.setdefault(
                address,
                Device(user_id=user_id, kind="webpush", address=address, subscription=subscription),
            )
    Device.objects.bulk_create(list(devices.values()), batch_size=1000, ignore_conflicts=True)


class Migration(migrations.Migration):
    dependencies = [
        ("deliveries", "0008_st_campaigns_batch_jobs_moved"),
        ("users", "0002_eng_devices_registry"),
    ]

    operations = [migrations.RunPython(copy_tokens, migrations.RunPython.noop)]
