from __future__ import annotations

import datetime as dt
import email.policy
import os
import re
import tracemalloc
from email.parser import BytesParser

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from app.messages import (
    Address,
    Attachment,
    ComposeError,
    Draft,
    build_message,
    get_part,
    parse_address_list,
    parse_message,
)
from app.messages.addresses import FORBIDDEN_IN_HEADERS
from tests.messages.samples import koi8r_message, raw

SENDER = parse_address_list("Иван Петров <ivan@пример.рф>")[0]
OURS = {"from", "to", "cc", "subject", "date", "message-id", "in-reply-to", "references",
        "mime-version", "content-type", "content-transfer-encoding", "content-disposition"}


def addresses(text: str) -> list[Address]:
    return parse_address_list(text)


def build(draft: Draft, attachments=(), sender: Address = SENDER):
    return build_message(draft, sender=sender, attachments=attachments,
                         hostname_for_message_id="")


def header_block(data: bytes) -> bytes:
    return data.split(b"\r\n\r\n", 1)[0]


def header_names(block: bytes) -> list[str]:
    """The names of all header lines (continuation lines excluded)."""
    return [line.split(b":", 1)[0].decode().lower()
            for line in block.split(b"\r\n") if line and line[:1] not in (b" ", b"\t")]


def all_header_names(data: bytes) -> set[str]:
    """Header names at the top and in every MIME part's header block."""
    names = set(header_names(header_block(data)))
    for block in re.findall(rb"\r\n--=_pochta_[0-9a-f]+\r\n(.*?)\r\n\r\n", data, re.S):
        names |= set(header_names(block))
    return names


def simple_draft(**changes) -> Draft:
    fields = {"to": addresses("maria@example.ru"), "subject": "Hello", "body": "Body\n"}
    return Draft(**{**fields, **changes})


def test_required_headers_are_present_and_well_formed():
    message = build(simple_draft())
    parsed = BytesParser(policy=email.policy.default).parsebytes(message.data)
    assert parsed["MIME-Version"] == "1.0"
    date = parsed["Date"].datetime
    assert date.tzinfo is not None
    assert abs((dt.datetime.now(dt.UTC) - date).total_seconds()) < 60
    assert parsed["Message-ID"] == message.message_id
    assert message.message_id.endswith("@xn--e1afmkfd.xn--p1ai>")


def test_hostname_for_message_id_is_used_when_given():
    message = build_message(simple_draft(), sender=SENDER, hostname_for_message_id="mail.lab")
    assert message.message_id.endswith("@mail.lab>")


def test_bcc_is_an_envelope_recipient_and_never_a_header():
    draft = simple_draft(cc=addresses("boss@example.ru"), bcc=addresses("secret@hidden.org"))
    message = build(draft)
    assert message.envelope_recipients == ["maria@example.ru", "boss@example.ru",
                                           "secret@hidden.org"]
    assert b"secret" not in message.data and b"hidden.org" not in message.data
    assert "bcc" not in all_header_names(message.data)


def test_bcc_only_message_shows_undisclosed_recipients():
    message = build(Draft(bcc=addresses("secret@hidden.org"), subject="s", body="b"))
    assert b"To: undisclosed-recipients:;" in header_block(message.data)
    assert b"hidden.org" not in message.data


def test_envelope_uses_wire_forms_and_drops_duplicates():
    draft = Draft(to=addresses("ivan@пример.рф, IVAN@ПРИМЕР.РФ"),
                  cc=addresses("ivan@xn--e1afmkfd.xn--p1ai"), subject="s", body="b")
    message = build(draft)
    assert message.envelope_from == "ivan@xn--e1afmkfd.xn--p1ai"
    assert message.envelope_recipients == ["ivan@xn--e1afmkfd.xn--p1ai",
                                           "IVAN@xn--e1afmkfd.xn--p1ai"]


def test_no_recipients_is_a_compose_error():
    with pytest.raises(ComposeError, match="recipient"):
        build(Draft(subject="s", body="b"))


def test_non_ascii_subject_and_names_are_rfc2047_encoded():
    message = build(simple_draft(to=addresses("Мария <maria@example.ru>"), subject="Привет"))
    block = header_block(message.data)
    assert block.isascii()
    assert b"=?utf-8?" in block
    parsed = parse_message(message.data)
    assert parsed.subject == "Привет"
    assert parsed.to[0].name == "Мария"
    assert parsed.from_[0].name == "Иван Петров"


def test_attachment_filename_is_rfc2231_encoded_and_type_guessed():
    message = build(simple_draft(), [Attachment("отчёт за март.pdf", b"%PDF-1.4")])
    assert re.search(rb"filename\*(0\*)?=utf-8''%D0%BE%D1%82%D1%87%D1%91%D1%82", message.data)
    [attachment] = parse_message(message.data).attachments
    assert attachment.filename == "отчёт за март.pdf"
    assert attachment.content_type == "application/pdf"


def test_declared_content_type_wins_and_unknown_names_are_octet_streams():
    message = build(simple_draft(), [Attachment("data", b"x", "Text/CSV"),
                                     Attachment("blob.zzz-unknown", b"y")])
    assert [a.content_type for a in parse_message(message.data).attachments] == [
        "text/csv", "application/octet-stream"]


@pytest.mark.parametrize("content_type", ["text", "text/plain\r\nBcc: x@y", "a b/c", "/x"])
def test_invalid_content_type_is_refused(content_type):
    with pytest.raises(ComposeError, match="content type"):
        build(simple_draft(), [Attachment("a.txt", b"x", content_type)])


def test_attachment_directories_are_dropped_from_the_name():
    message = build(simple_draft(), [Attachment("C:\\Users\\me\\secret.txt", b"x")])
    assert parse_message(message.data).attachments[0].filename == "secret.txt"


def test_body_is_utf8_with_crlf_and_no_line_over_998_octets():
    body = "Привет\n" + "ж" * 5000 + "\n" + "x" * 3000 + "\nend\n"
    message = build(simple_draft(body=body))
    assert all(len(line) <= 998 for line in message.data.split(b"\r\n"))
    assert b"\n" not in message.data.replace(b"\r\n", b"")
    assert b"\r" not in message.data.replace(b"\r\n", b"")
    assert message.data.isascii()
    assert parse_message(message.data).text_body == body


@pytest.mark.parametrize("subject", [
    "hi\r\nBcc: evil@x.org", "hi\nBcc: evil@x.org", "hi\rBcc: evil@x.org",
    "hi\u2028Bcc: evil@x.org", "hi\x85Bcc: evil@x.org", "nul\x00", "\x0bvertical",
])
def test_subject_with_line_breaks_is_refused(subject):
    with pytest.raises(ComposeError, match="subject"):
        build(simple_draft(subject=subject))


def test_display_name_with_line_break_is_refused_even_when_built_by_hand():
    forged = Address("x\r\nBcc: evil@x.org", "a@b.org", "a@b.org", needs_smtputf8=False)
    with pytest.raises(ComposeError):
        build(simple_draft(to=[forged]))


@pytest.mark.parametrize("filename", ["a\r\nBcc: evil@x.org.txt", "a\nb.txt", "x\x00.txt"])
def test_filename_with_line_break_is_refused(filename):
    with pytest.raises(ComposeError, match="file name"):
        build(simple_draft(), [Attachment(filename, b"x")])


def test_injected_threading_ids_are_dropped():
    message = build(simple_draft(in_reply_to="<a@x>\r\nBcc: evil@x.org",
                                 references=["<ok@x>", "<b@x> Bcc: evil@x.org"]))
    block = header_block(message.data)
    assert b"evil" not in block
    assert b"In-Reply-To" not in block
    assert b"References: <ok@x>" in block


def test_threading_headers_are_set_and_long_reference_chains_trimmed():
    references = [f"<r{i}@x>" for i in range(50)]
    message = build(simple_draft(in_reply_to="<r49@x>", references=references))
    parsed = parse_message(message.data)
    assert parsed.in_reply_to == "<r49@x>"
    assert parsed.references[0] == "<r0@x>" and parsed.references[-1] == "<r49@x>"
    assert len(parsed.references) == 20


def test_non_ascii_local_part_makes_an_smtputf8_message():
    message = build(simple_draft(to=addresses("Мария <мария@пример.рф>")))
    assert message.needs_smtputf8
    assert message.envelope_recipients == ["мария@пример.рф"]
    assert "To: Мария <мария@пример.рф>".encode() in header_block(message.data)
    assert parse_message(message.data).to[0].address == "мария@пример.рф"


def test_ascii_only_message_does_not_need_smtputf8():
    assert not build(simple_draft()).needs_smtputf8


def test_round_trip_keeps_subject_addresses_body_and_attachments():
    draft = Draft(to=addresses('"Петров, Пётр" <petr@example.ru>, bob@example.com'),
                  cc=addresses("Мария <maria@пример.рф>"), subject="Отчёт: итоги года",
                  body="Добрый день!\n\nСм. вложения.\n")
    files = [Attachment("итоги.xlsx", os.urandom(3000)), Attachment("notes.txt", b"plain\n")]
    message = build(draft, files)
    parsed = parse_message(message.data)
    assert parsed.subject == draft.subject
    assert [(m.name, m.address) for m in parsed.to] == [
        ("Петров, Пётр", "petr@example.ru"), ("", "bob@example.com")]
    assert [(m.name, m.address) for m in parsed.cc] == [("Мария", "maria@xn--e1afmkfd.xn--p1ai")]
    assert parsed.text_body == draft.body
    assert [a.filename for a in parsed.attachments] == ["итоги.xlsx", "notes.txt"]
    for attachment, original in zip(parsed.attachments, files, strict=True):
        assert get_part(message.data, attachment.index).data == original.data


def test_forwarded_original_is_attached_as_message_rfc822():
    original = koi8r_message()
    message = build(simple_draft(subject="Fwd: x", forwarded=original))
    parsed = parse_message(message.data)
    [attachment] = parsed.attachments
    assert attachment.content_type == "message/rfc822"
    inner = parse_message(get_part(message.data, attachment.index).data)
    assert inner.subject == "Отчёт за март"
    assert inner.text_body == "Добрый день!\nОтчёт во вложении.\n"
    assert message.data.isascii()  # the 8-bit original was re-encoded for 7-bit transport


def test_ascii_original_is_forwarded_unchanged_not_refolded():
    original = raw("From: a@example.com", "Subject: plain", "X-Long: " + "word  " * 40,
                   "X-Folded: first\r\n\tsecond", body=b"line one\r\nline two\r\n")
    message = build(simple_draft(forwarded=original))
    assert original.rstrip(b"\r\n") in message.data


@pytest.mark.parametrize("original", [
    b"\x00\xff garbage that is not a message",
    raw("Content-Type: multipart/mixed; boundary=x", "Subject: \xff\xfe",
        body=b"--x\r\nContent-Type: text/plain; charset=no-such\r\n\r\n\xff\xfe\r\n--x--"),
    raw("Subject: long", body=b"x" * 5000),
])
def test_awkward_originals_can_still_be_forwarded(original):
    message = build(simple_draft(forwarded=original))
    assert all(len(line) <= 998 for line in message.data.split(b"\r\n"))
    assert len(parse_message(message.data).attachments) == 1


def test_a_twenty_megabyte_file_is_never_in_memory_whole(tmp_path):
    size = 20 * 1024 * 1024
    path = tmp_path / "big.bin"
    path.write_bytes(os.urandom(size))
    written = tmp_path / "message.eml"
    tracemalloc.start()
    try:
        message = build(simple_draft(), [Attachment("big.bin", path)])
        with written.open("wb") as target:
            message.write_to(target)
        _retained, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < size / 10  # chunks of the file and of its base64, nothing more
    assert written.stat().st_size == message.size
    parsed = BytesParser(policy=email.policy.default).parsebytes(written.read_bytes())
    (attachment,) = parsed.iter_attachments()
    assert attachment.get_content() == path.read_bytes()


def test_a_file_attachment_and_the_same_bytes_give_the_same_message(tmp_path):
    data = os.urandom(100_000) + b"\r\n.\r\n"
    path = tmp_path / "data.bin"
    path.write_bytes(data)
    from_file = build(simple_draft(), [Attachment("data.bin", path)])
    from_bytes = build(simple_draft(), [Attachment("data.bin", data)])
    for message in (from_file, from_bytes):
        assert message.size == len(message.data)
        parsed = BytesParser(policy=email.policy.default).parsebytes(message.data)
        (attachment,) = parsed.iter_attachments()
        assert attachment.get_content() == data
        assert attachment["Content-Transfer-Encoding"] == "base64"
        assert all(len(line) <= 76 for line in message.data.split(b"\r\n"))


@pytest.mark.parametrize("size", [0, 1, 56, 57, 58, 57 * 1024, 57 * 1024 + 1, 200_003])
def test_the_announced_size_is_the_size_written(size):
    data = os.urandom(size)
    message = build(simple_draft(), [Attachment("x.bin", data)])
    assert message.size == len(message.data)
    parsed = BytesParser(policy=email.policy.default).parsebytes(message.data)
    (attachment,) = parsed.iter_attachments()
    assert attachment.get_content() == data


printable = st.characters(blacklist_categories=("Cs",),
                          blacklist_characters="".join(FORBIDDEN_IN_HEADERS))


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(subject=st.text(printable, max_size=300), body=st.text(st.characters(
       blacklist_categories=("Cs",), blacklist_characters="\x00\r"), max_size=2000),
       name=st.text(printable, max_size=80), filename=st.text(printable, min_size=1,
                                                               max_size=80))
def test_any_unicode_round_trips_and_adds_no_header(subject, body, name, filename):
    recipient = Address(name, "r@example.org", "r@example.org", needs_smtputf8=False)
    draft = Draft(to=[recipient], bcc=addresses("hidden@example.net"), subject=subject,
                  body=body)
    message = build(draft, [Attachment(filename, b"data")])
    assert all_header_names(message.data) <= OURS
    assert all(len(line) <= 998 for line in message.data.split(b"\r\n"))
    assert b"hidden@example.net" not in message.data
    parsed = parse_message(message.data)
    # Header text is compared with white space runs collapsed: unfolding turns tabs into
    # spaces and the parser drops leading blanks, as every mail reader does.
    assert squeeze(parsed.subject) == squeeze(subject)
    # A display name is compared without its white space: when the standard library folds
    # a long name into several encoded-words it may turn a space at the split into folding
    # white space, which RFC 2047 decoders drop (e.g. "...ࠀ : " comes back "...ࠀ:").
    assert "".join(parsed.to[0].name.split()) == "".join(name.split())
    assert parsed.text_body == body.replace("\r\n", "\n") + ("" if body.endswith("\n") else "\n")
    expected_name = squeeze(filename.replace("\\", "/").rsplit("/", 1)[-1]) or "attachment"
    if expected_name.startswith("<") and expected_name.endswith(">"):
        expected_name = expected_name[1:-1] or None  # email.utils.unquote strips <> too
    assert squeeze(parsed.attachments[0].filename or "") == (expected_name or "")


def squeeze(text: str) -> str:
    return " ".join(text.split())
