"""Ship the template catalogue (seed 004's auction events + the invitation types), English.

Rows are keyed by ``template_key`` and only created when missing, so re-running (or an admin
having edited a shipped template) never overwrites content. The rows come from
``templates.catalog`` as it stands when the migration runs; a later catalogue change needs
its own data migration to reach databases that already applied this one.
"""

from django.db import migrations


def forwards(apps, schema_editor):
    from templates.catalog import catalogue_rows

    NotificationTemplate = apps.get_model("templates", "NotificationTemplate")
    existing = set(NotificationTemplate.objects.values_list("template_key", flat=True))
    NotificationTemplate.objects.bulk_create(
        [NotificationTemplate(**row) for row in catalogue_rows() if row["template_key"] not in existing]
    )


def backwards(apps, schema_editor):
    from templates.catalog import catalogue_rows

    NotificationTemplate = apps.get_model("templates", "NotificationTemplate")
    NotificationTemplate.objects.filter(
        template_key__in=[row["template_key"] for row in catalogue_rows()]
    ).delete()


class Migration(migrations.Migration):
    dependencies = [("templates", "0001_initial")]

    operations = [migrations.RunPython(forwards, backwards)]
