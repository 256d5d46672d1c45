"""The handful of messages a newcomer finds in the demo mailboxes.

Each one exercises a page of the app: a plain welcome, Russian mail in KOI8-R (8-bit body,
encoded headers), an HTML newsletter with a remote image that must stay blocked and an inline
cid image, an attachment with a Cyrillic file name, a reply thread (In-Reply-To/References)
and realistic Received / Authentication-Results headers for the headers view. All are built
with `email.message.EmailMessage`, dated relative to now, and seeded only once per mailbox.
"""

from __future__ import annotations

import datetime as dt
import struct
import zlib
from email import policy
from email.header import Header
from email.message import EmailMessage
from email.utils import format_datetime, formataddr

from app.demo.mailboxes import Mailboxes

MARKER = "pochta-demo-seeded"
WIRE = policy.SMTP  # CRLF line endings, as stored and as POP3 sends them


def seed_demo_mail(
    mailboxes: Mailboxes,
    *,
    user: str = "alice",
    other: str = "bob",
    now: dt.datetime | None = None,
) -> int:
    """Deliver the demo messages to `user` (and one to `other`) unless already done.

    Returns how many messages were delivered (0 on every later call). `other` is skipped
    when the user table has no such user.
    """
    now = now or dt.datetime.now(dt.UTC).astimezone()
    delivered = 0
    for owner, messages in _plan(mailboxes, user, other, now).items():
        if owner not in mailboxes.users or mailboxes.has_marker(owner, MARKER):
            continue
        for message in messages:
            mailboxes.deliver(owner, message.as_bytes(policy=WIRE))
            delivered += 1
        mailboxes.set_marker(owner, MARKER)
    return delivered


def _plan(
    mailboxes: Mailboxes, user: str, other: str, now: dt.datetime
) -> dict[str, list[EmailMessage]]:
    me = mailboxes.address_of(user)
    peer = mailboxes.address_of(other)
    question, answer, follow_up = thread(me, peer, mailboxes.domain, now)
    return {
        user: [
            welcome(me, mailboxes.domain, now - dt.timedelta(days=3)),
            russian(me, now - dt.timedelta(days=2, hours=4)),
            newsletter(me, now - dt.timedelta(days=1, hours=2)),
            question,
            attachment(me, peer, mailboxes.domain, now - dt.timedelta(hours=3)),
            follow_up,
        ],
        other: [answer],
    }


def _base(
    sender: str,
    to: str,
    subject: str,
    date: dt.datetime,
    msgid: str,
    trace: list[tuple[str, str]] | None = None,
) -> EmailMessage:
    message = _with_headers(trace or [])
    message["From"] = sender
    message["To"] = to
    message["Subject"] = subject
    message["Date"] = format_datetime(date)
    message["Message-ID"] = msgid
    return message


def _msgid(tag: str, domain: str, date: dt.datetime) -> str:
    return f"<{tag}.{int(date.timestamp())}@{domain}>"


def welcome(to: str, domain: str, date: dt.datetime) -> EmailMessage:
    message = _base(
        f"Pochta demo <postmaster@{domain}>", to, "Welcome to the Pochta demo",
        date, _msgid("welcome", domain, date),
    )
    message.set_content(
        "Hello!\n\n"
        "This mailbox lives on a small mail server that `pochta demo` runs on your own\n"
        "computer, on the loopback interface only: nothing here ever leaves the machine.\n\n"
        f"There are two accounts, alice@{domain} and bob@{domain}; the passwords are the\n"
        "ones `pochta demo` printed when it started. Things to try:\n\n"
        "  * Fetch: download new mail over POP3 (keep it on the server, or not).\n"
        f"  * Compose: write to bob@{domain}, then log in as bob and fetch it.\n"
        "  * Open the newsletter: its remote image stays blocked until you ask for it.\n"
        "  * Open the Russian message: KOI8-R, decoded for you.\n"
        "  * Look at the headers of any message, and at the protocol log of your last\n"
        "    fetch or send.\n\n"
        "Mail to any other domain is refused: this server never relays.\n\n"
        "-- \nPochta\n"
    )
    return message


def russian(to: str, date: dt.datetime) -> EmailMessage:
    """KOI8-R all the way: encoded-word headers in koi8-r and an 8-bit koi8-r body."""
    trace = _trace("mail.example.ru", "198.51.100.25", "example.ru", to, date)
    message = _with_headers(trace)
    message.set_raw("From", formataddr(("Иван Петров", "ivan.petrov@example.ru"), "koi8-r"))
    message["To"] = to
    message.set_raw("Subject", Header("Отчёт по лабораторной работе 3", "koi8-r").encode())
    message["Date"] = format_datetime(date)
    message["Message-ID"] = _msgid("lab3", "mail.example.ru", date)
    message.set_content(
        "Добрый день!\n\n"
        "Высылаю отчёт по третьей лабораторной работе (почтовые протоколы SMTP и POP3).\n"
        "Клиент POP3 теперь работает через TLS на порту 995, а SMTP - через STARTTLS.\n\n"
        "Вопросы:\n"
        "1. Нужно ли удалять письма с сервера после загрузки?\n"
        "2. Как правильно показывать письма в кодировке KOI8-R?\n\n"
        "С уважением,\n"
        "Иван Петров\n",
        charset="koi8-r",
    )
    return message


def newsletter(to: str, date: dt.datetime) -> EmailMessage:
    """HTML with a text alternative, a remote image (must stay blocked) and a cid image."""
    message = _base(
        "Networking Weekly <news@lists.example.com>", to,
        "Networking Weekly: TLS everywhere, and why POP3 is not dead",
        date, _msgid("weekly-42", "lists.example.com", date),
        _trace("mx.lists.example.com", "203.0.113.7", "lists.example.com", to, date),
    )
    message["List-Id"] = "Networking Weekly <weekly.lists.example.com>"
    message["List-Unsubscribe"] = "<https://lists.example.com/unsubscribe?id=42>"
    message.set_content(
        "Networking Weekly, issue 42\n\n"
        "* TLS everywhere: STARTTLS vs implicit TLS on ports 465 and 995.\n"
        "* POP3 is not dead: UIDL, pipelining and why keep-on-server matters.\n\n"
        "Read online: https://lists.example.com/issues/42\n"
    )
    logo_cid = f"<logo.{int(date.timestamp())}@lists.example.com>"
    message.add_alternative(
        "<!DOCTYPE html>\n<html><body style=\"font-family: sans-serif\">\n"
        f"<p><img src=\"cid:{logo_cid[1:-1]}\" alt=\"Networking Weekly\" width=\"16\""
        " height=\"16\"> <b>Networking Weekly</b>, issue 42</p>\n"
        "<p><img src=\"http://example.com/pochta-demo/banner.png\" alt=\"Banner (remote"
        " image)\" width=\"600\" height=\"120\"></p>\n"
        "<h2>TLS everywhere</h2>\n"
        "<p>STARTTLS or implicit TLS on ports 465 and 995? Both, verified.</p>\n"
        "<h2>POP3 is not dead</h2>\n"
        "<p>UIDL, pipelining and why <i>keep on server</i> matters.</p>\n"
        "<p><a href=\"https://lists.example.com/issues/42\">Read online</a></p>\n"
        "<img src=\"http://example.com/pochta-demo/open.gif?id=42\" width=\"1\" height=\"1\""
        " alt=\"\">\n"
        "</body></html>\n",
        subtype="html",
    )
    html = message.get_payload()[1]
    html.add_related(
        _tiny_png(), "image", "png", cid=logo_cid, disposition="inline", filename="logo.png"
    )
    return message


def attachment(to: str, sender: str, domain: str, date: dt.datetime) -> EmailMessage:
    message = _base(
        f"Bob <{sender}>", to, "Расписание консультаций (CSV attached)",
        date, _msgid("schedule", domain, date),
    )
    message.set_content(
        "Hi Alice,\n\nthe consultation schedule for the mail protocols lab is attached,\n"
        "as a CSV file you can open in any spreadsheet.\n\nBob\n"
    )
    csv = (
        "Дата;Время;Аудитория;Тема\r\n"
        "понедельник;10:00;305;SMTP и STARTTLS\r\n"
        "среда;14:30;412;POP3, UIDL и TLS\r\n"
        "пятница;12:00;305;MIME и кодировки\r\n"
    )
    message.add_attachment(csv, subtype="csv", filename="Расписание консультаций.csv")
    return message


def thread(
    alice: str, bob: str, domain: str, now: dt.datetime
) -> tuple[EmailMessage, EmailMessage, EmailMessage]:
    """Bob asks (to alice), alice answers (to bob), bob follows up (to alice)."""
    asked = now - dt.timedelta(hours=6)
    answered = now - dt.timedelta(hours=5)
    followed = now - dt.timedelta(minutes=40)
    subject = "Lab 5: which port for POP3 over TLS?"
    question = _base(f"Bob <{bob}>", alice, subject, asked, _msgid("q", domain, asked))
    question.set_content(
        "Alice,\n\nis it 995 for POP3 over TLS, or do we use STLS on 110?\n\nBob\n"
    )
    answer = _reply(question, f"Alice <{alice}>", bob, answered, domain)
    answer.set_content(
        "995 with implicit TLS; STLS on 110 works too but then the client must refuse to\n"
        "continue if the server does not offer it.\n\n"
        "> is it 995 for POP3 over TLS, or do we use STLS on 110?\n\nAlice\n"
    )
    follow_up = _reply(answer, f"Bob <{bob}>", alice, followed, domain)
    follow_up.set_content(
        "Thanks, 995 it is. I will update the lab instructions.\n\n"
        "> 995 with implicit TLS; STLS on 110 works too\n\nBob\n"
    )
    return question, answer, follow_up


def _reply(
    original: EmailMessage, sender: str, to: str, date: dt.datetime, domain: str
) -> EmailMessage:
    subject = str(original["Subject"])
    if not subject.lower().startswith("re:"):
        subject = f"Re: {subject}"
    reply = _base(sender, to, subject, date, _msgid("re", domain, date))
    parent = str(original["Message-ID"])
    references = str(original.get("References", "")).split()
    reply["In-Reply-To"] = parent
    reply["References"] = " ".join([*references, parent])
    return reply


def _with_headers(headers: list[tuple[str, str]]) -> EmailMessage:
    message = EmailMessage()
    for name, value in headers:
        message[name] = value
    return message


def _trace(
    relay: str, ip: str, domain: str, to: str, date: dt.datetime
) -> list[tuple[str, str]]:
    """What an inbound MX adds on top: its SPF/DKIM/DMARC verdicts and two Received lines."""
    verdicts = f"spf=pass smtp.mailfrom={domain}; dkim=pass header.d={domain};"
    return [
        (
            "Authentication-Results",
            f"mx.demo.pochta.test; {verdicts} dmarc=pass header.from={domain}",
        ),
        (
            "Received",
            f"from {relay} ({relay} [{ip}]) by mx.demo.pochta.test (Postfix) with ESMTPS"
            f" id 4Q{int(date.timestamp()):X} for <{to}>;"
            f" {format_datetime(date + dt.timedelta(seconds=3))}",
        ),
        (
            "Received",
            f"from [192.0.2.15] (unknown [192.0.2.15]) by {relay} (Postfix) with ESMTPSA;"
            f" {format_datetime(date + dt.timedelta(seconds=1))}",
        ),
    ]


def _tiny_png(size: int = 16, rgb: tuple[int, int, int] = (0x2B, 0x6C, 0xB0)) -> bytes:
    """A valid solid-colour PNG, made here so the seed needs no image files."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        body = kind + data
        return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body))

    row = b"\x00" + bytes(rgb) * size
    header = struct.pack(">IIBBBBB", size, size, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(row * size))
        + chunk(b"IEND", b"")
    )
