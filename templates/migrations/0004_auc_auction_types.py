"""Ship the catalogue's auction types beyond seed 004 (bid_confirmed, proxy_bid_exceeded,
auction_price_dropped, auction_dropped_out, auction_drawn, auction_payment_due,
auction_cancelled, underbid) to databases that applied 0002 before they existed. Rows are only
created when missing."""

from django.db import migrations

NEW_TYPES = (
    "bid_confirmed", "proxy_bid_exceeded", "auction_price_dropped", "auction_dropped_out",
    "auction_drawn", "auction_payment_due", "auction_cancelled", "underbid",
)


def forwards(apps, schema_editor):
    from templates.catalog import catalogue_rows

    NotificationTemplate = apps.get_model("templates", "NotificationTemplate")
    existing = set(NotificationTemplate.objects.values_list("template_key", flat=True))
    NotificationTemplate.objects.bulk_create(
        [
            NotificationTemplate(**row)
            for row in catalogue_rows()
            if row["invitation_type"] in NEW_TYPES and row["template_key"] not in existing
        ]
    )


def backwards(apps, schema_editor):
    NotificationTemplate = apps.get_model("templates", "NotificationTemplate")
    NotificationTemplate.objects.filter(invitation_type__in=NEW_TYPES).delete()


class Migration(migrations.Migration):
    dependencies = [("templates", "0003_rich_template_rich_content")]

    operations = [migrations.RunPython(forwards, backwards)]
