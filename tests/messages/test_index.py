from __future__ import annotations

import datetime as dt
import time

import pytest

from app.messages import index_fields
from app.messages.index import BODY_TEXT_CHARS, SNIPPET_CHARS
from tests.messages.samples import (
    encoded_word,
    html_with_images,
    koi8r_message,
    multipart,
    nested,
    part,
    raw,
)


def test_koi8r_message_is_indexed_decoded():
    message = koi8r_message()
    fields = index_fields(message)
    assert fields.subject == "Отчёт за март"
    assert (fields.from_name, fields.from_addr) == ("Иван Петров", "ivan@example.ru")
    assert fields.to == "maria@example.ru"
    assert fields.date == dt.datetime(2024, 3, 12, 7, 15, tzinfo=dt.UTC)
    assert fields.message_id == "<koi8.1@example.ru>"
    assert fields.size == len(message)
    assert fields.body_text == "Добрый день!\nОтчёт во вложении.\n"
    assert not fields.has_attachments


def test_to_and_cc_are_decoded_display_text():
    fields = index_fields(raw(f"To: {encoded_word('Мария', 'utf-8')} <m@example.ru>, b@x.org",
                              'Cc: "Petrov, I" <i@example.ru>'))
    assert fields.to == "Мария <m@example.ru>, b@x.org"
    assert fields.cc == "Petrov, I <i@example.ru>"


def test_plain_part_is_preferred_for_search_text():
    fields = index_fields(html_with_images())
    assert fields.body_text == "Смотри картинку."
    assert fields.has_attachments  # the PDF; the cid image alone would not count


def test_html_only_message_is_indexed_as_text_without_markup_or_script():
    message = raw("Content-Type: text/html; charset=utf-8",
                  body=b"<style>p{color:red}</style><p>Hello&nbsp;<b>world</b> &amp; co</p>"
                       b"<script>var secret = 1;</script><p>Second</p>")
    fields = index_fields(message)
    assert fields.body_text == "Hello world & co\n\nSecond"
    assert fields.snippet == "Hello world & co Second"


def test_inline_cid_image_alone_is_not_an_attachment():
    message = multipart("related", "r",
                        part("Content-Type: text/html", body=b'<img src="cid:x@y">'),
                        part("Content-Type: image/png", "Content-ID: <x@y>", body=b"png"))
    assert not index_fields(message).has_attachments


def test_attachment_is_flagged():
    message = multipart("mixed", "b", part("Content-Type: text/plain", body=b"hi"),
                        part('Content-Disposition: attachment; filename="a.bin"', body=b"x"))
    assert index_fields(message).has_attachments


def test_snippet_collapses_whitespace_and_is_bounded():
    body = ("word \t\r\n  " * 200).encode()
    fields = index_fields(raw("Subject: s", body=body))
    assert "  " not in fields.snippet and "\n" not in fields.snippet
    assert len(fields.snippet) <= SNIPPET_CHARS + 1
    assert fields.snippet.endswith("…")


def test_body_text_is_capped():
    fields = index_fields(raw("Subject: big", body=b"abc " * 100_000))
    assert len(fields.body_text) == BODY_TEXT_CHARS


def test_capped_multibyte_body_is_not_turned_into_mojibake():
    fields = index_fields(raw("Content-Type: text/plain; charset=utf-8",
                              body="ж".encode() * 200_001))
    assert set(fields.body_text) == {"ж"}


def test_garbage_date_is_none():
    assert index_fields(raw("Date: the day after tomorrow")).date is None


@pytest.mark.parametrize("message", [
    b"", b"no headers", nested(1000), raw("Subject: =?utf-8?B?!!!?="),
    raw("From: <<<>>>@@@, \"unterminated", "To: ,,,;;;", body=b"x"),
    raw('Content-Type: multipart/mixed; boundary="never"', body=b"text"),
    raw("Content-Type: text/plain; charset=undefined", body=b"\xff\xfe"),
])
def test_malformed_messages_are_indexed_without_raising(message):
    fields = index_fields(message)
    assert fields.size == len(message)
    assert isinstance(fields.body_text, str)


def test_typical_message_is_indexed_in_well_under_a_millisecond():
    message = koi8r_message() + "Строка текста письма, обычная.\r\n".encode("koi8-r") * 100
    index_fields(message)
    rounds = 200
    start = time.perf_counter()
    for _ in range(rounds):
        index_fields(message)
    per_message = (time.perf_counter() - start) / rounds
    assert per_message < 0.002  # measured ~0.3 ms; generous for slow CI machines
