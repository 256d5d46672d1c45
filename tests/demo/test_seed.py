"""The seeded demo mail: once only, and each message carrying what its page needs."""

from __future__ import annotations

import datetime as dt
from email import policy
from email.message import EmailMessage
from email.parser import BytesParser
from email.utils import parsedate_to_datetime

import pytest

from app.demo.mailboxes import Mailboxes
from app.demo.seed import seed_demo_mail

NOW = dt.datetime(2026, 3, 14, 15, 9, 26, tzinfo=dt.UTC)


@pytest.fixture
def boxes(tmp_path) -> Mailboxes:
    return Mailboxes(tmp_path, {"alice": "a", "bob": "b"})


def raw_messages(boxes: Mailboxes, user: str) -> list[bytes]:
    return [boxes.read(user, m.uid) for m in boxes.list(user)]


def messages(boxes: Mailboxes, user: str) -> list[EmailMessage]:
    parser = BytesParser(policy=policy.default)
    return [parser.parsebytes(raw) for raw in raw_messages(boxes, user)]  # type: ignore[misc]


def by_subject(boxes: Mailboxes, fragment: str) -> EmailMessage:
    found = [m for m in messages(boxes, "alice") if fragment in m["Subject"]]
    assert len(found) == 1, [m["Subject"] for m in messages(boxes, "alice")]
    return found[0]


def test_seeding_is_idempotent_across_restarts(boxes, tmp_path):
    first = seed_demo_mail(boxes, now=NOW)
    assert first == boxes.count("alice") + boxes.count("bob")
    assert boxes.count("alice") >= 5 and boxes.count("bob") == 1
    assert seed_demo_mail(boxes, now=NOW) == 0
    restarted = Mailboxes(tmp_path, {"alice": "a", "bob": "b"})
    assert seed_demo_mail(restarted) == 0
    assert restarted.count("alice") + restarted.count("bob") == first


def test_emptied_mailbox_is_not_refilled(boxes):
    seed_demo_mail(boxes, now=NOW)
    boxes.delete("alice", [m.uid for m in boxes.list("alice")])
    assert seed_demo_mail(boxes, now=NOW) == 0
    assert boxes.count("alice") == 0


def test_missing_other_user_is_skipped(tmp_path):
    boxes = Mailboxes(tmp_path, {"alice": "a"})
    assert seed_demo_mail(boxes, now=NOW) == boxes.count("alice") > 0


def test_stored_with_crlf_and_dated_relative_to_now(boxes):
    seed_demo_mail(boxes, now=NOW)
    for user in ("alice", "bob"):
        for raw in raw_messages(boxes, user):
            assert b"\n" not in raw.replace(b"\r\n", b"")
        for message in messages(boxes, user):
            date = parsedate_to_datetime(message["Date"])
            assert NOW - dt.timedelta(days=7) < date < NOW, message["Subject"]
            assert message["Message-ID"]


def test_welcome_explains_the_demo(boxes):
    seed_demo_mail(boxes, now=NOW)
    welcome = by_subject(boxes, "Welcome")
    text = welcome.get_content()
    assert "bob@demo.pochta.test" in text and "relay" in text


def test_russian_message_is_koi8_r(boxes):
    seed_demo_mail(boxes, now=NOW)
    message = by_subject(boxes, "Отчёт")
    (raw,) = [r for r in raw_messages(boxes, "alice") if message["Message-ID"].encode() in r]
    assert b"Subject: =?koi8-r?" in raw and b"From: =?koi8-r?" in raw  # not utf-8 words
    assert "третьей лабораторной работе".encode("koi8-r") in raw  # an 8-bit body
    assert b"Content-Transfer-Encoding: 8bit" in raw
    assert message.get_content_charset() == "koi8-r"
    assert "С уважением" in message.get_content()
    assert str(message["From"]).startswith("Иван Петров")


def test_newsletter_has_remote_and_inline_images(boxes):
    seed_demo_mail(boxes, now=NOW)
    message = by_subject(boxes, "Networking Weekly")
    html = message.get_body(("html",))
    assert html is not None
    source = html.get_content()
    assert 'src="http://example.com/' in source
    inline = [p for p in message.walk() if p.get_content_type() == "image/png"]
    assert len(inline) == 1 and inline[0].get_content_disposition() == "inline"
    assert f'src="cid:{inline[0]["Content-ID"][1:-1]}"' in source
    assert inline[0].get_content().startswith(b"\x89PNG\r\n\x1a\n")
    assert message.get_body(("plain",)) is not None


def test_attachment_has_a_russian_file_name(boxes):
    seed_demo_mail(boxes, now=NOW)
    message = by_subject(boxes, "CSV")
    (attachment,) = message.iter_attachments()
    assert attachment.get_filename() == "Расписание консультаций.csv"
    assert attachment.get_content_type() == "text/csv"
    assert "SMTP и STARTTLS" in attachment.get_content()


def test_reply_thread(boxes):
    seed_demo_mail(boxes, now=NOW)
    alice = [m for m in messages(boxes, "alice") if "Lab 5" in m["Subject"]]
    (answer,) = messages(boxes, "bob")
    question, follow_up = sorted(alice, key=lambda m: parsedate_to_datetime(m["Date"]))
    assert answer["In-Reply-To"] == question["Message-ID"]
    assert follow_up["In-Reply-To"] == answer["Message-ID"]
    assert follow_up["References"].split() == [question["Message-ID"], answer["Message-ID"]]
    assert follow_up["Subject"] == "Re: Lab 5: which port for POP3 over TLS?"


def test_headers_view_has_received_and_authentication_results(boxes):
    seed_demo_mail(boxes, now=NOW)
    traced = [m for m in messages(boxes, "alice") if m["Authentication-Results"]]
    assert len(traced) >= 1
    for message in traced:
        assert len(message.get_all("Received")) >= 2
        assert "dkim=pass" in message["Authentication-Results"]
