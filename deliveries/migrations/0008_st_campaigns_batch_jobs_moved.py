"""Batch jobs and their chunk ledger now belong to ``campaigns`` (its 0001): removed from
``deliveries``' model state only; the tables stay (no SQL)."""

from django.db import migrations


class Migration(migrations.Migration):

    dependencies = [
        ('deliveries', '0007_api_idempotency_keys'),
        ('campaigns', '0001_st_campaigns_initial'),
        ('invitations', '0004_st_campaigns_batch_job_fk'),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            state_operations=[
                migrations.DeleteModel(
                    name='BatchChunk',
                ),
                migrations.DeleteModel(
                    name='NotificationBatchJob',
                ),
            ],
            database_operations=[],
        ),
    ]
