"""The shipped workflows (data, written by the data migration ``0003_wf_catalogue_workflows``):
auctions wire their catalogue events to them by trigger key.

* ``outbid`` — a digest per auction: every outbid notice for one user and auction within
  5 minutes becomes one in-app + email message listing the bids.
* ``auction_ending`` — an escalation: in-app (and an ``ack_required`` real-time event)
  first; email if not read or acked within 2 minutes; SMS a minute after that.
"""

from __future__ import annotations

from typing import Any

CATALOGUE_WORKFLOWS: dict[str, dict[str, Any]] = {
    "outbid": {
        "name": "Outbid digest (per auction)",
        "steps": [
            {
                "type": "digest",
                "window": "5m",
                "key": "auction_id",
                "item": "Your {{ amount }} bid was beaten",
                "max_items": 50,
            },
            {
                "type": "channel",
                "channels": ["in_app", "email"],
                "title": "You've been outbid ({{ digest_count }})",
                "message": "New bids beat yours:\n{{ digest_items }}",
                "category": "bid",
                "priority": "high",
            },
        ],
    },
    "auction_ending": {
        "name": "Auction ending (in-app, then email, then SMS)",
        "steps": [
            {
                "type": "escalate",
                "in_app": {"template": "auction_ending"},
                "email_after": "2m",
                "email": {"template": "auction_ending"},
                "sms_after": "1m",
                "sms": {"template": "auction_ending"},
                "ack_required": True,
            }
        ],
    },
}
