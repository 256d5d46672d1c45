from __future__ import annotations

import pytest

from app.messages.charsets import decode_bytes, lookup_charset, repair_8bit


@pytest.mark.parametrize(("label", "expected"), [
    ("KOI8-R", "koi8-r"), ("windows-1251", "cp1251"), ('"utf-8"', "utf-8"),
    ("utf-8*ru", "utf-8"), ("x-unknown", None), ("base64", None), ("zlib", None),
    ("undefined", None), ("unicode-escape", None), ("a\x00b", None), (None, None), ("", None),
])
def test_lookup_accepts_real_charsets_only(label, expected):
    assert lookup_charset(label) == expected


def test_declared_charset_wins_when_it_decodes():
    assert decode_bytes("Привет".encode("cp1251"), "windows-1251") == "Привет"


def test_utf8_is_tried_when_the_label_is_wrong():
    assert decode_bytes("Привет".encode(), "us-ascii") == "Привет"


def test_declared_charset_with_replacement_beats_mojibake():
    assert decode_bytes(b"ok \xff", "utf-8") == "ok \ufffd"


def test_unknown_label_and_invalid_utf8_falls_back_to_cp1252():
    assert decode_bytes("naïve".encode("cp1252"), "x-bogus") == "naïve"


def test_truncated_input_does_not_end_in_garbage():
    assert decode_bytes("жж".encode()[:3], "utf-8", truncated=True) == "ж"


def test_repair_8bit_reads_utf8_then_the_hint():
    escaped_utf8 = "Привет".encode().decode("ascii", "surrogateescape")
    escaped_koi8 = "Привет".encode("koi8-r").decode("ascii", "surrogateescape")
    assert repair_8bit(escaped_utf8) == "Привет"
    assert repair_8bit(escaped_koi8, "koi8-r") == "Привет"
    assert repair_8bit("plain ascii") == "plain ascii"
