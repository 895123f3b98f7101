"""Narrator profiles (the voice) and conversation styles (the pacing) of a narration.

A profile is an espeak-ng voice with its speed (words per minute) and pitch (0-99); a
style says how many sentences make one segment and how long the pause after each is."""

from __future__ import annotations

from dataclasses import dataclass

from notifyplatform.choices import ConversationStyle


@dataclass(frozen=True)
class NarratorProfile:
    voice: str
    speed: int
    pitch: int
    description: str


@dataclass(frozen=True)
class StylePacing:
    sentences_per_segment: int
    pause_seconds: float


NARRATOR_PROFILES: dict[str, NarratorProfile] = {
    "anchor": NarratorProfile("en-us", 165, 45, "An even news-desk voice (American English)"),
    "storyteller": NarratorProfile("en-gb", 145, 55, "Slower and warmer (British English)"),
    "brisk": NarratorProfile("en-us", 195, 50, "Fast headlines"),
    "bright": NarratorProfile("en-us+f3", 170, 60, "A lighter, higher voice"),
}
DEFAULT_PROFILE = "anchor"

STYLE_PACING: dict[str, StylePacing] = {
    ConversationStyle.NEUTRAL: StylePacing(2, 0.4),
    ConversationStyle.CASUAL: StylePacing(1, 0.3),
    ConversationStyle.FORMAL: StylePacing(3, 0.6),
    ConversationStyle.PLAYFUL: StylePacing(1, 0.25),
    ConversationStyle.DRAMATIC: StylePacing(1, 0.9),
}
