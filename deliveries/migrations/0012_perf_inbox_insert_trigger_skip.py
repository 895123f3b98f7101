"""The inbox trigger on INSERT steps aside too when the transaction keeps ``in_inbox``
itself (``SET LOCAL notifyplatform.inbox_synced = 'on'``, as 0005 does for UPDATE).

``notify_many``'s in-app fast path writes a due in-app delivery already sent, and its
notification with ``in_inbox`` already set, in one COPY each; the trigger then found
nothing to change, but still ran its lookup for every row (a plpgsql call and an index
probe of notifications per delivery). Every other insert still has the trigger.
"""

from django.db import migrations

INSERT_TRIGGER = """
DROP TRIGGER notification_deliveries_in_inbox_insert ON notification_deliveries;
CREATE TRIGGER notification_deliveries_in_inbox_insert
AFTER INSERT ON notification_deliveries
FOR EACH ROW
WHEN (NEW.delivery_type = 'in_app' AND NEW.notification_id IS NOT NULL
      AND NEW.status IN ('sent', 'delivered')
      AND current_setting('notifyplatform.inbox_synced', true) IS DISTINCT FROM 'on')
EXECUTE FUNCTION notifications_sync_in_inbox();
"""

PREVIOUS_TRIGGER = """
DROP TRIGGER notification_deliveries_in_inbox_insert ON notification_deliveries;
CREATE TRIGGER notification_deliveries_in_inbox_insert
AFTER INSERT ON notification_deliveries
FOR EACH ROW
WHEN (NEW.delivery_type = 'in_app' AND NEW.notification_id IS NOT NULL
      AND NEW.status IN ('sent', 'delivered'))
EXECUTE FUNCTION notifications_sync_in_inbox();
"""


class Migration(migrations.Migration):
    dependencies = [("deliveries", "0011_esp_suppression_category")]

    operations = [migrations.RunSQL(INSERT_TRIGGER, reverse_sql=PREVIOUS_TRIGGER)]
