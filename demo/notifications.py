"""Demo notifications with deliveries in every status, each with the reason it is there
(provider error codes, the preference that skipped it), plus invitation deliveries."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from deliveries.models import ApiIdempotencyKey, Notification, NotificationDelivery, Suppression
from deliveries.services.idempotency import request_fingerprint
from invitations.models import StoryInvitation
from templates.models import NotificationTemplate
from users.models import User

from .base import Seeder, seed_uuid


def seed_notifications(s: Seeder) -> None:
    u = s.users
    english = s.auctions["english-seamaster"]
    lamp = s.auctions["english-lamp"]
    penny = s.auctions["penny-ipad"]
    opt_out = s.preferences[(u["dave"].email, "news_feed", "email")]

    def notification(key: str, user: User, **fields: Any) -> Notification:
        fields.setdefault("category", "bid")
        fields.setdefault("priority", "normal")
        fields.setdefault("notification_type", fields["delivery_channels"][0])
        return s.get(
            Notification,
            id=seed_uuid(f"notification:{key}"),
            defaults={"user": user, "idempotency_key": f"demo:{key}", **fields},
        )

    def delivery(
        note: Notification | None,
        channel: str,
        status: str,
        invitation: StoryInvitation | None = None,
        **fields: Any,
    ) -> None:
        user = note.user if note else invitation.invitee_user  # type: ignore[union-attr]
        recipient, rtype = {
            "email": (
                getattr(user, "email", None) or getattr(invitation, "invitee_email", ""),
                "email",
            ),
            "sms": (getattr(user, "phone", ""), "phone"),
            "push": (f"fcm:demo-device-{getattr(user, 'pk', 'x')}", "device_token"),
            "webhook": ("https://hooks.example.com/notify", "webhook"),
            "in_app": (str(getattr(user, "pk", "")), "user"),
        }[channel]
        provider = fields.pop("provider", "")
        defaults = {
            "provider_type": channel,
            "provider_name": provider,
            "provider_priority": fields.pop("priority", 10 if provider else 0),
            "recipient_type": rtype,
            "status": status,
            "geographic_region": getattr(user, "region", None),
            **fields,
        }
        s.get(
            NotificationDelivery,
            notification=note,
            invitation=invitation,
            delivery_type=channel,
            recipient=recipient,
            defaults=defaults,
        )

    def sent(minutes_ago: float, provider: str, cost: str, **extra: Any) -> dict[str, Any]:
        return {
            "provider": provider,
            "sent_at": s.ago(minutes=minutes_ago),
            "cost_per_message": Decimal(cost),
            "provider_message_id": f"demo-{provider}-{int(minutes_ago * 60)}",
            "provider_response": {
                "id": f"demo-{provider}-{int(minutes_ago * 60)}",
                "accepted": True,
            },
            **extra,
        }

    # 1. Bob was outbid on the Seamaster: in-app and email both delivered.
    n1 = notification(
        "outbid-bob",
        u["bob"],
        event_type="outbid",
        priority="high",
        title="You've been outbid",
        auction=english,
        bid=s.bids["english-seamaster:2"],
        message="Someone bid higher than your $110.00 bid",
        template=NotificationTemplate.objects.filter(template_key="outbid.email.en").first(),
        template_data={"amount": "$110.00"},
        delivery_channels=["in_app", "email"],
        status="delivered",
        sent_at=s.ago(minutes=50),
        delivered_at=s.ago(minutes=49),
        action_url=f"/auctions/{english.pk}",
        action_label="Bid again",
    )
    delivery(n1, "in_app", "delivered", **sent(50, "in-app", "0"), delivered_at=s.ago(minutes=50))
    delivery(
        n1,
        "email",
        "delivered",
        **sent(50, "smtp-local", "0"),
        delivered_at=s.ago(minutes=49),
    )

    # 2. Carol outbid: email sent (no receipt yet), SMS failed permanently.
    n2 = notification(
        "outbid-carol",
        u["carol"],
        event_type="outbid",
        priority="high",
        title="You've been outbid",
        auction=english,
        message="Someone bid higher than your $125.00 bid",
        delivery_channels=["email", "sms"],
        status="sent",
        sent_at=s.ago(minutes=45),
        delivery_attempts=1,
    )
    delivery(n2, "email", "sent", **sent(45, "mailgun", "0.000800", priority=20))
    # as if Sam's shop had sent it through the API with an Idempotency-Key (kept per caller)
    request = {
        "user_id": str(u["carol"].pk),
        "template_key": "outbid",
        "channels": ["email", "sms"],
    }
    s.get(
        ApiIdempotencyKey,
        scope=f"user:{u['sam'].pk}",
        key="outbid-carol-125",
        defaults={
            "fingerprint": request_fingerprint(
                method="POST", path="/api/v1/notifications/", body=request
            ),
            "notification_id": n2.pk,
            "created_at": s.ago(minutes=45),
        },
    )
    delivery(
        n2,
        "sms",
        "failed",
        provider="twilio",
        failed_at=s.ago(minutes=45),
        error_code="INVALID_RECIPIENT",
        error_message="The 'To' number is not a valid mobile number.",
        provider_response={"code": 21211, "status": 400},
    )

    # 3. Alice: auction ending soon, email waiting for its slot, push in flight.
    n3 = notification(
        "ending-alice",
        u["alice"],
        event_type="auction_ending",
        category="auction",
        title="Auction ending soon",
        auction=english,
        message="1962 Omega Seamaster ends in 2 hours",
        delivery_channels=["email", "push"],
        scheduled_at=s.ahead(hours=1),
    )
    delivery(n3, "email", "pending", scheduled_at=s.ahead(hours=1), expires_at=s.ahead(days=2))
    delivery(n3, "push", "sending", provider="fcm", scheduled_at=s.ago(seconds=5))

    # 4. The seller's new-bid email bounced.
    n4 = notification(
        "new-bid-sam",
        u["sam"],
        event_type="new_bid",
        title="New bid",
        auction=english,
        message="Alice bid $140.00 on Omega Seamaster",
        delivery_channels=["email"],
        status="failed",
        error_message="hard bounce",
    )
    delivery(
        n4,
        "email",
        "bounced",
        **sent(40, "mailgun", "0.000800", priority=20),
        failed_at=s.ago(minutes=39),
        error_code="HARD_BOUNCE",
        error_message="550 5.1.1 mailbox unavailable",
    )

    # 5. Dave marked a marketing email as spam.
    n5 = notification(
        "promo-dave",
        u["dave"],
        event_type="promotion",
        category="marketing",
        priority="low",
        title="Spring auctions are live",
        message="Twenty new lots this week.",
        delivery_channels=["email"],
        status="delivered",
        is_read=True,
        read_at=s.ago(hours=20),
    )
    delivery(
        n5,
        "email",
        "complained",
        **sent(1440, "mailgun", "0.000800", priority=20),
        delivered_at=s.ago(hours=23),
        error_code="SPAM_COMPLAINT",
    )

    # The bounce put Sam's address on the suppression list; staff lifted it (he fixed his
    # mailbox), so the row stays as history and his email is sent again.
    bounced = NotificationDelivery.objects.get(notification=n4, delivery_type="email")
    s.get(
        Suppression,
        channel="email",
        address=bounced.recipient.lower(),
        reason="hard_bounce",
        defaults={
            "delivery_id": bounced.pk,
            "receipt": {"provider": "mailgun", "event": "failed", "status": "bounced"},
            "lifted_at": s.ago(minutes=30),
        },
    )

    # 6. Erin: the penny auction's start SMS expired before a provider took it.
    n6 = notification(
        "started-erin",
        u["erin"],
        event_type="auction_started",
        category="auction",
        title="Auction started",
        auction=penny,
        message="iPad Air (penny auction) has started",
        delivery_channels=["sms"],
        status="failed",
        expires_at=s.ago(hours=2),
        error_message="expired",
    )
    delivery(
        n6,
        "sms",
        "expired",
        expires_at=s.ago(hours=2),
        failed_at=s.ago(hours=2),
        error_code="EXPIRED",
        retry_count=3,
    )

    # 7. A news email to Dave was skipped: he opted out. The decision is kept.
    n7 = notification(
        "news-dave",
        u["dave"],
        event_type="news_feed",
        category="invitation",
        title="New article for you",
        message="Record heat across Europe",
        delivery_channels=["email", "in_app"],
        status="delivered",
    )
    delivery(
        n7,
        "email",
        "skipped",
        error_code="OPTED_OUT",
        delivery_metadata={
            "decision": {
                "rule": "OPTED_OUT",
                "preference_id": opt_out.pk,
                "detail": "news_feed/email disabled by user",
            }
        },
    )
    delivery(n7, "in_app", "delivered", **sent(30, "in-app", "0"), delivered_at=s.ago(minutes=30))

    # 8. The lamp's ending reminder was cancelled when the auction closed early.
    n8 = notification(
        "ending-lamp-alice",
        u["alice"],
        event_type="auction_ending",
        category="auction",
        title="Auction ending soon",
        auction=lamp,
        message="Art deco table lamp ends in 1 hour",
        delivery_channels=["webhook"],
        status="cancelled",
    )
    delivery(
        n8,
        "webhook",
        "cancelled",
        provider="webhook",
        delivery_metadata={"cancelled_by": "auction_completed"},
    )

    # 9. Carol won the lamp: read and clicked in the inbox.
    notification(
        "won-carol",
        u["carol"],
        event_type="auction_ended",
        category="auction",
        title="You won!",
        auction=lamp,
        message="You won Art deco table lamp for $85",
        delivery_channels=["in_app"],
        status="clicked",
        is_read=True,
        read_at=s.ago(hours=20),
        clicked_at=s.ago(hours=20),
    )

    # Invitation deliveries (no notification row): the accepted and the pending one.
    accepted, _, pending = s.invitations[:3]
    delivery(
        None,
        "email",
        "delivered",
        invitation=accepted,
        **sent(4000, "smtp-local", "0"),
        delivered_at=s.ago(minutes=3999),
    )
    delivery(None, "email", "pending", invitation=pending, scheduled_at=s.ago(minutes=1))
