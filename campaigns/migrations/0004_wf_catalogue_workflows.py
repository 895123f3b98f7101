"""The shipped workflows (campaigns.workflow_catalogue): ``outbid`` and ``auction_ending``."""

from django.db import migrations

from campaigns.workflow_catalogue import CATALOGUE_WORKFLOWS


def install(apps, schema_editor):
    Workflow = apps.get_model("campaigns", "Workflow")
    WorkflowVersion = apps.get_model("campaigns", "WorkflowVersion")
    for key, entry in CATALOGUE_WORKFLOWS.items():
        workflow, created = Workflow.objects.get_or_create(
            key=key, defaults={"name": entry["name"], "is_active": True}
        )
        if created:
            WorkflowVersion.objects.create(workflow=workflow, version=1, steps=entry["steps"])


def uninstall(apps, schema_editor):
    Workflow = apps.get_model("campaigns", "Workflow")
    Workflow.objects.filter(key__in=list(CATALOGUE_WORKFLOWS), runs__isnull=True).delete()


class Migration(migrations.Migration):
    dependencies = [("campaigns", "0003_wf_workflows")]
    operations = [migrations.RunPython(install, uninstall)]
