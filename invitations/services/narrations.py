"""News narrations: a user asks for one (``narration_request``, on the request path: a
row and a queued task), a worker renders it (``narration_render``: sentences grouped into
timed segments, real audio from espeak-ng stored under ``NP_NARRATION_AUDIO_DIR`` and
served at ``audio_file_url``, ``total_duration`` measured from the WAV file).

``narration_metadata.status`` tells where it is: ``pending`` → ``rendering`` → ``ready``
(or ``failed`` with an ``error``; a failed one may be rendered again, and so may one
left ``rendering`` for ``RENDER_STALE_AFTER`` by a worker that died)."""

from __future__ import annotations

import logging
import uuid
from datetime import datetime, timedelta
from typing import Any

from celery import current_app
from django.conf import settings
from django.db import transaction
from django.utils import timezone
from django.utils.dateparse import parse_datetime

from notifyplatform.choices import ConversationStyle
from users.models import User

from .. import errors
from ..errors import InvitationError
from ..models import NewsArticle, NewsNarration
from ..narration import script, speech
from ..narration.profiles import NARRATOR_PROFILES, STYLE_PACING

logger = logging.getLogger(__name__)

NARRATE_TASK = "invitations.narrate_article"
PENDING, RENDERING, READY, FAILED = "pending", "rendering", "ready", "failed"
# a narration "rendering" for longer than this lost its worker and may be taken over
RENDER_STALE_AFTER = timedelta(minutes=10)


def narration_status(narration: NewsNarration) -> str:
    return str((narration.narration_metadata or {}).get("status", PENDING))


def narration_request(
    *,
    article: NewsArticle,
    user: User | None,
    narrator_profile: str,
    conversation_style: str = ConversationStyle.NEUTRAL,
) -> NewsNarration:
    """Store a pending narration of ``article`` and queue its rendering after commit."""
    if narrator_profile not in NARRATOR_PROFILES:
        raise InvitationError(
            "INVALID_NARRATOR_PROFILE",
            f"narrator_profile must be one of {', '.join(NARRATOR_PROFILES)}",
            field="narrator_profile",
        )
    if conversation_style not in STYLE_PACING:
        raise InvitationError(
            "INVALID_CONVERSATION_STYLE",
            f"conversation_style must be one of {', '.join(STYLE_PACING)}",
            field="conversation_style",
        )
    if not article.is_active:
        raise InvitationError(
            errors.CONTENT_MISMATCH, "the news article is no longer active", field="article"
        )
    narration = NewsNarration.objects.create(
        news_article=article,
        user=user,
        narrator_profile=narrator_profile,
        conversation_style=conversation_style,
        narration_metadata={"status": PENDING},
    )
    pk = narration.pk
    transaction.on_commit(lambda: narration_enqueue(narration_id=pk))
    return narration


def narration_enqueue(*, narration_id: int) -> None:
    """Queue the rendering of a stored narration for a worker (the control queue). Call it
    after the row is committed; rendering a ready one again does nothing."""
    current_app.send_task(NARRATE_TASK, args=[narration_id])


def _claimable(narration: NewsNarration, now: datetime) -> bool:
    meta = narration.narration_metadata or {}
    status = meta.get("status", PENDING)
    if status in (PENDING, FAILED):
        return True
    if status != RENDERING:
        return False
    # a worker that died mid-render leaves it "rendering": another run takes it over
    started = parse_datetime(str(meta.get("rendering_since", "")))
    return started is None or now - started > RENDER_STALE_AFTER


def _claim(narration_id: int) -> NewsNarration | None:
    """Move a pending or failed narration (or one whose renderer died) to ``rendering``;
    None if another run has it or it is ready."""
    now = timezone.now()
    with transaction.atomic():
        narration = (
            NewsNarration.objects.select_for_update(of=("self",))
            .select_related("news_article")
            .filter(pk=narration_id)
            .first()
        )
        if narration is None or not _claimable(narration, now):
            return None
        narration.narration_metadata = {"status": RENDERING, "rendering_since": now.isoformat()}
        narration.save(update_fields=["narration_metadata"])
        return narration


def _segments(recording: speech.Recording, groups: list[list[str]], speaker: str) -> list[Any]:
    return [
        {
            "index": n,
            "speaker": speaker,
            "text": spoken.text,
            "sentence_count": len(sentences),
            "start": round(spoken.start, 3),
            "end": round(spoken.start + spoken.duration, 3),
            "duration": round(spoken.duration, 3),
        }
        for n, (spoken, sentences) in enumerate(zip(recording.segments, groups, strict=True))
    ]


def narration_render(*, narration_id: int) -> NewsNarration | None:
    """Render a pending narration (the task's work). Returns it, ready or failed; None when
    it does not exist or another run is rendering (or has rendered) it."""
    narration = _claim(narration_id)
    if narration is None:
        return None
    article = narration.news_article
    profile_name = narration.narrator_profile or ""
    profile = NARRATOR_PROFILES[profile_name]
    pacing = STYLE_PACING[narration.conversation_style or ConversationStyle.NEUTRAL]
    texts = (
        script.article_text(article.title, article.summary, article.full_content)
        if article is not None
        else []
    )
    groups = script.group(texts, pacing.sentences_per_segment)
    name = f"{uuid.uuid4().hex}.wav"
    path = settings.NP_NARRATION_AUDIO_DIR / name
    try:
        recording = speech.record(
            [" ".join(g) for g in groups], profile, pacing.pause_seconds, path
        )
    except speech.SpeechError as exc:
        logger.warning("narration %s failed: %s", narration_id, exc)
        narration.narration_metadata = {"status": FAILED, "error": str(exc)}
        narration.save(update_fields=["narration_metadata"])
        return narration
    narration.segments = _segments(recording, groups, profile_name)
    narration.total_duration = max(1, round(recording.duration))
    narration.audio_file_url = f"{settings.MEDIA_URL}narrations/{name}"
    narration.narration_metadata = {
        "status": READY,
        "engine": "espeak-ng",
        "voice": profile.voice,
        "speed_wpm": profile.speed,
        "pitch": profile.pitch,
        "pause_seconds": pacing.pause_seconds,
        "duration_seconds": round(recording.duration, 3),
        "sample_rate": recording.sample_rate,
        "audio_file": name,
    }
    narration.save(
        update_fields=["segments", "total_duration", "audio_file_url", "narration_metadata"]
    )
    return narration
