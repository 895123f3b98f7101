"""SMS length and segment counting (GSM 03.38 / 3GPP TS 23.038).

Carriers bill per segment, so the admin preview and the pipeline need the exact count:

* Text made only of GSM-7 characters is sent as GSM-7: 160 septets fit one message, a
  concatenated (multipart) message carries 153 septets per segment (the rest of each
  140-octet payload is the user data header). Extension-table characters (``^{}\\[~]|€`` and
  form feed) are sent as ESC + char, i.e. 2 septets, and an escape pair is never split across
  two segments.
* Any other character switches the whole message to UCS-2: 70 UTF-16 code units fit one
  message, 67 per segment when concatenated. Characters outside the BMP (most emoji) are a
  surrogate pair (2 units) that is never split across segments.

Multipart counts are computed by greedy packing that honours those two "never split" rules,
so they are exact rather than ``ceil(units / 153)`` estimates.

Decision: empty text is reported as 1 segment (``characters=0, units=0``), because sending an
empty SMS still costs one message at the carrier.

National language shift tables (Turkish, Spanish, Portuguese, ...) are not used: they are
opt-in per carrier and our providers send plain GSM-7 or UCS-2.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

__all__ = [
    "GSM7",
    "GSM7_BASIC",
    "GSM7_EXTENSION",
    "GSM7_MULTIPART_SEPTETS",
    "GSM7_SINGLE_SEPTETS",
    "UCS2",
    "UCS2_MULTIPART_UNITS",
    "UCS2_SINGLE_UNITS",
    "SmsEncoding",
    "SmsInfo",
    "is_gsm7",
    "sms_segments",
]

SmsEncoding = Literal["GSM-7", "UCS-2"]
GSM7: SmsEncoding = "GSM-7"
UCS2: SmsEncoding = "UCS-2"

GSM7_SINGLE_SEPTETS = 160
GSM7_MULTIPART_SEPTETS = 153
UCS2_SINGLE_UNITS = 70
UCS2_MULTIPART_UNITS = 67

# GSM 03.38 default alphabet, in code order 0x00-0x7F. 0x1B (ESC) is omitted: it is the escape
# to the extension table, not a character a message can contain by itself.
GSM7_BASIC = frozenset(
    "@£$¥èéùìòÇ\nØø\rÅå"
    "Δ_ΦΓΛΩΠΨΣΘΞÆæßÉ"
    " !\"#¤%&'()*+,-./"
    "0123456789:;<=>?"
    "¡ABCDEFGHIJKLMNO"
    "PQRSTUVWXYZÄÖÑÜ§"
    "¿abcdefghijklmno"
    "pqrstuvwxyzäöñüà"
)
# Extension table: each costs 2 septets (ESC + code).
GSM7_EXTENSION = frozenset("\f^{}\\[~]|€")
_GSM7_ALL = GSM7_BASIC | GSM7_EXTENSION


@dataclass(frozen=True, slots=True)
class SmsInfo:
    """How a text would be sent.

    ``characters`` counts Unicode code points (what a user would call characters, modulo
    combining sequences); ``units`` counts what the limits apply to: septets for GSM-7
    (extension characters count 2), UTF-16 code units for UCS-2 (non-BMP characters count 2).
    """

    encoding: SmsEncoding
    characters: int
    segments: int
    units: int


def is_gsm7(text: str) -> bool:
    """Whether ``text`` can be sent in the GSM-7 alphabet (basic + extension table)."""
    return _GSM7_ALL.issuperset(text)


def _pack(weights: list[int], capacity: int) -> int:
    """Segments needed when items of the given weights (1 or 2) are packed greedily into
    segments of ``capacity`` units, never splitting an item."""
    segments = 1
    used = 0
    for weight in weights:
        if used + weight > capacity:
            segments += 1
            used = weight
        else:
            used += weight
    return segments


def sms_segments(text: str) -> SmsInfo:
    """Encoding, length and exact segment count of ``text`` as one SMS."""
    if is_gsm7(text):
        weights = [2 if char in GSM7_EXTENSION else 1 for char in text]
        return _measure(text, GSM7, weights, GSM7_SINGLE_SEPTETS, GSM7_MULTIPART_SEPTETS)
    weights = [2 if ord(char) > 0xFFFF else 1 for char in text]
    return _measure(text, UCS2, weights, UCS2_SINGLE_UNITS, UCS2_MULTIPART_UNITS)


def _measure(
    text: str, encoding: SmsEncoding, weights: list[int], single: int, multipart: int
) -> SmsInfo:
    """Units and segments of ``text`` whose characters cost ``weights`` units each: one
    segment holds ``single`` units, a part of a longer message ``multipart``."""
    units = sum(weights)
    if units <= single:
        segments = 1
    elif units == len(text):  # every character costs 1: no packing constraints
        segments = -(-units // multipart)
    else:
        segments = _pack(weights, multipart)
    return SmsInfo(encoding=encoding, characters=len(text), segments=segments, units=units)
