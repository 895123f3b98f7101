"""Demo stories, roleplay, news and invitations of every type with their history."""

from __future__ import annotations

import secrets
from datetime import datetime, timedelta

from invitations.models import (
    NewsArticle,
    NewsNarration,
    RoleplayCharacterRole,
    RoleplayTemplate,
    Story,
    StoryCharacter,
    StoryInvitation,
    UserInvitationHistory,
)
from users.models import User

from .base import Seeder, content_hash


def seed_stories_and_invitations(s: Seeder) -> None:
    u = s.users
    lighthouse = s.get(
        Story,
        owner=u["alice"],
        title="The Lighthouse Keeper",
        defaults={
            "genre": "mystery",
            "is_public": True,
            "synopsis": "A keeper, a storm and a ship that should not be there.",
        },
    )
    kyoto = s.get(
        Story,
        owner=u["bob"],
        title="Stars over Kyoto",
        defaults={
            "genre": "science fiction",
            "synopsis": "An android gardener learns what the old temple remembers.",
        },
    )
    characters = {}
    for story, name, voice, description in [
        (lighthouse, "Mara", "warm-alto", "The keeper, stubborn and kind"),
        (lighthouse, "Tobias", "gravel-baritone", "A smuggler who knows the reef"),
        (lighthouse, "Inspector Hale", "crisp-tenor", "Sent from the capital, too late"),
        (kyoto, "Aiko", "bright-soprano", "A botanist on her last season"),
        (kyoto, "Unit-7", "synthetic-calm", "The gardener"),
    ]:
        characters[name] = s.get(
            StoryCharacter,
            story=story,
            name=name,
            defaults={"voice_profile": voice, "description": description},
        )

    roleplay = s.get(
        RoleplayTemplate,
        story=lighthouse,
        template_name="Storm at the Lighthouse",
        defaults={
            "description": "Three voices, one night, one ship on the rocks.",
            "total_characters": 3,
            "estimated_duration_minutes": 40,
            "difficulty_level": "intermediate",
            "is_public": True,
            "created_by": u["alice"],
            "template_metadata": {"scenes": 4, "content_rating": "PG"},
        },
    )
    roles = {}
    for name, protagonist, emotions in [
        ("Mara", True, ["determined", "afraid", "tender"]),
        ("Tobias", False, ["sly", "guilty"]),
        ("Inspector Hale", False, ["stern", "surprised"]),
    ]:
        roles[name] = s.get(
            RoleplayCharacterRole,
            roleplay_template=roleplay,
            role_name=name,
            defaults={
                "character": characters[name],
                "is_protagonist": protagonist,
                "required_voice_emotions": emotions,
                "role_description": characters[name].description,
            },
        )

    articles = []
    for i, (title, summary, category, author, tags) in enumerate(
        [
            (
                "City council approves night-time tram service",
                "Trams will run every 20 minutes after midnight from next spring.",
                "local",
                "Priya Natarajan",
                ["transport", "city"],
            ),
            (
                "Record heat recorded across southern Europe",
                "Meteorologists expect the heatwave to last into next week.",
                "weather",
                "Jonas Weber",
                ["climate", "europe"],
            ),
            (
                "Open-source satellite sends first images",
                "A student-built cubesat has returned clear images of the Andes.",
                "science",
                "Lucía Romero",
                ["space", "open-source"],
            ),
        ]
    ):
        digest = content_hash(title, summary)
        articles.append(
            s.get(
                NewsArticle,
                content_hash=digest,
                defaults={
                    "title": title,
                    "summary": summary,
                    "category": category,
                    "author": author,
                    "tags": tags,
                    "language": "en",
                    "published_at": s.ago(hours=6 + 20 * i),
                    "reading_time_minutes": 3 + i,
                    "full_content": f"{summary}\n\n(Demo article body.)",
                    "source_url": f"https://news.example.com/{digest[:12]}",
                },
            )
        )
    # a narration request like the API's: pending, with no audio yet. The seed command
    # queues it after commit and a worker renders it with espeak-ng (``make run``)
    s.narrations.append(
        s.get(
            NewsNarration,
            news_article=articles[0],
            user=u["carol"],
            conversation_style="casual",
            defaults={"narrator_profile": "storyteller", "narration_metadata": {"status": "pending"}},
        )
    )

    lh = {"story": lighthouse, "content_type": "story", "content_id": lighthouse.id}
    invitations = [
        # (key fields, status, style, extra)
        (u["alice"], u["bob"], None, "story_collaboration", lh, "accepted", "casual", {}),
        (u["alice"], u["carol"], None, "story_collaboration", lh, "sent", "formal", {}),
        (
            u["alice"],
            None,
            "guest.writer@example.org",
            "story_collaboration",
            lh,
            "pending",
            "neutral",
            {},
        ),
        (
            u["bob"],
            u["dave"],
            None,
            "story_collaboration",
            {"story": kyoto, "content_type": "story", "content_id": kyoto.id},
            "declined",
            "playful",
            {},
        ),
        (
            u["carol"],
            u["erin"],
            None,
            "news_feed",
            {"content_type": "news_article", "content_id": articles[1].id},
            "viewed",
            "casual",
            {"content_metadata": {"article_title": articles[1].title}},
        ),
        (
            u["carol"],
            u["dave"],
            None,
            "news_feed",
            {"content_type": "news_article", "content_id": articles[2].id},
            "expired",
            "formal",
            {},
        ),
        (
            u["alice"],
            u["bob"],
            None,
            "roleplay_invitation",
            {
                "story": lighthouse,
                "content_type": "roleplay_template",
                "content_id": roleplay.id,
                "roleplay_character_role": roles["Tobias"],
            },
            "accepted",
            "dramatic",
            {},
        ),
        (
            u["alice"],
            u["erin"],
            None,
            "roleplay_invitation",
            {
                "story": lighthouse,
                "content_type": "roleplay_template",
                "content_id": roleplay.id,
                "roleplay_character_role": roles["Inspector Hale"],
            },
            "sent",
            "dramatic",
            {},
        ),
        (
            u["alice"],
            u["dave"],
            None,
            "roleplay_invitation",
            {
                "story": lighthouse,
                "content_type": "roleplay_template",
                "content_id": roleplay.id,
                "roleplay_character_role": roles["Mara"],
            },
            "cancelled",
            "neutral",
            {},
        ),
    ]
    for n, (inviter, invitee, email, kind, content, status, style, extra) in enumerate(invitations):
        created = s.ago(days=6 - n * 0.5)
        answered = status in {"accepted", "declined"}
        invitation = s.get(
            StoryInvitation,
            inviter=inviter,
            invitee_user=invitee,
            invitee_email=email,
            invitation_type=kind,
            content_type=content["content_type"],
            content_id=content["content_id"],
            defaults={
                **{k: v for k, v in content.items() if k not in {"content_type", "content_id"}},
                **extra,
                "token": secrets.token_urlsafe(32),
                "status": status,
                "conversation_style": style,
                "message": f"Join me on this {kind.replace('_', ' ')}!",
                "expires_at": s.ago(days=1) if status == "expired" else s.ahead(days=7),
                "viewed_at": created + timedelta(hours=2)
                if status in {"viewed", "accepted", "declined"}
                else None,
                "responded_at": created + timedelta(hours=3) if answered else None,
                "geographic_region": invitee.region if invitee else None,
                "delivery_preferences": {"channels": ["email", "in_app"]},
            },
        )
        s.invitations.append(invitation)
        seed_history(s, invitation, created)


def seed_history(s: Seeder, invitation: StoryInvitation, created: datetime) -> None:
    """The history rows the invitation's status implies, in order."""
    invitee = invitation.invitee_user
    steps: list[tuple[User | None, str]] = []
    if invitation.status != "pending":
        steps.append((invitation.inviter, "sent"))
    if invitation.status not in {"pending", "cancelled"}:
        steps.append((invitee, "received"))
    if invitation.status in {"viewed", "accepted", "declined"}:
        steps.append((invitee, "viewed"))
    if invitation.status in {"accepted", "declined", "expired"}:
        steps.append((invitee, invitation.status))
    if invitation.status == "sent":
        steps.append((invitation.inviter, "reminded"))
    for hour, (user, action) in enumerate(steps):
        s.get(
            UserInvitationHistory,
            invitation=invitation,
            user=user,
            action=action,
            defaults={
                "action_timestamp": created + timedelta(hours=hour),
                "ip_address": "203.0.113.10" if action in {"viewed", "accepted"} else None,
                "user_agent": "Mozilla/5.0 (demo)" if action == "viewed" else None,
                "response_data": {"note": "Count me in!"} if action == "accepted" else None,
            },
        )
