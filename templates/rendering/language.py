"""Language selection: the best available template language for a user's locale."""

from __future__ import annotations

from collections.abc import Iterable


def _normalize_locale(locale: str) -> str:
    """``pt_BR.UTF-8`` / ``PT-br`` -> ``pt-br``: comparable form of a locale tag."""
    locale = locale.strip().split(".", 1)[0].split("@", 1)[0]
    return locale.replace("_", "-").lower()


def select_language(
    available: Iterable[str], user_locale: str | None, default: str | None = "en"
) -> str | None:
    """Pick the template language for a user, returned as spelled in ``available``.

    Fallback order: the full user locale (``pt-BR``; ``pt_BR`` and any case accepted), then
    successively shorter prefixes of it (``zh-Hant-TW`` -> ``zh-Hant`` -> ``zh``; for
    ``pt-BR`` that is just the language ``pt``), then ``default``, then None. A user asking
    for ``pt`` is not matched to a regional ``pt-PT`` template: only the explicit chain applies.
    """
    spelled = _spellings(available)
    for candidate in _candidates(user_locale, default):
        if candidate in spelled:
            return spelled[candidate]
    return None


def _spellings(available: Iterable[str]) -> dict[str, str]:
    """Normalised form -> first spelling of it in ``available`` (empty names skipped)."""
    spelled: dict[str, str] = {}
    for language in available:
        if language:
            spelled.setdefault(_normalize_locale(language), language)
    return spelled


def _candidates(user_locale: str | None, default: str | None) -> list[str]:
    """The fallback chain, most specific first: the locale, its prefixes, then ``default``."""
    candidates: list[str] = []
    if user_locale:
        subtags = [part for part in _normalize_locale(user_locale).split("-") if part]
        candidates.extend("-".join(subtags[:n]) for n in range(len(subtags), 0, -1))
    if default:
        candidates.append(_normalize_locale(default))
    return candidates
