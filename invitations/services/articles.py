"""News articles, with duplicate detection by a hash of their normalised content."""

from __future__ import annotations

import hashlib
import re
from datetime import datetime

from django.db import IntegrityError, transaction

from .. import errors
from ..errors import InvitationError
from ..models import (
    NewsArticle,
)

_WS = re.compile(r"\s+")


def article_content_hash(*, title: str, summary: str, full_content: str | None) -> str:
    """SHA-256 of the article's text with whitespace and case normalised, so the same
    story re-published with different line breaks is still a duplicate."""
    parts = [title, summary, full_content or ""]
    normalised = "\n".join(_WS.sub(" ", p).strip().lower() for p in parts)
    return hashlib.sha256(normalised.encode()).hexdigest()


def article_create(
    *,
    title: str,
    summary: str,
    full_content: str | None = None,
    source_url: str | None = None,
    author: str | None = None,
    published_at: datetime | None = None,
    category: str | None = None,
    tags: list[str] | None = None,
    language: str = "en",
    reading_time_minutes: int | None = None,
) -> NewsArticle:
    """Create a news article; the same content twice is ``DUPLICATE_ARTICLE`` (409),
    whose message names the existing article's id."""
    digest = article_content_hash(title=title, summary=summary, full_content=full_content)
    existing = NewsArticle.objects.filter(content_hash=digest).values_list("pk", flat=True)
    if (found := existing.first()) is not None:
        raise _duplicate(found)
    try:
        with transaction.atomic():
            return NewsArticle.objects.create(
                title=title,
                summary=summary,
                full_content=full_content,
                source_url=source_url,
                author=author,
                published_at=published_at,
                category=category,
                tags=tags,
                language=language,
                reading_time_minutes=reading_time_minutes,
                content_hash=digest,
            )
    except IntegrityError:
        # lost a race with a concurrent insert of the same content
        raise _duplicate(existing.first()) from None


def _duplicate(existing_id: int | None) -> InvitationError:
    return InvitationError(
        errors.DUPLICATE_ARTICLE,
        f"an article with the same content already exists (article {existing_id})",
        field="full_content",
        status=409,
    )
