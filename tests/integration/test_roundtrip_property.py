"""Property: any valid message sent through the real Postfix with SMTPClient and fetched back
from the real Dovecot with POP3Client keeps every header and its body byte for byte, once
line endings are normalized; the servers only put trace fields on top.

The messages are what clients get wrong: 8-bit body bytes, lines that start with dots (a
lone "." would end DATA early if not stuffed), bare CR and bare LF that the client must turn
into CRLF, lines up to SMTP's 998 octets, folded headers, sometimes UTF-8 headers (SMTPUTF8).
They carry Date and Message-ID, so Postfix has nothing to add inside the original header.
"""

from __future__ import annotations

import re

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from app.mail.pop3 import POP3Client
from app.mail.security import Security, make_tls_context
from app.mail.smtp import SMTPClient
from tests.support.realservers import RealServers

pytestmark = pytest.mark.realservers

ALICE = "alice@pochta.test"
BOB = "bob@pochta.test"
MAX_LINE = 998
# What Postfix (cleanup, then virtual(8)) puts on top of every message, in this order.
TRACE_FIELDS = ("return-path", "x-original-to", "delivered-to", "received")
_EOL = re.compile(rb"\r\n|\r|\n")

# Body bytes: tab, printable ASCII and every 8-bit byte; never NUL, CR, LF or other controls.
_ALLOWED = [b for b in range(256) if b == 9 or 0x20 <= b < 0x7F or b >= 0x80]
_TO_ALLOWED = bytes(_ALLOWED[b % len(_ALLOWED)] for b in range(256))

endings = st.sampled_from([b"\r\n", b"\n", b"\r"])
line_starts = st.sampled_from([b"", b"", b".", b"..", b"...", b". ", b".\t", b"From "])
contents = st.one_of(
    st.binary(max_size=80), st.binary(min_size=MAX_LINE - 20, max_size=MAX_LINE)
).map(lambda raw: raw.translate(_TO_ALLOWED))
header_text = st.text(
    alphabet=st.characters(min_codepoint=0x20, max_codepoint=0x7E), min_size=1, max_size=70
).map(str.strip).filter(bool)
utf8_text = st.text(alphabet="абвгдеёжзийклмнопрстуфхцчшщъыьэюяЁÜß€ ", min_size=1, max_size=30)


@st.composite
def body_lines(draw) -> bytes:
    lines = draw(st.lists(st.tuples(line_starts, contents, endings), max_size=25))
    parts = [(start + content)[:MAX_LINE] + ending for start, content, ending in lines]
    tail = draw(st.sampled_from([b"", b".", b"..", b"no line end"]))
    return b"".join(parts) + tail


@st.composite
def header_lines(draw, serial: int) -> list[bytes]:
    subject = draw(st.one_of(header_text, utf8_text))
    fields = [
        ("From", "Bob <bob@pochta.test>"),
        ("To", ALICE),
        ("Subject", subject),
        ("Date", "Tue, 02 Jan 2024 03:04:05 +0100"),
        ("Message-ID", f"<roundtrip.{serial}@pochta.test>"),
        ("MIME-Version", "1.0"),
        ("Content-Type", "text/plain; charset=utf-8"),
        ("Content-Transfer-Encoding", "8bit"),
    ]
    extra = draw(st.lists(st.tuples(header_text, st.booleans()), max_size=3))
    lines = [f"{name}: {value}".encode() for name, value in fields]
    for index, (value, folded) in enumerate(extra):
        line = f"X-Test-{index}: {value}".encode()
        if folded:  # a continuation line: CRLF then whitespace, the value goes on
            line += draw(endings) + b"\t" + value.encode()
        lines.append(line)
    return lines


@st.composite
def messages(draw) -> bytes:
    headers = draw(header_lines(draw(st.integers(0, 10**9))))
    head = b"".join(line + draw(endings) for line in headers[:-1])
    # The last header line ends in CRLF or LF, so the empty line after it stays one.
    head += headers[-1] + draw(st.sampled_from([b"\r\n", b"\n"]))
    return head + draw(endings) + draw(body_lines())


def normalized(data: bytes) -> bytes:
    """Every CRLF, bare CR and bare LF as CRLF, ending with one: what SMTP carries."""
    data = _EOL.sub(b"\r\n", data)
    return data if data.endswith(b"\r\n") else data + b"\r\n"


def split_trace(raw: bytes) -> tuple[list[str], bytes]:
    """The names of the trace fields on top of a fetched message, and the rest of it."""
    names: list[str] = []
    position = 0
    while True:
        end = raw.index(b"\r\n", position) + 2
        line = raw[position:end]
        if line[:1] in (b" ", b"\t") and names:
            position = end
            continue
        name = line.split(b":", 1)[0].decode("ascii", "replace").lower()
        if name not in TRACE_FIELDS:
            return names, raw[position:]
        names.append(name)
        position = end


def send_and_fetch(servers: RealServers, raw: bytes) -> bytes:
    tls = make_tls_context(servers.ca_file)
    servers.clear(ALICE)
    smtp = SMTPClient(
        servers.host, servers.smtp_starttls_port, security=Security.STARTTLS,
        tls_context=tls, timeout=10,
    )
    with smtp:
        smtp.auth("PLAIN", BOB, servers.users[BOB])
        smtp.send(BOB, [ALICE], raw)
    servers.wait_for_count(ALICE, 1)
    with POP3Client(servers.host, servers.pop3_tls_port, tls_context=tls, timeout=10) as pop:
        pop.login(ALICE, servers.users[ALICE])
        return pop.retr_bytes(1)


def test_normalized_is_the_line_ending_rule_the_property_relies_on():
    assert normalized(b"a\rb\nc\r\nd") == b"a\r\nb\r\nc\r\nd\r\n"
    assert normalized(b"a\r\r\n\n") == b"a\r\n\r\n\r\n"


@settings(
    max_examples=25,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(raw=messages())
def test_message_survives_postfix_and_dovecot_unchanged(real_servers: RealServers, raw: bytes):
    fetched = send_and_fetch(real_servers, raw)
    names, rest = split_trace(fetched)
    assert tuple(names) == TRACE_FIELDS, fetched[:600]
    assert rest == normalized(raw)
