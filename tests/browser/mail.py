"""The fixed mail the browser tests put into the real mailboxes, and the files they attach.

Dates, names and contents are fixed so that every run shows the same pages (the screenshots
in docs/screenshots/ come from these). Everything is built with `email.message.EmailMessage`.
"""

from __future__ import annotations

import datetime as dt
import struct
import zlib
from email import policy
from email.message import EmailMessage
from email.utils import format_datetime

ALICE = "alice@pochta.test"
BOB = "bob@pochta.test"
WIRE = policy.SMTP

PLAIN_SUBJECT = "Семинар в четверг"
PLAIN_BODY = (
    "Алиса, привет!\n\n"
    "Семинар по почтовым протоколам переносится на четверг, 14:30, аудитория 305.\n"
    "Принеси, пожалуйста, журнал сеанса SMTP из третьей лабораторной.\n\n"
    "> Во сколько начинаем?\n"
    "В 14:30. Программа: https://lab.pochta.test/seminars/2026/mail-protocols/"
    "smtp-starttls-pop3-tls-uidl-pipelining-and-the-protocol-log.html\n\n"
    "Боб\n"
)
PDF_SUBJECT = "Lab report (PDF attached)"
PDF_NAME = "lab-report.pdf"
PDF_BYTES = (
    b"%PDF-1.4\n1 0 obj << /Type /Catalog /Pages 2 0 R >> endobj\n"
    b"2 0 obj << /Type /Pages /Kids [] /Count 0 >> endobj\n"
    b"trailer << /Root 1 0 R >>\n%%EOF\n"
)
HTML_SUBJECT = "Networking Weekly: remote images stay blocked"

SENT_SUBJECT = "Отчёт и схема стенда"
SENT_BODY = "Боб, отчёт и схема во вложении.\nАлиса\n"
TEXT_NAME = "отчёт по лабе.txt"
TEXT_BYTES = "Отчёт: SMTP через STARTTLS, POP3 через TLS на 995.\n".encode()
IMAGE_NAME = "diagram.png"


def png(width: int, height: int, rgb: tuple[int, int, int]) -> bytes:
    """A valid solid-colour PNG, made here so the tests need no image files."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        body = kind + data
        return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body))

    row = b"\x00" + bytes(rgb) * width
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(row * height))
        + chunk(b"IEND", b"")
    )


IMAGE_BYTES = png(32, 24, (0x1F, 0x5F, 0xBF))
BANNER_BYTES = png(480, 96, (0x1F, 0x5F, 0xBF))


def _when(day: int, hour: int, minute: int) -> dt.datetime:
    return dt.datetime(2026, 3, day, hour, minute, tzinfo=dt.UTC)


def _base(sender: str, to: str, subject: str, date: dt.datetime, tag: str) -> EmailMessage:
    message = EmailMessage()
    message["From"] = sender
    message["To"] = to
    message["Subject"] = subject
    message["Date"] = format_datetime(date)
    message["Message-ID"] = f"<{tag}.{int(date.timestamp())}@pochta.test>"
    return message


def plain_cyrillic(to: str = ALICE) -> bytes:
    """UTF-8 text from bob, with a quoted line and the trace an inbound MX would add."""
    date = _when(2, 9, 15)
    message = EmailMessage()
    message["Authentication-Results"] = (
        "mx.pochta.test; spf=pass smtp.mailfrom=pochta.test; "
        "dkim=pass header.d=pochta.test header.s=lab; dmarc=pass header.from=pochta.test"
    )
    message["Received"] = (
        "from relay.pochta.test (relay.pochta.test [192.0.2.25]) by mx.pochta.test (Postfix)"
        f" with ESMTPS id 4QLAB1 for <{to}>; {format_datetime(date + dt.timedelta(seconds=4))}"
    )
    message["Received"] = (
        "from [192.0.2.15] (unknown [192.0.2.15]) by relay.pochta.test (Postfix) with ESMTPSA;"
        f" {format_datetime(date + dt.timedelta(seconds=1))}"
    )
    # Long unbroken values: the pages must wrap them, even on a phone.
    message["DKIM-Signature"] = (
        "v=1; a=rsa-sha256; d=pochta.test; s=lab; h=from:to:subject:date; "
        f"b={'QUJDREVGR0hJSktMTU5PUFFSU1RVVldYWVo' * 6}"
    )
    for name, value in _base(f"Боб Смирнов <{BOB}>", to, PLAIN_SUBJECT, date, "seminar").items():
        message[name] = value
    message.set_content(PLAIN_BODY)
    return message.as_bytes(policy=WIRE)


def with_pdf(to: str = ALICE) -> bytes:
    message = _base(f"Bob <{BOB}>", to, PDF_SUBJECT, _when(3, 11, 40), "report")
    message.set_content("Hi Alice,\n\nmy lab report is attached.\n\nBob\n")
    message.add_attachment(PDF_BYTES, "application", "pdf", filename=PDF_NAME)
    return message.as_bytes(policy=WIRE)


def html_with_remote_image(image_url: str, trap_url: str, to: str = ALICE) -> bytes:
    """HTML whose only remote content is one image; its script and event handlers would each
    load `trap_url` (with a different query) as an image if they ever ran, which the body's
    policy allows once remote images are shown."""
    message = _base(
        "Networking Weekly <news@lists.example.com>", to, HTML_SUBJECT, _when(4, 8, 5), "weekly"
    )
    message.set_content(
        "Networking Weekly, issue 42\n\nTLS everywhere, and why POP3 is not dead.\n"
    )
    message.add_alternative(
        "<!DOCTYPE html>\n<html><body>\n"
        "<h1>Networking Weekly</h1>\n"
        f'<p><img src="{image_url}" alt="Weekly banner" width="480" height="96"></p>\n'
        "<h2>TLS everywhere</h2>\n"
        "<p>STARTTLS or implicit TLS on ports 465 and 995? Both, verified.</p>\n"
        "<h2>POP3 is not dead</h2>\n"
        "<p>UIDL, pipelining and why <i>keep on server</i> matters.</p>\n"
        f'<img src="x" alt="" onerror="this.src=\'{trap_url}?onerror\'">\n'
        f"<script>new Image().src = '{trap_url}?script';</script>\n"
        f"<svg><image href=\"x\" onerror=\"new Image().src='{trap_url}?svg'\"/></svg>\n"
        f"<body onload=\"new Image().src='{trap_url}?onload'\"></body>\n"
        "</body></html>\n",
        subtype="html",
    )
    return message.as_bytes(policy=WIRE)


LONG_SUBJECT = "Minutes of the mail protocols seminar"


def long_html(to: str = ALICE) -> bytes:
    """HTML far taller than the body's frame, with nothing in it to focus (no links)."""
    message = _base(f"Bob <{BOB}>", to, LONG_SUBJECT, _when(5, 17, 0), "minutes")
    items = "".join(
        f"<h2>Item {n}</h2><p>Discussion of point {n}: SMTP, POP3 and TLS.</p>\n"
        for n in range(1, 61)
    )
    message.set_content("Minutes: see the HTML part.\n")
    message.add_alternative(f"<!DOCTYPE html>\n<html><body>\n{items}</body></html>\n",
                            subtype="html")
    return message.as_bytes(policy=WIRE)
