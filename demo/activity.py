"""Demo auctions with items, bids and watchers; batch jobs in every status; websocket
connections and real-time events (sequence numbers drawn by the database)."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal
from typing import Any

from auctions.models import Auction, AuctionItem, AuctionWatcher, Bid
from campaigns.models import BatchChunk, NotificationBatchJob
from deliveries.models import RetentionRun
from realtime.models import RealTimeEvent, WebsocketConnection

from .base import Seeder, seed_uuid


def seed_auctions(s: Seeder) -> None:
    u = s.users
    seller = u["sam"]
    specs: list[dict[str, Any]] = [
        {
            "key": "english-seamaster",
            "title": "1962 Omega Seamaster",
            "auction_type": "english",
            "status": "active",
            "starting_price": Decimal("100"),
            "min_increment": Decimal("5"),
            "reserve_price": Decimal("150"),
            "starts_at": s.ago(days=1),
            "ends_at": s.ahead(days=2),
            "item": "Omega Seamaster ref. 165.002",
            "bids": [
                ("bob", "110", "outbid"),
                ("carol", "125", "outbid"),
                ("alice", "140", "leading"),
            ],
            "watchers": ["alice", "bob", "carol"],
        },
        {
            "key": "penny-ipad",
            "title": "iPad Air (penny auction)",
            "auction_type": "penny",
            "status": "active",
            "starting_price": Decimal("0"),
            "bid_increment": Decimal("0.01"),
            "extension_seconds": 15,
            "starts_at": s.ago(hours=3),
            "ends_at": s.ahead(minutes=30),
            "item": "iPad Air 64 GB",
            "bids": [
                ("dave", "0.05", "outbid"),
                ("erin", "0.06", "outbid"),
                ("dave", "0.07", "leading"),
            ],
            "watchers": ["dave", "erin"],
        },
        {
            "key": "sealed-first-edition",
            "title": "Signed first edition, 'Dune'",
            "auction_type": "sealed_first_price",
            "status": "active",
            "starting_price": Decimal("200"),
            "starts_at": s.ago(days=2),
            "ends_at": s.ahead(days=1),
            "item": "Dune (1965), signed",
            "bids": [("bob", "300", "sealed"), ("erin", "280", "sealed")],
            "watchers": ["bob"],
        },
        {
            "key": "vickrey-leica",
            "title": "Leica M3 with Summicron 50mm",
            "auction_type": "vickrey",
            "status": "scheduled",
            "starting_price": Decimal("900"),
            "starts_at": s.ahead(days=1),
            "ends_at": s.ahead(days=3),
            "item": "Leica M3 (1956)",
            "bids": [],
            "watchers": ["carol"],
        },
        {
            "key": "english-lamp",
            "title": "Art deco table lamp",
            "auction_type": "english",
            "status": "completed",
            "starting_price": Decimal("50"),
            "min_increment": Decimal("5"),
            "starts_at": s.ago(days=7),
            "ends_at": s.ago(days=1),
            "item": "Brass and opal glass lamp, c. 1930",
            "winner": "carol",
            "bids": [("alice", "70", "lost"), ("carol", "85", "won")],
            "watchers": [],
        },
        {
            "key": "dutch-tulips",
            "title": "Tulip bulbs, 500 mixed (draft)",
            "auction_type": "dutch",
            "status": "draft",
            "starting_price": Decimal("400"),
            "starts_at": s.ahead(days=5),
            "ends_at": s.ahead(days=6),
            "item": "500 tulip bulbs",
            "bids": [],
            "watchers": [],
        },
    ]
    for spec in specs:
        spec = {**spec}
        key, item_title, bids = spec.pop("key"), spec.pop("item"), spec.pop("bids")
        watchers, winner = spec.pop("watchers"), spec.pop("winner", None)
        visible = [Decimal(a) for _, a, s in bids if s != "sealed"]
        auction = s.get(
            Auction,
            id=seed_uuid(f"auction:{key}"),
            defaults={
                **spec,
                "seller": seller,
                "bid_count": len(bids),
                "current_price": max(visible) if visible else None,
                "winner": u[winner] if winner else None,
                "final_price": max(visible) if winner else None,
                "description": f"Demo {spec['auction_type'].replace('_', ' ')} auction.",
            },
        )
        s.auctions[key] = auction
        item = s.get(
            AuctionItem,
            id=seed_uuid(f"item:{key}"),
            defaults={
                "auction": auction,
                "title": item_title,
                "metadata": {"condition": "very good", "ships_from": "Berlin"},
            },
        )
        for n, (bidder, amount, status) in enumerate(bids):
            s.bids[f"{key}:{n}"] = s.get(
                Bid,
                id=seed_uuid(f"bid:{key}:{n}"),
                defaults={
                    "auction": auction,
                    "item": item,
                    "bidder": u[bidder],
                    "amount": Decimal(amount),
                    "status": status,
                    "placed_at": auction.starts_at + timedelta(minutes=10 * (n + 1)),
                },
            )
        for name in watchers:
            s.get(AuctionWatcher, auction=auction, user=u[name])


def seed_batch_jobs(s: Seeder) -> None:
    jobs = [
        (
            "Weekly story reminders",
            "reminder_batch",
            "story_collaboration",
            "pending",
            (0, 0, 0, 0),
            None,
        ),
        (
            "News digest — morning",
            "invitation_batch",
            "news_feed",
            "running",
            (120, 64, 60, 4),
            None,
        ),
        (
            "Roleplay launch invitations",
            "invitation_batch",
            "roleplay_invitation",
            "completed",
            (40, 40, 39, 1),
            None,
        ),
        (
            "Expired invitation cleanup",
            "cleanup_batch",
            None,
            "failed",
            (500, 210, 210, 0),
            "database statement timeout after 210 rows",
        ),
        (
            "Holiday campaign",
            "invitation_batch",
            "news_feed",
            "cancelled",
            (1000, 0, 0, 0),
            None,
        ),
    ]
    chunks = {
        # job name -> [(index, status, processed, successful, failed, error_counts)]
        "News digest — morning": [
            (0, "done", 64, 60, 4, {"opt_out": 4}),
            (1, "pending", 0, 0, 0, {}),
        ],
        "Roleplay launch invitations": [(0, "done", 40, 39, 1, {"no_address": 1})],
    }
    recipients = [str(user.pk) for user in s.users.values()]
    for name, job_type, kind, status, (total, done, ok, bad), error in jobs:
        started = s.ago(hours=3) if status != "pending" else None
        job = s.get(
            NotificationBatchJob,
            job_name=name,
            defaults={
                "job_type": job_type,
                "invitation_type": kind,
                "status": status,
                "total_notifications": total,
                "processed_notifications": done,
                "successful_notifications": ok,
                "failed_notifications": bad,
                "error_summary": error,
                "started_at": started,
                "completed_at": s.ago(hours=2)
                if status in {"completed", "failed", "cancelled"}
                else None,
                "job_config": {
                    "channels": ["email", "in_app"],
                    "chunk_size": 500,
                    "segment": {"region": ["eu-west", "us-east"]},
                },
            },
        )
        for index, chunk_status, processed, successful, failed, errors in chunks.get(name, []):
            s.get(
                BatchChunk,
                job=job,
                index=index,
                defaults={
                    "item_ids": recipients,
                    "status": chunk_status,
                    "processed": processed,
                    "successful": successful,
                    "failed": failed,
                    "error_counts": errors,
                    "attempts": 1 if chunk_status == "done" else 0,
                    "finished_at": s.ago(hours=2) if chunk_status == "done" else None,
                },
            )


def seed_realtime(s: Seeder) -> None:
    u = s.users
    english = s.auctions["english-seamaster"]
    topic = f"auction.{english.pk}"
    for key, user, status, extra in [
        (
            "alice-laptop",
            u["alice"],
            "connected",
            {
                "last_heartbeat": s.ago(seconds=12),
                "messages_sent": 14,
                "messages_received": 3,
                "bytes_sent": 5120,
                "bytes_received": 640,
            },
        ),
        (
            "bob-phone",
            u["bob"],
            "disconnected",
            {
                "disconnected_at": s.ago(minutes=20),
                "disconnect_reason": "client_closed",
                "reconnect_count": 2,
                "last_heartbeat": s.ago(minutes=21),
            },
        ),
        ("carol-tablet", u["carol"], "connecting", {}),
        (
            "dave-desktop",
            u["dave"],
            "disconnecting",
            {
                "disconnect_reason": "heartbeat_timeout",
                "error_count": 1,
                "last_error": "no pong within 60s",
                "last_heartbeat": s.ago(minutes=2),
            },
        ),
    ]:
        s.get(
            WebsocketConnection,
            id=seed_uuid(f"ws:{key}"),
            defaults={
                "user": user,
                "session_id": f"demo-session-{key}",
                "socket_id": f"demo-socket-{key}",
                "connection_status": status,
                "client_ip": "198.51.100.7",
                "user_agent": "Mozilla/5.0 (demo)",
                "connected_at": s.ago(minutes=30),
                "subscriptions": [topic, f"user.{user.pk}"],
                "auction_subscriptions": [str(english.pk)],
                "device_info": {"platform": key.split("-")[1]},
                **extra,
            },
        )
    bid = s.bids["english-seamaster:2"]
    events: list[tuple[str, dict[str, Any]]] = [
        (
            "bid-placed",
            {
                "event_type": "bid_placed",
                "event_category": "bid",
                "visibility": "public",
                "auction": english,
                "bid": bid,
                "event_data": {"amount": "140.00", "bidder": "Alice A.", "bid_count": 3},
                "broadcast_channels": [topic],
            },
        ),
        (
            "outbid-bob",
            {
                "event_type": "outbid",
                "event_category": "bid",
                "visibility": "private",
                "user": u["bob"],
                "auction": english,
                "priority": "high",
                "ack_required": True,
                "event_data": {"amount": "110.00", "new_amount": "140.00"},
                "broadcast_channels": [f"user.{u['bob'].pk}"],
                "acknowledgments": {str(u["bob"].pk): s.ago(minutes=49).isoformat()},
            },
        ),
        (
            "ending-watchers",
            {
                "event_type": "auction_ending",
                "event_category": "auction",
                "visibility": "targeted",
                "auction": english,
                "target_audience": [str(u[n].pk) for n in ("alice", "carol")],
                "event_data": {"ends_in_seconds": 7200},
                "broadcast_channels": [topic],
            },
        ),
        (
            "maintenance",
            {
                "event_type": "maintenance_notice",
                "event_category": "system",
                "visibility": "authenticated",
                "priority": "low",
                "event_data": {"message": "Short maintenance Sunday 02:00 UTC"},
                "broadcast_channels": ["system"],
            },
        ),
    ]
    for n, (key, fields) in enumerate(events):
        generated = s.ago(minutes=50 - n)
        s.get(
            RealTimeEvent,
            id=seed_uuid(f"event:{key}"),
            defaults={
                "generated_at": generated,
                "published_at": generated,
                "correlation_id": f"demo-{key}",
                **fields,
            },
        )


def seed_retention_runs(s: Seeder) -> None:
    """Last night's retention pass, as beat's ``deliveries.apply_retention`` records it."""
    runs = [
        ("notifications", 90, 1840, 1),
        ("notification_deliveries", 90, 312, 1),
        ("websocket_connections", 30, 57, 1),
    ]
    for table, days, deleted, batches in runs:
        started = s.ago(hours=6)
        s.get(
            RetentionRun,
            defaults={
                "days": days,
                "cutoff": started - timedelta(days=days),
                "deleted": deleted,
                "batches": batches,
                "started_at": started,
                "finished_at": started + timedelta(seconds=2),
            },
            table_name=table,
        )
