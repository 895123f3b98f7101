"""Ship the catalogue's inviter outcome types (invitation_accepted / _declined / _expired)
to databases that applied 0002 before they existed; rows already there are kept."""

from django.db import migrations

TYPES = ("invitation_accepted", "invitation_declined", "invitation_expired")


def forwards(apps, schema_editor):
    from templates.catalog import catalogue_rows

    NotificationTemplate = apps.get_model("templates", "NotificationTemplate")
    existing = set(NotificationTemplate.objects.values_list("template_key", flat=True))
    NotificationTemplate.objects.bulk_create(
        [
            NotificationTemplate(**row)
            for row in catalogue_rows()
            if row["invitation_type"] in TYPES and row["template_key"] not in existing
        ]
    )


def backwards(apps, schema_editor):
    NotificationTemplate = apps.get_model("templates", "NotificationTemplate")
    NotificationTemplate.objects.filter(invitation_type__in=TYPES).delete()


class Migration(migrations.Migration):
    dependencies = [("templates", "0004_auc_auction_types")]

    operations = [migrations.RunPython(forwards, backwards)]
