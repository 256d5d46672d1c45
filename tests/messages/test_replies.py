from __future__ import annotations

import dataclasses

import pytest

from app.messages import (
    build_message,
    forward_draft,
    get_part,
    parse_address_list,
    parse_message,
    reply_draft,
)
from app.messages.replies import quote
from tests.messages.samples import html_with_images, koi8r_message, raw

ME = "maria@example.ru"


def original(*extra: str, body: bytes = b"First line\r\n\r\n> earlier quote\r\nLast\r\n"):
    return parse_message(raw(
        "From: Ivan Petrov <ivan@example.ru>",
        "To: Maria <maria@example.ru>, bob@example.com",
        "Cc: carol@example.com, MARIA@example.ru",
        "Subject: Plans",
        "Date: Tue, 12 Mar 2024 10:15:00 +0300",
        "Message-ID: <m2@example.ru>",
        "References: <m0@example.ru> <m1@example.ru>",
        "In-Reply-To: <m1@example.ru>",
        *extra,
        body=body,
    ))


def specs(addresses):
    return [a.addr_spec for a in addresses]


def test_reply_goes_to_the_sender_only():
    draft = reply_draft(original(), reply_all=False, self_addresses=[ME])
    assert specs(draft.to) == ["ivan@example.ru"]
    assert draft.to[0].display_name == "Ivan Petrov"
    assert draft.cc == []


def test_reply_all_adds_to_and_cc_without_me_or_duplicates():
    draft = reply_draft(original(), reply_all=True, self_addresses=[ME])
    assert specs(draft.to) == ["ivan@example.ru"]
    assert specs(draft.cc) == ["bob@example.com", "carol@example.com"]


def test_reply_honours_reply_to():
    draft = reply_draft(original("Reply-To: list@example.org"), reply_all=False,
                        self_addresses=[ME])
    assert specs(draft.to) == ["list@example.org"]


def test_reply_to_my_own_sent_message_goes_to_its_recipients():
    sent = parse_message(raw("From: maria@example.ru", "To: ivan@example.ru",
                             "Subject: mine", "Message-ID: <s@x>"))
    draft = reply_draft(sent, reply_all=False, self_addresses=[ME])
    assert specs(draft.to) == ["ivan@example.ru"]


@pytest.mark.parametrize(("subject", "expected"), [
    ("Plans", "Re: Plans"), ("Re: Plans", "Re: Plans"), ("RE: re: Plans", "Re: Plans"),
    ("Re[2]: Plans", "Re: Plans"), ("Fwd: Plans", "Re: Fwd: Plans"), ("", "Re: "),
])
def test_reply_subject_gets_exactly_one_re(subject, expected):
    message = parse_message(raw(f"Subject: {subject}", "From: a@example.com"))
    assert reply_draft(message, reply_all=False, self_addresses=[]).subject == expected


def test_reply_quotes_the_body_under_an_attribution_line():
    draft = reply_draft(original(), reply_all=False, self_addresses=[ME])
    assert "On Tue, 12 Mar 2024 at 10:15, Ivan Petrov wrote:\n" in draft.body
    assert "> First line\n>\n>> earlier quote\n> Last" in draft.body


def test_reply_to_html_only_mail_quotes_its_text():
    message = parse_message(raw("From: a@example.com", "Content-Type: text/html",
                                body=b"<p>Hello <b>there</b></p><script>x()</script>"))
    draft = reply_draft(message, reply_all=False, self_addresses=[])
    assert "> Hello there" in draft.body
    assert "script" not in draft.body and "x()" not in draft.body


def test_reply_threads_with_in_reply_to_and_references():
    draft = reply_draft(original(), reply_all=False, self_addresses=[ME])
    assert draft.in_reply_to == "<m2@example.ru>"
    assert draft.references == ["<m0@example.ru>", "<m1@example.ru>", "<m2@example.ru>"]


def test_reply_skips_senders_that_are_not_valid_addresses():
    message = parse_message(raw("From: undisclosed, ivan@example.ru", "Subject: x"))
    draft = reply_draft(message, reply_all=False, self_addresses=[])
    assert specs(draft.to) == ["ivan@example.ru"]


def test_reply_draft_can_be_sent():
    draft = reply_draft(parse_message(koi8r_message()), reply_all=True, self_addresses=[ME])
    sender = parse_address_list(ME)[0]
    message = build_message(draft, sender=sender, hostname_for_message_id="example.ru")
    parsed = parse_message(message.data)
    assert parsed.subject == "Re: Отчёт за март"
    assert parsed.in_reply_to == "<koi8.1@example.ru>"
    assert "> Добрый день!" in parsed.text_body


@pytest.mark.parametrize(("subject", "expected"), [
    ("Plans", "Fwd: Plans"), ("Fwd: Plans", "Fwd: Plans"), ("FW: Plans", "FW: Plans"),
])
def test_forward_subject_gets_one_fwd(subject, expected):
    message = parse_message(raw(f"Subject: {subject}"))
    assert forward_draft(message, inline=True).subject == expected


def test_inline_forward_quotes_headers_and_body():
    draft = forward_draft(original(), inline=True)
    assert draft.to == [] and draft.forwarded is None
    assert "---------- Forwarded message ----------" in draft.body
    assert "From: Ivan Petrov <ivan@example.ru>" in draft.body
    assert "Subject: Plans" in draft.body
    assert "Cc: carol@example.com, MARIA@example.ru" in draft.body
    assert "First line" in draft.body


def test_forward_as_attachment_carries_the_original_bytes():
    message = html_with_images()
    draft = forward_draft(parse_message(message), inline=False)
    assert draft.forwarded == message
    assert draft.body == ""
    addressed = dataclasses.replace(draft, to=parse_address_list("bob@example.com"))
    sent = build_message(addressed, sender=parse_address_list(ME)[0],
                         hostname_for_message_id="example.ru")
    [attachment] = parse_message(sent.data).attachments
    assert attachment.content_type == "message/rfc822"
    assert parse_message(get_part(sent.data, attachment.index).data).subject == "Картинка"


def test_quote_prefixes_every_line():
    assert quote("a\r\n\n> b\n") == "> a\n>\n>> b"
