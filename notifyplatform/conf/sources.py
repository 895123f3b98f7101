"""The event sources: auctions and invitations (reminders, abuse limits)."""

from __future__ import annotations

import os
from datetime import timedelta as _timedelta

from notifyplatform.conf.env import env_bool, env_int

# Watchers and bidders are warned once, this many seconds before an auction ends.
NP_AUCTION_ENDING_NOTICE_SECONDS = env_int("NP_AUCTION_ENDING_NOTICE_SECONDS", 300)
# Outbid notices go through the ``outbid`` digest workflow (one message per auction per
# window) and ending notices through the ``auction_ending`` escalation; 0 sends them
# directly, one notification per event, as before workflows.
NP_AUCTION_WORKFLOWS = env_bool("NP_AUCTION_WORKFLOWS", True)
# Invitations neither viewed nor answered after this long get a reminder (on beat, and by
# reminder batch jobs).

NP_INVITATION_REMINDER_AFTER = _timedelta(
    seconds=env_int("NP_INVITATION_REMINDER_AFTER_SECONDS", 3 * 86400)
)
NP_INVITATION_MAX_REMINDERS = env_int("NP_INVITATION_MAX_REMINDERS", 2)
# Beat reminds due invitations and expires overdue ones (invitations.tasks), this many
# rows per run at most; the rest wait for the next run.
NP_INVITATION_BEAT_BATCH_SIZE = env_int("NP_INVITATION_BEAT_BATCH_SIZE", 1000)
# Abuse limits on invitations to new external recipients (addresses and numbers that are
# no user's and that the inviter never invited before), per inviter and fixed window, SMS
# stricter; and how many invitations one address or number may get a day from everyone
# (invitations.limits). 0 refuses every such invitation.
NP_INVITE_NEW_EMAIL_PER_HOUR = env_int("NP_INVITE_NEW_EMAIL_PER_HOUR", 20)
NP_INVITE_NEW_EMAIL_PER_DAY = env_int("NP_INVITE_NEW_EMAIL_PER_DAY", 50)
NP_INVITE_NEW_SMS_PER_HOUR = env_int("NP_INVITE_NEW_SMS_PER_HOUR", 5)
NP_INVITE_NEW_SMS_PER_DAY = env_int("NP_INVITE_NEW_SMS_PER_DAY", 10)
NP_INVITE_PER_DESTINATION_PER_DAY = env_int("NP_INVITE_PER_DESTINATION_PER_DAY", 3)
# Notifications about an auction link here ({base}: NP_PUBLIC_BASE_URL, {id}: the auction).
NP_AUCTION_URL = os.environ.get("NP_AUCTION_URL", "{base}/realtime/demo/?auction={id}")
