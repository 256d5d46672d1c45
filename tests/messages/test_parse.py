from __future__ import annotations

import base64
import datetime as dt

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from app.messages import get_part, parse_message
from app.messages.structure import MAX_DEPTH, MAX_PARTS
from tests.messages.samples import (
    encoded_word,
    html_with_images,
    koi8r_message,
    multipart,
    nested,
    part,
    raw,
)


def test_koi8r_subject_sender_and_body_are_decoded():
    parsed = parse_message(koi8r_message())
    assert parsed.subject == "Отчёт за март"
    assert parsed.from_[0].name == "Иван Петров"
    assert parsed.from_[0].address == "ivan@example.ru"
    assert parsed.text_body == "Добрый день!\nОтчёт во вложении.\n"


@pytest.mark.parametrize("charset", ["windows-1251", "koi8-r", "iso-8859-5", "utf-8"])
def test_cyrillic_body_in_any_declared_charset_is_decoded(charset):
    message = raw("Subject: x", f"Content-Type: text/plain; charset={charset}",
                  body="Привет, мир".encode(charset))
    assert parse_message(message).text_body == "Привет, мир"


def test_latin1_quoted_printable_body_is_decoded():
    message = raw("Content-Type: text/plain; charset=ISO-8859-1",
                  "Content-Transfer-Encoding: quoted-printable", body=b"Caf=E9 cr=E8me")
    assert parse_message(message).text_body == "Café crème"


def test_utf8_body_labelled_us_ascii_is_read_as_utf8():
    message = raw("Content-Type: text/plain; charset=us-ascii", body="Привет".encode())
    assert parse_message(message).text_body == "Привет"


def test_body_without_charset_falls_back_to_utf8_then_cp1252():
    assert parse_message(raw("Subject: a", body="naïve".encode())).text_body == "naïve"
    assert parse_message(raw("Subject: a", body="naïve".encode("cp1252"))).text_body == "naïve"


@pytest.mark.parametrize("label", ["x-unknown", "base64", "zlib", "undefined", "unicode-escape",
                                   '"utf-8', "utf-8\x00", "x-user-defined;;", ""])
def test_bogus_charset_label_never_raises_and_keeps_text(label):
    message = raw(f"Content-Type: text/plain; charset={label}", body="Hello \\u0041 é".encode())
    assert parse_message(message).text_body == "Hello \\u0041 é"


def test_invalid_utf8_is_replaced_not_raised():
    message = raw("Content-Type: text/plain; charset=utf-8", body=b"ok \xff\xfe bytes")
    body = parse_message(message).text_body
    assert body.startswith("ok ") and body.endswith(" bytes")


@pytest.mark.parametrize(("header", "expected"), [
    (encoded_word("Привет", "windows-1251", "Q"), "Привет"),
    (f"Re: {encoded_word('Привет', 'utf-8')} world", "Re: Привет world"),
    (f"{encoded_word('При', 'utf-8')}\r\n {encoded_word('вет', 'utf-8')}", "Привет"),
    ("=?utf-8?B?not base64!?= tail", None),
    ("=?x-no-such-charset?Q?caf=E9?=", "café"),
    ("=?utf-8?Q?unterminated", "=?utf-8?Q?unterminated"),
    ("=?utf-8*ru?Q?hello?=", "hello"),
])
def test_encoded_word_subjects_decode_even_when_malformed(header, expected):
    subject = parse_message(raw(f"Subject: {header}")).subject
    if expected is None:
        assert subject.endswith("tail")
    else:
        assert subject == expected


def test_raw_8bit_utf8_header_is_decoded():
    message = "Subject: Привет\r\nFrom: Иван <ivan@example.ru>\r\n\r\nbody".encode()
    parsed = parse_message(message)
    assert parsed.subject == "Привет"
    assert parsed.from_[0].name == "Иван"


def test_raw_8bit_header_in_body_charset_uses_it_as_a_hint():
    message = (b"Subject: " + "Привет".encode("koi8-r")
               + b"\r\nContent-Type: text/plain; charset=koi8-r\r\n\r\nbody")
    assert parse_message(message).subject == "Привет"


def test_addresses_with_quoted_commas_are_split_correctly():
    parsed = parse_message(raw('To: "Petrov, Ivan" <ivan@example.ru>, maria@example.ru',
                               "Cc: =?utf-8?B?0JzQsNGA0LjRjw==?= <m@example.ru>"))
    assert [(m.name, m.address) for m in parsed.to] == [
        ("Petrov, Ivan", "ivan@example.ru"), ("", "maria@example.ru")]
    assert parsed.cc[0].name == "Мария"


def test_date_is_aware_and_kept_as_sent():
    parsed = parse_message(raw("Date: Tue, 12 Mar 2024 10:15:00 +0300"))
    assert parsed.date == dt.datetime(2024, 3, 12, 7, 15, tzinfo=dt.UTC)
    assert parsed.date_text == "Tue, 12 Mar 2024 10:15:00 +0300"


@pytest.mark.parametrize("value", ["yesterday", "Tue, 99 Foo 2024 99:99:99 +9999",
                                   "Mon, 1 Jan 99999 10:00:00 +0300", ""])
def test_garbage_date_is_none_but_text_is_kept(value):
    parsed = parse_message(raw(f"Date: {value}"))
    assert parsed.date is None
    assert parsed.date_text == value


def test_threading_ids_are_extracted():
    parsed = parse_message(raw("Message-ID: <a@x>", "In-Reply-To: <b@x> (comment)",
                               "References: <c@x>\r\n <b@x>"))
    assert (parsed.message_id, parsed.in_reply_to, parsed.references) == (
        "<a@x>", "<b@x>", ["<c@x>", "<b@x>"])


def test_html_mail_keeps_original_html_and_lists_cid_image_as_inline():
    parsed = parse_message(html_with_images())
    assert parsed.subject == "Картинка"
    assert parsed.text_body == "Смотри картинку."
    assert '<img src="https://tracker.example.com/pixel.gif">' in parsed.html_body
    assert "<script>" in parsed.html_body  # unsanitized: sanitizing is a separate step
    image = next(a for a in parsed.attachments if a.content_type == "image/png")
    assert image.is_inline and image.content_id == "logo@example.ru"
    assert parsed.part_for_cid("logo@example.ru") == image.index
    assert parsed.part_for_cid("<logo@example.ru>") == image.index
    assert parsed.part_for_cid("missing") is None


def test_rfc2231_russian_filename_is_decoded_and_part_downloads():
    message = html_with_images()
    parsed = parse_message(message)
    pdf = next(a for a in parsed.attachments if a.content_type == "application/pdf")
    assert pdf.filename == "отчёт.pdf"
    assert not pdf.is_inline
    assert pdf.size == len(b"%PDF-1.4 report")
    data = get_part(message, pdf.index)
    assert (data.filename, data.content_type, data.data) == (
        "отчёт.pdf", "application/pdf", b"%PDF-1.4 report")


def test_rfc2047_filename_is_decoded():
    name = encoded_word("Договор.docx", "utf-8")
    message = multipart("mixed", "b", part("Content-Type: text/plain", body=b"see"),
                        part(f'Content-Type: application/octet-stream; name="{name}"',
                             f'Content-Disposition: attachment; filename="{name}"',
                             body=b"doc"))
    assert parse_message(message).attachments[0].filename == "Договор.docx"


def test_filename_directories_are_dropped():
    message = multipart("mixed", "b", part("Content-Type: text/plain", body=b"see"),
                        part('Content-Disposition: attachment; filename="../../etc/passwd"',
                             body=b"x"),
                        part('Content-Disposition: attachment; filename="C:\\\\tmp\\\\a.txt"',
                             body=b"y"))
    assert [a.filename for a in parse_message(message).attachments] == ["passwd", "a.txt"]


def test_nested_alternative_inside_mixed_gives_both_bodies_and_the_attachment():
    parsed = parse_message(html_with_images())
    assert parsed.text_body is not None and parsed.html_body is not None
    assert [a.content_type for a in parsed.attachments] == ["image/png", "application/pdf"]


def test_message_rfc822_attachment_is_listed_and_downloadable():
    inner = raw("From: a@example.com", "Subject: Вложенное", body=b"inner body\r\n")
    message = multipart("mixed", "b", part("Content-Type: text/plain", body=b"outer"),
                        part("Content-Type: message/rfc822", body=inner))
    parsed = parse_message(message)
    assert parsed.text_body == "outer"
    [attachment] = parsed.attachments
    assert attachment.content_type == "message/rfc822"
    data = get_part(message, attachment.index)
    assert data.filename == "Вложенное.eml"
    assert parse_message(data.data).text_body == "inner body\n"


def test_get_part_of_missing_or_container_index_raises_key_error():
    message = html_with_images()
    with pytest.raises(KeyError):
        get_part(message, 999)
    with pytest.raises(KeyError):
        get_part(message, -1)
    with pytest.raises(KeyError):
        get_part(message, 0)  # the multipart/mixed container itself


def test_broken_base64_body_is_displayable():
    message = raw("Content-Type: text/plain; charset=utf-8", "Content-Transfer-Encoding: base64",
                  body=b"0J/RgNC4!!!broken***0LLQtdGC\r\n===")
    assert isinstance(parse_message(message).text_body, str)


def test_broken_base64_attachment_still_downloads_something():
    message = multipart("mixed", "b", part("Content-Type: text/plain", body=b"hi"),
                        part("Content-Type: application/pdf", "Content-Transfer-Encoding: base64",
                             'Content-Disposition: attachment; filename="a.pdf"',
                             body=b"JVBERi0xLjQgcmVwb3J0!!!#"))
    parsed = parse_message(message)
    assert get_part(message, parsed.attachments[0].index).data.startswith(b"%PDF")


def test_multipart_without_boundary_parameter_shows_raw_body():
    message = raw("Content-Type: multipart/mixed",
                  body=b"--x\r\nContent-Type: text/plain\r\n\r\nhi")
    assert "hi" in parse_message(message).text_body


def test_multipart_whose_boundary_never_appears_shows_raw_body():
    message = raw('Content-Type: multipart/mixed; boundary="absent"', body=b"just text")
    assert parse_message(message).text_body == "just text"


def test_missing_closing_boundary_keeps_the_parts():
    message = raw('Content-Type: multipart/mixed; boundary="b"',
                  body=b"--b\r\nContent-Type: text/plain\r\n\r\nfirst\r\n--b\r\n"
                       b'Content-Disposition: attachment; filename="f.txt"\r\n\r\nfile')
    parsed = parse_message(message)
    assert parsed.text_body == "first"
    assert parsed.attachments[0].filename == "f.txt"


def test_thousand_nested_multiparts_parse_without_raising():
    parsed = parse_message(nested(1000))
    assert parsed.subject == "deep"
    assert parsed.notes  # the reader is told why the structure is not shown
    assert "bottom" in (parsed.text_body or "")


def test_parts_nested_deeper_than_the_cap_are_reported_not_walked():
    message = nested(MAX_DEPTH + 10)
    parsed = parse_message(message)
    assert parsed.text_body is None  # the text part lies below the cap
    [opaque] = parsed.attachments
    assert opaque.index == MAX_DEPTH
    assert b"bottom" in get_part(message, opaque.index).data
    assert any(str(MAX_DEPTH) in note for note in parsed.notes)


def test_parts_within_the_depth_cap_are_walked():
    assert parse_message(nested(MAX_DEPTH - 1)).text_body == "bottom"


def test_number_of_parts_is_capped():
    parts = [part(f'Content-Disposition: attachment; filename="{i}.txt"', body=b"x")
             for i in range(MAX_PARTS + 50)]
    parsed = parse_message(multipart("mixed", "b", *parts))
    assert len(parsed.attachments) == MAX_PARTS - 1  # the container is part 0
    assert parsed.notes


def test_one_megabyte_header_parses_quickly_enough():
    message = raw("Subject: " + "x" * 1_000_000, "To: " + "a@example.com, " * 70_000,
                  body=b"body")
    parsed = parse_message(message)
    assert parsed.subject.startswith("xxx")
    assert parsed.text_body == "body"
    assert 0 < len(parsed.to) <= 500


def test_nul_bytes_do_not_break_parsing():
    message = raw("Subject: a\x00b", "Content-Type: text/plain", body=b"te\x00xt")
    parsed = parse_message(message)
    assert parsed.subject == "ab"
    assert parsed.text_body == "te\x00xt"


@pytest.mark.parametrize("message", [b"", b"just a body with no headers at all",
                                     b"\r\n\r\n", b"\x00\xff\xfe" * 100, b"From nowhere\r\n"])
def test_messages_without_headers_are_displayable(message):
    parsed = parse_message(message)
    assert parsed.subject == ""
    assert parsed.from_ == []
    assert parsed.date is None


def test_headers_list_is_decoded_for_the_headers_view():
    parsed = parse_message(koi8r_message())
    assert ("Subject", "Отчёт за март") in parsed.headers


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=2000))
def test_arbitrary_bytes_never_raise(data):
    parsed = parse_message(data)
    assert isinstance(parsed.subject, str)


@settings(max_examples=100, deadline=None)
@given(st.lists(st.sampled_from([
    b"Content-Type: multipart/mixed; boundary=b\r\n", b"--b\r\n", b"--b--\r\n", b"\r\n",
    b"Content-Transfer-Encoding: base64\r\n", b"Content-Type: text/html; charset=koi8-r\r\n",
    b"Content-Type: message/rfc822\r\n", b"Subject: =?utf-8?B?0J8=?=\r\n", b"\xd0\x9f\xff\r\n",
    b"Content-Disposition: attachment; filename*=utf-8''%D0%9F\r\n", b"=?bad?Q?x\r\n",
]), max_size=40))
def test_arbitrary_mime_fragments_never_raise(lines):
    message = b"".join(lines)
    parsed = parse_message(message)
    for attachment in parsed.attachments:
        assert isinstance(get_part(message, attachment.index).data, bytes)


def test_base64_encoded_text_attachment_keeps_exact_bytes():
    payload = "строка".encode("cp1251")
    message = multipart("mixed", "b", part("Content-Type: text/plain", body=b"see"),
                        part("Content-Type: text/plain; charset=windows-1251",
                             "Content-Transfer-Encoding: base64",
                             'Content-Disposition: attachment; filename="a.txt"',
                             body=base64.b64encode(payload)))
    index = parse_message(message).attachments[0].index
    assert get_part(message, index).data == payload
