"""``story_invitations.batch_job_id`` now points at ``campaigns.NotificationBatchJob``: the
same table, so the foreign key constraint stays as it is (state only, no SQL)."""

import django.db.models.deletion
from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ('campaigns', '0001_st_campaigns_initial'),
        ('invitations', '0003_analytics_views'),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            state_operations=[
                migrations.AlterField(
                    model_name='storyinvitation',
                    name='batch_job',
                    field=models.ForeignKey(blank=True, null=True, on_delete=django.db.models.deletion.SET_NULL, related_name='invitations', to='campaigns.notificationbatchjob'),
                ),
            ],
            database_operations=[],
        ),
    ]
