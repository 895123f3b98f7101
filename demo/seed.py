"""The demo data set loaded by ``manage.py seed_demo``.

Every row is found by a natural key (an email, a title, a provider name, a
deterministic UUID) and only created when missing, so running it again creates
nothing. Rows are written straight through the ORM: nothing is sent and no pipeline
code runs, so the data set does not depend on which features are installed.
Existing rows are not overwritten, except the demo providers' definition (type,
class, priority, cost, configuration), which follows ``accounts.provider_definitions``.
"""

from __future__ import annotations

from django.db import transaction

from . import accounts, activity, content, notifications
from .auctions import seed_auction_types
from .base import DEMO_PASSWORD, Seeder

__all__ = ["DEMO_PASSWORD", "Seeder", "seed_demo"]


@transaction.atomic
def seed_demo() -> Seeder:
    """Load the demo data set; the returned seeder counts what was created and found."""
    s = Seeder()
    accounts.seed_users(s)
    accounts.seed_devices(s)
    accounts.seed_providers(s)
    accounts.seed_templates(s)
    content.seed_stories_and_invitations(s)
    activity.seed_auctions(s)
    seed_auction_types(s)  # one running auction of each of the 13 types
    accounts.seed_preferences(s)
    notifications.seed_notifications(s)
    activity.seed_batch_jobs(s)
    activity.seed_realtime(s)
    activity.seed_retention_runs(s)
    return s
