"""Batch jobs move from ``deliveries`` to ``campaigns``: the same two tables
(``notification_batch_jobs``, ``notification_batch_chunks``), so this only changes Django's
model state (``SeparateDatabaseAndState``, no SQL). The content types move with them, so
permissions granted on batch jobs and the admin's history of them stay attached."""

import django.db.models.deletion
import notifyplatform.db
from django.db import migrations, models

MODELS = ("notificationbatchjob", "batchchunk")


def _move_content_types(apps, schema_editor, source="deliveries", target="campaigns"):
    content_type = apps.get_model("contenttypes", "ContentType")
    taken = set(
        content_type.objects.filter(app_label=target, model__in=MODELS).values_list(
            "model", flat=True
        )
    )
    content_type.objects.filter(app_label=source, model__in=MODELS).exclude(
        model__in=taken
    ).update(app_label=target)


def _move_content_types_back(apps, schema_editor):
    _move_content_types(apps, schema_editor, source="campaigns", target="deliveries")


class Migration(migrations.Migration):

    initial = True

    dependencies = [
        ('contenttypes', '0002_remove_content_type_name'),
        ('deliveries', '0007_api_idempotency_keys'),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            state_operations=[
                migrations.CreateModel(
                    name='NotificationBatchJob',
                    fields=[
                        ('id', models.AutoField(primary_key=True, serialize=False)),
                        ('job_name', models.CharField(max_length=255)),
                        ('job_type', models.CharField(choices=[('invitation_batch', 'Invitation batch'), ('reminder_batch', 'Reminder batch'), ('cleanup_batch', 'Cleanup batch')], max_length=50)),
                        ('invitation_type', models.CharField(blank=True, max_length=50, null=True)),
                        ('status', models.CharField(choices=[('pending', 'Pending'), ('running', 'Running'), ('completed', 'Completed'), ('failed', 'Failed'), ('cancelled', 'Cancelled')], default='pending', max_length=20)),
                        ('total_notifications', models.IntegerField(db_default=0, default=0)),
                        ('processed_notifications', models.IntegerField(db_default=0, default=0)),
                        ('successful_notifications', models.IntegerField(db_default=0, default=0)),
                        ('failed_notifications', models.IntegerField(db_default=0, default=0)),
                        ('job_config', models.JSONField(blank=True, null=True)),
                        ('error_summary', models.TextField(blank=True, null=True)),
                        ('started_at', models.DateTimeField(blank=True, null=True)),
                        ('completed_at', models.DateTimeField(blank=True, null=True)),
                        ('created_at', models.DateTimeField(db_default=notifyplatform.db.Now(), editable=False)),
                        ('updated_at', models.DateTimeField(auto_now=True, db_default=notifyplatform.db.Now())),
                    ],
                    options={
                        'db_table': 'notification_batch_jobs',
                        'ordering': ['-created_at'],
                        'indexes': [notifyplatform.db.SeedIndex(fields=['status'], name='idx_notification_batch_jobs_status'), notifyplatform.db.SeedIndex(fields=['job_type'], name='idx_notification_batch_jobs_type'), notifyplatform.db.SeedIndex(fields=['started_at'], name='idx_notification_batch_jobs_started')],
                        'constraints': [models.CheckConstraint(condition=models.Q(('job_type__in', ['invitation_batch', 'reminder_batch', 'cleanup_batch'])), name='notification_batch_jobs_type_valid'), models.CheckConstraint(condition=models.Q(('status__in', ['pending', 'running', 'completed', 'failed', 'cancelled'])), name='notification_batch_jobs_status_valid')],
                    },
                ),
                migrations.CreateModel(
                    name='BatchChunk',
                    fields=[
                        ('id', models.BigAutoField(primary_key=True, serialize=False)),
                        ('index', models.IntegerField(help_text="Position of the chunk in the job's ordered audience")),
                        ('item_ids', models.JSONField(help_text='User ids, invitation ids or cleanup step names')),
                        ('status', models.CharField(choices=[('pending', 'Pending'), ('done', 'Done')], default='pending', max_length=20)),
                        ('processed', models.IntegerField(default=0)),
                        ('successful', models.IntegerField(default=0)),
                        ('failed', models.IntegerField(default=0)),
                        ('error_counts', models.JSONField(blank=True, help_text='{"CODE": {"count": n, "message": "..."}}', null=True)),
                        ('attempts', models.IntegerField(default=0)),
                        ('last_error', models.TextField(blank=True, null=True)),
                        ('finished_at', models.DateTimeField(blank=True, null=True)),
                        ('created_at', models.DateTimeField(db_default=notifyplatform.db.Now(), editable=False)),
                        ('updated_at', models.DateTimeField(auto_now=True, db_default=notifyplatform.db.Now())),
                        ('job', models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, related_name='chunks', to='campaigns.notificationbatchjob')),
                    ],
                    options={
                        'db_table': 'notification_batch_chunks',
                        'ordering': ['id'],
                        'indexes': [models.Index(condition=models.Q(('status', 'pending')), fields=['job', 'index'], name='batch_chunks_unfinished')],
                        'constraints': [models.UniqueConstraint(fields=('job', 'index'), name='batch_chunks_job_index_uniq')],
                    },
                ),
            ],
            database_operations=[],
        ),
        migrations.RunPython(_move_content_types, _move_content_types_back),
    ]
