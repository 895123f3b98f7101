"""The data migration that copies preference-row push tokens into the device registry,
run on a real database migrated back to just before it."""

from __future__ import annotations

import pytest
from django.db import connection
from django.db.migrations.executor import MigrationExecutor

BEFORE = [
    ("deliveries", "0008_st_campaigns_batch_jobs_moved"),
    ("users", "0002_eng_devices_registry"),
]
AFTER = [("deliveries", "0009_eng_devices_copy_preference_tokens")]


@pytest.fixture
def back_to_the_latest_schema():
    """Migrating back unapplies every later migration too (suppressions, …): the rest of
    this process's tests need the whole schema back."""
    yield
    executor = MigrationExecutor(connection)
    executor.loader.build_graph()
    executor.migrate(executor.loader.graph.leaf_nodes())


@pytest.mark.django_db(transaction=True)
def test_preference_tokens_are_copied_into_the_registry(back_to_the_latest_schema):
    executor = MigrationExecutor(connection)
    executor.migrate(BEFORE)
    apps = executor.loader.project_state(BEFORE).apps
    user_model = apps.get_model("users", "User")
    pref_model = apps.get_model("deliveries", "UserNotificationPreference")
    device_model = apps.get_model("users", "Device")
    alice = user_model.objects.create(email="alice@example.test")
    bob = user_model.objects.create(email="bob@example.test")
    subscription = {
        "endpoint": "https://push.example.test/s/1",
        "keys": {"p256dh": "p", "auth": "a"},
    }
    device_model.objects.create(user=bob, kind="fcm", address="tok-bob")
    for user, type_name, prefs in [
        (alice, "*", {"device_token": "tok-alice"}),
        (alice, "outbid", {"push_subscription": subscription}),
        (bob, "*", {"device_token": "tok-bob"}),  # already registered: left as it is
        (bob, "outbid", {"push_subscription": {"endpoint": "https://x.test/no-keys"}}),
        (bob, "won", {"quiet": True}),
    ]:
        pref_model.objects.create(
            user=user, invitation_type=type_name, delivery_method="push", delivery_preferences=prefs
        )
    pref_model.objects.create(
        user=alice,
        invitation_type="*",
        delivery_method="email",
        delivery_preferences={"device_token": "not-push"},
    )

    executor = MigrationExecutor(connection)
    executor.migrate(AFTER)

    apps = executor.loader.project_state(AFTER).apps
    device_model = apps.get_model("users", "Device")
    rows = sorted(
        device_model.objects.values_list("address", "kind", "user__email", "subscription")
    )
    assert rows == [
        ("https://push.example.test/s/1", "webpush", "alice@example.test", subscription),
        ("tok-alice", "fcm", "alice@example.test", None),
        ("tok-bob", "fcm", "bob@example.test", None),
    ]
