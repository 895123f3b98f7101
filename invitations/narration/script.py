"""An article's text as sentences, grouped into the segments a narration speaks."""

from __future__ import annotations

import re

# a sentence ends at . ! ? (and closing quotes/brackets) followed by space and a capital,
# a digit or a quote; "Mr. Smith" and "3.5" stay whole often enough for speech
_SENTENCE_END = re.compile(r"(?<=[.!?])[\"'”’)\]]*\s+(?=[\"'“‘(\[]?[A-Z0-9])")
_WS = re.compile(r"\s+")


def sentences(text: str) -> list[str]:
    """The text's sentences, whitespace collapsed, empty ones dropped."""
    flat = _WS.sub(" ", text or "").strip()
    if not flat:
        return []
    return [s.strip() for s in _SENTENCE_END.split(flat) if s.strip()]


def article_text(title: str, summary: str, full_content: str | None) -> list[str]:
    """What a narration reads: the title as its own sentence, then the body (the full
    content, else the summary)."""
    body = full_content if full_content and full_content.strip() else summary
    heading = _WS.sub(" ", title or "").strip().rstrip(".!?")
    return ([f"{heading}."] if heading else []) + sentences(body)


def group(items: list[str], size: int) -> list[list[str]]:
    """Consecutive groups of ``size`` (the last may be shorter)."""
    size = max(1, size)
    return [items[i : i + size] for i in range(0, len(items), size)]
