"""Tests for templates.sms: exact GSM-7 / UCS-2 segment counts (carriers bill per segment)."""

from __future__ import annotations

import pytest

from templates.sms import (
    GSM7_BASIC,
    GSM7_EXTENSION,
    SmsInfo,
    is_gsm7,
    sms_segments,
)

EXTENSION_CHARS = "^{}\\[~]|€\f"


class TestGsm7:
    @pytest.mark.parametrize(
        ("length", "segments"),
        [(1, 1), (159, 1), (160, 1), (161, 2), (306, 2), (307, 3), (459, 3), (460, 4)],
    )
    def test_segment_boundaries(self, length: int, segments: int) -> None:
        # Given plain GSM-7 text of the given length
        text = "a" * length

        # When counted
        info = sms_segments(text)

        # Then the 160 single / 153 multipart limits apply
        assert info == SmsInfo(encoding="GSM-7", characters=length, segments=segments, units=length)

    def test_empty_text_is_one_segment(self) -> None:
        assert sms_segments("") == SmsInfo(encoding="GSM-7", characters=0, segments=1, units=0)

    @pytest.mark.parametrize("char", list(EXTENSION_CHARS))
    def test_extension_characters_count_double(self, char: str) -> None:
        info = sms_segments(f"a{char}b")
        assert info == SmsInfo(encoding="GSM-7", characters=3, segments=1, units=4)

    def test_extension_characters_push_past_single_limit(self) -> None:
        # 158 plain + 1 extension = 160 septets: still one segment
        assert sms_segments("a" * 158 + "€") == SmsInfo(
            encoding="GSM-7", characters=159, segments=1, units=160
        )
        # 159 plain + 1 extension = 161 septets: two segments
        assert sms_segments("a" * 159 + "€") == SmsInfo(
            encoding="GSM-7", characters=160, segments=2, units=161
        )

    def test_escape_pair_is_not_split_across_segments(self) -> None:
        # Given 152 septets then an escape pair straddling the 153 boundary, total 306 septets
        text = "a" * 152 + "€" + "a" * 152

        # When counted
        info = sms_segments(text)

        # Then ceil(306/153) would say 2, but the pair moves whole to segment 2 (which then
        # needs 2 + 152 = 154 septets), so a third segment is needed
        assert info == SmsInfo(encoding="GSM-7", characters=305, segments=3, units=306)

    def test_escape_pair_exactly_at_segment_end_fits(self) -> None:
        # 151 + 2 = 153 fills segment 1 exactly; 153 more fill segment 2
        text = "a" * 151 + "€" + "a" * 153
        assert sms_segments(text) == SmsInfo(
            encoding="GSM-7", characters=305, segments=2, units=306
        )

    def test_all_extension_characters(self) -> None:
        # 80 extension chars = 160 septets = single segment; 81 = 162 septets = 2 segments
        assert sms_segments("€" * 80) == SmsInfo("GSM-7", 80, 1, 160)
        assert sms_segments("€" * 81) == SmsInfo("GSM-7", 81, 2, 162)
        # 77 pairs = 154 septets cannot fit 153: 76 pairs (152) per segment
        assert sms_segments("€" * 153) == SmsInfo("GSM-7", 153, 3, 306)

    def test_basic_alphabet_specials_stay_gsm7(self) -> None:
        text = "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ!\"#¤%&'()*+,-./:;<=>?¡ÄÖÑÜ§¿äöñüà"
        info = sms_segments(text)
        assert info.encoding == "GSM-7"
        assert info.units == len(text)

    def test_alphabet_sizes(self) -> None:
        assert len(GSM7_BASIC) == 127  # 128 codes minus ESC
        assert frozenset(EXTENSION_CHARS) == GSM7_EXTENSION


class TestUcs2:
    @pytest.mark.parametrize(
        ("length", "segments"),
        [(1, 1), (70, 1), (71, 2), (134, 2), (135, 3), (201, 3), (202, 4)],
    )
    def test_segment_boundaries(self, length: int, segments: int) -> None:
        # Given text forced to UCS-2 by a non-GSM character (Cyrillic)
        text = "ж" * length
        assert sms_segments(text) == SmsInfo(
            encoding="UCS-2", characters=length, segments=segments, units=length
        )

    def test_one_non_gsm_character_switches_the_whole_message(self) -> None:
        # Given 100 GSM chars (1 GSM-7 segment) and one lowercase c-cedilla (not GSM)
        info = sms_segments("a" * 100 + "ç")
        assert info == SmsInfo(encoding="UCS-2", characters=101, segments=2, units=101)

    def test_emoji_pushes_to_ucs2_and_counts_two_units(self) -> None:
        info = sms_segments("Hi 😀")
        assert info == SmsInfo(encoding="UCS-2", characters=4, segments=1, units=5)

    def test_emoji_at_single_limit(self) -> None:
        assert sms_segments("😀" * 35) == SmsInfo("UCS-2", 35, 1, 70)
        assert sms_segments("a" * 69 + "😀") == SmsInfo("UCS-2", 70, 2, 71)

    def test_surrogate_pair_is_not_split_across_segments(self) -> None:
        # Given 66 units, an emoji straddling the 67 boundary, then 66 units: 134 units
        text = "ж" * 66 + "😀" + "ж" * 66

        # Then ceil(134/67) = 2 is wrong: the pair moves to segment 2, which overflows
        assert sms_segments(text) == SmsInfo("UCS-2", 133, 3, 134)

    def test_surrogate_pair_exactly_at_segment_end_fits(self) -> None:
        text = "ж" * 65 + "😀" + "ж" * 67
        assert sms_segments(text) == SmsInfo("UCS-2", 133, 2, 134)

    def test_extension_chars_count_single_in_ucs2(self) -> None:
        # In UCS-2 there is no escape mechanism: "€" is one code unit
        assert sms_segments("€ж") == SmsInfo("UCS-2", 2, 1, 2)


class TestIsGsm7:
    @pytest.mark.parametrize(
        ("text", "expected"),
        [
            ("", True),
            ("Hello, world! {ok} [x] ~^|\\ €", True),
            ("`backtick`", False),
            ("ESC \x1b", False),
            ("tab\t", False),
            ("ç", False),
            ("😀", False),
        ],
    )
    def test_alphabet_membership(self, text: str, expected: bool) -> None:
        assert is_gsm7(text) is expected
