"""notifications.in_inbox: the inbox (and its unread count) read one table, index-only.

A notification is in the inbox once its in_app delivery is sent or delivered. A trigger on
notification_deliveries keeps the flag, so every path that sends or edits a delivery (the
single and the batch sender, receipts, admin edits, raw SQL) keeps it true, without a join
on every inbox read. The WHEN clause is evaluated per row in C: rows of other channels, and
updates that leave the status on the same side of sent/delivered, never call the function.
"""

import notifyplatform.db
from django.conf import settings
from django.db import migrations, models

SYNC_IN_INBOX = """
CREATE FUNCTION notifications_sync_in_inbox() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    UPDATE notifications
       SET in_inbox = NEW.status IN ('sent', 'delivered')
     WHERE notification_id = NEW.notification_id
       AND in_inbox IS DISTINCT FROM (NEW.status IN ('sent', 'delivered'));
    RETURN NULL;
END
$$;

CREATE TRIGGER notification_deliveries_in_inbox_insert
AFTER INSERT ON notification_deliveries
FOR EACH ROW
WHEN (NEW.delivery_type = 'in_app' AND NEW.notification_id IS NOT NULL
      AND NEW.status IN ('sent', 'delivered'))
EXECUTE FUNCTION notifications_sync_in_inbox();

CREATE TRIGGER notification_deliveries_in_inbox_update
AFTER UPDATE OF status ON notification_deliveries
FOR EACH ROW
WHEN (NEW.delivery_type = 'in_app' AND NEW.notification_id IS NOT NULL
      AND (NEW.status IN ('sent', 'delivered')) IS DISTINCT FROM
          (OLD.status IN ('sent', 'delivered')))
EXECUTE FUNCTION notifications_sync_in_inbox();

UPDATE notifications n SET in_inbox = true
 WHERE EXISTS (SELECT 1 FROM notification_deliveries d
                WHERE d.notification_id = n.notification_id AND d.delivery_type = 'in_app'
                  AND d.status IN ('sent', 'delivered'));
"""

DROP_SYNC_IN_INBOX = """
DROP TRIGGER IF EXISTS notification_deliveries_in_inbox_update ON notification_deliveries;
DROP TRIGGER IF EXISTS notification_deliveries_in_inbox_insert ON notification_deliveries;
DROP FUNCTION IF EXISTS notifications_sync_in_inbox();
"""


class Migration(migrations.Migration):

    dependencies = [
        ('auctions', '0002_initial'),
        ('deliveries', '0003_batch_chunks'),
        ('templates', '0002_catalog'),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        migrations.RemoveIndex(
            model_name='notification',
            name='idx_notifications_inbox_unread',
        ),
        migrations.AddField(
            model_name='notification',
            name='in_inbox',
            field=models.BooleanField(db_default=False, default=False, editable=False, help_text="Its in-app delivery was sent: it shows in the user's inbox"),
        ),
        migrations.RunSQL(SYNC_IN_INBOX, reverse_sql=DROP_SYNC_IN_INBOX),
        migrations.AddIndex(
            model_name='notification',
            index=notifyplatform.db.SeedIndex(condition=models.Q(('in_inbox', True), ('is_archived', False)), fields=['user', '-created_at'], name='idx_notifications_inbox'),
        ),
        migrations.AddIndex(
            model_name='notification',
            index=notifyplatform.db.SeedIndex(condition=models.Q(('in_inbox', True), ('is_archived', False), ('is_read', False)), fields=['user', '-created_at'], name='idx_notifications_inbox_unread'),
        ),
    ]
