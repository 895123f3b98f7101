"""The three analytics views of seed 000.

Differences from the seed's text, each deliberate:
- ``invitation_conversion_funnel`` divides by counts that can be zero; NULLIF makes
  those rates NULL instead of raising ``division by zero``.
- The funnel counts invitations, not joined history rows: the seed's ``COUNT(*)``
  over ``story_invitations LEFT JOIN user_invitation_history`` counts an invitation
  once per history row, so an invitation viewed twice inflated every figure. Here each
  stage counts DISTINCT invitations that reached it.
- Each view that has no single-column key exposes a synthetic ``id`` so Django can
  read it through an unmanaged model; the seed's columns are all present.
"""

from django.db import migrations

USER_INVITATION_SUMMARY = """
CREATE OR REPLACE VIEW user_invitation_summary AS
SELECT
  u.id AS user_id,
  u.email,
  COUNT(CASE WHEN ih.action = 'sent' THEN 1 END) AS invitations_sent,
  COUNT(CASE WHEN ih.action = 'received' THEN 1 END) AS invitations_received,
  COUNT(CASE WHEN ih.action = 'accepted' THEN 1 END) AS invitations_accepted,
  COUNT(CASE WHEN ih.action = 'declined' THEN 1 END) AS invitations_declined,
  COUNT(CASE WHEN ih.action = 'expired' THEN 1 END) AS invitations_expired,
  ROUND(COUNT(CASE WHEN ih.action = 'accepted' THEN 1 END)::decimal /
    NULLIF(COUNT(CASE WHEN ih.action = 'received' THEN 1 END), 0) * 100, 2) AS acceptance_rate,
  MAX(ih.action_timestamp) AS last_activity
FROM users u
LEFT JOIN user_invitation_history ih ON u.id = ih.user_id
GROUP BY u.id, u.email
"""

PROVIDER_PERFORMANCE_SUMMARY = """
CREATE OR REPLACE VIEW provider_performance_summary AS
SELECT
  nd.provider_name || ':' || nd.provider_type AS id,
  nd.provider_name,
  nd.provider_type,
  COUNT(*) AS total_deliveries,
  COUNT(CASE WHEN nd.status = 'delivered' THEN 1 END) AS successful_deliveries,
  COUNT(CASE WHEN nd.status = 'failed' THEN 1 END) AS failed_deliveries,
  ROUND(COUNT(CASE WHEN nd.status = 'delivered' THEN 1 END)::decimal
    / NULLIF(COUNT(*), 0) * 100, 2) AS success_rate,
  AVG(nd.cost_per_message) AS avg_cost_per_message,
  SUM(nd.cost_per_message) AS total_cost,
  MIN(nd.sent_at) AS first_delivery,
  MAX(nd.sent_at) AS last_delivery
FROM notification_deliveries nd
WHERE nd.sent_at IS NOT NULL
GROUP BY nd.provider_name, nd.provider_type
"""

INVITATION_CONVERSION_FUNNEL = """
CREATE OR REPLACE VIEW invitation_conversion_funnel AS
SELECT
  COALESCE(si.invitation_type, '') || ':' || COALESCE(si.conversation_style, '') AS id,
  si.invitation_type,
  si.conversation_style,
  COUNT(DISTINCT si.id) AS total_invitations,
  COUNT(DISTINCT CASE WHEN ih.action = 'sent' THEN si.id END) AS invitations_sent,
  COUNT(DISTINCT CASE WHEN ih.action = 'viewed' THEN si.id END) AS invitations_viewed,
  COUNT(DISTINCT CASE WHEN ih.action = 'accepted' THEN si.id END) AS invitations_accepted,
  ROUND(COUNT(DISTINCT CASE WHEN ih.action = 'viewed' THEN si.id END)::decimal /
    NULLIF(COUNT(DISTINCT CASE WHEN ih.action = 'sent' THEN si.id END), 0) * 100, 2) AS view_rate,
  ROUND(COUNT(DISTINCT CASE WHEN ih.action = 'accepted' THEN si.id END)::decimal /
    NULLIF(COUNT(DISTINCT CASE WHEN ih.action = 'viewed' THEN si.id END), 0) * 100, 2)
    AS conversion_rate
FROM story_invitations si
LEFT JOIN user_invitation_history ih ON si.id = ih.invitation_id
GROUP BY si.invitation_type, si.conversation_style
"""


class Migration(migrations.Migration):
    dependencies = [
        ("invitations", "0002_initial"),
        ("deliveries", "0002_initial"),
        ("users", "0001_initial"),
    ]

    operations = [
        migrations.RunSQL(USER_INVITATION_SUMMARY, "DROP VIEW IF EXISTS user_invitation_summary"),
        migrations.RunSQL(
            PROVIDER_PERFORMANCE_SUMMARY, "DROP VIEW IF EXISTS provider_performance_summary"
        ),
        migrations.RunSQL(
            INVITATION_CONVERSION_FUNNEL, "DROP VIEW IF EXISTS invitation_conversion_funnel"
        ),
    ]
