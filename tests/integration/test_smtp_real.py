"""SMTPClient against the real Postfix of the test setup: every security mode, AUTH, refusals,
pipelining, SMTPUTF8 and 8BITMIME, a 20 MB message and dot-stuffing.

What Postfix delivered is read straight from the Maildir (LF line ends on disk, CRLF on the
wire), so these tests do not lean on the POP3 client; the big message and the dot lines also
make the whole trip back through Dovecot and POP3Client.
"""

from __future__ import annotations

import io
import os
import re
import ssl
from pathlib import Path

import pytest

from app.mail.errors import (
    AuthFailed,
    MessageTooLarge,
    RecipientsRefused,
    StartTLSUnavailable,
    TLSFailed,
)
from app.mail.pop3 import POP3Client
from app.mail.security import Security, make_tls_context
from app.mail.smtp import DATA_CHUNK, SMTPClient
from app.mail.transcript import CLIENT, SERVER
from tests.support.realservers import RealServers

pytestmark = pytest.mark.realservers

ALICE = "alice@pochta.test"
BOB = "bob@pochta.test"
IVAN = "ivan@pochta.test"  # password "пароль-Ünï€"
TRACE_FIELDS = frozenset({"return-path", "x-original-to", "delivered-to", "received"})
_EOL = re.compile(rb"\r\n|\r|\n")


@pytest.fixture
def servers(real_servers: RealServers) -> RealServers:
    """The session's servers with every mailbox emptied first."""
    for user in real_servers.users:
        real_servers.clear(user)
    return real_servers


@pytest.fixture
def tls(real_servers: RealServers) -> ssl.SSLContext:
    """The client context Pochta uses, trusting the setup's CA (POCHTA_CA_FILE)."""
    return make_tls_context(real_servers.ca_file)


def starttls_client(servers: RealServers, tls: ssl.SSLContext, **kwargs) -> SMTPClient:
    return SMTPClient(
        servers.host, servers.smtp_starttls_port, security=Security.STARTTLS,
        tls_context=tls, timeout=10, **kwargs,
    )


def simple_message(subject: str, sender: str = ALICE, to: str = BOB) -> bytes:
    return (
        f"From: {sender}\r\nTo: {to}\r\nSubject: {subject}\r\n"
        "Date: Mon, 01 Jan 2024 12:00:00 +0000\r\n"
        f"Message-ID: <{subject.replace(' ', '-')}@pochta.test>\r\n\r\nHello.\r\n"
    ).encode()


def normalized(data: bytes) -> bytes:
    """What SMTP must carry for `data`: every line end CRLF, ending with one."""
    data = _EOL.sub(b"\r\n", data)
    return data if data.endswith(b"\r\n") else data + b"\r\n"


def delivered(servers: RealServers, user: str) -> list[bytes]:
    """The messages in a Maildir as POP3 would send them (CRLF), oldest first."""
    folder = servers.maildir(user)
    paths = sorted(
        (entry for sub in ("new", "cur") for entry in (folder / sub).iterdir()),
        key=lambda path: path.name,
    )
    return [path.read_bytes().replace(b"\n", b"\r\n") for path in paths]


def split_trace(raw: bytes) -> tuple[list[str], bytes]:
    """The names of the trace fields Postfix put on top of a message, and the rest of it."""
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


def header_values(raw: bytes, name: str) -> list[str]:
    """Every value of one header field (unfolded), decoded as UTF-8."""
    head = raw.split(b"\r\n\r\n", 1)[0].decode("utf-8", "replace")
    unfolded = re.sub(r"\r\n[ \t]+", " ", head)
    prefix = name.lower() + ":"
    return [
        line[len(prefix):].strip() for line in unfolded.split("\r\n")
        if line.lower().startswith(prefix)
    ]


def assert_delivered_intact(got: bytes, original: bytes) -> None:
    names, rest = split_trace(got)
    assert "received" in names and "delivered-to" in names, got[:500]
    assert rest == normalized(original)


def client_lines(client: SMTPClient) -> list[str]:
    return [entry.text for entry in client.transcript.entries if entry.direction == CLIENT]


# --- the three security modes -------------------------------------------------------------


@pytest.mark.parametrize(
    ("security", "port_name", "protocol"),
    [
        (Security.NONE, "smtp_plain_port", "ESMTPA"),
        (Security.STARTTLS, "smtp_starttls_port", "ESMTPSA"),
        (Security.TLS, "smtp_tls_port", "ESMTPSA"),
    ],
)
def test_send_in_each_security_mode(servers, tls, security, port_name, protocol):
    raw = simple_message(f"mode {security.value}")
    client = SMTPClient(
        servers.host, getattr(servers, port_name), security=security, tls_context=tls, timeout=10
    )
    with client:
        assert client.tls_active is (security is not Security.NONE)
        client.login(ALICE, servers.users[ALICE])
        result = client.send(ALICE, [BOB], raw)
    assert list(result.accepted) == [BOB] and not result.partial
    assert result.reply.code == 250 and "queued as" in result.reply.text
    servers.wait_for_count(BOB, 1)
    (got,) = delivered(servers, BOB)
    assert_delivered_intact(got, raw)
    # Postfix's own record of the session: TLS ("S") and AUTH ("A") as RFC 3848 says.
    (received,) = header_values(got, "Received")
    assert f"with {protocol} " in received


def test_starttls_upgrades_before_auth_and_forgets_plaintext_capabilities(servers, tls):
    with starttls_client(servers, tls) as client:
        lines = client_lines(client)
        assert lines.index("STARTTLS") < len(lines) - 1  # an EHLO follows inside TLS
        assert not client.capabilities.starttls  # the EHLO after the upgrade is what counts
        assert "PLAIN" in client.capabilities.auth_mechanisms
        client.login(ALICE, servers.users[ALICE])
    text = client.transcript.text()
    assert "TLS established (TLSv1." in text
    assert text.index("C: STARTTLS") < text.index("C: AUTH PLAIN ***")


def test_starttls_mode_on_a_port_without_starttls_fails_before_any_credentials(servers, tls):
    client = SMTPClient(
        servers.host, servers.smtp_plain_port, security=Security.STARTTLS, tls_context=tls,
        timeout=10,
    )
    with pytest.raises(StartTLSUnavailable, match="does not offer STARTTLS"):
        client.connect()
    assert not any(line.startswith(("AUTH", "MAIL")) for line in client_lines(client))
    assert not client.tls_active


@pytest.mark.parametrize(
    ("security", "port_name"),
    [(Security.STARTTLS, "smtp_starttls_port"), (Security.TLS, "smtp_tls_port")],
)
def test_untrusted_certificate_is_a_clear_error_without_plaintext_fallback(
    servers, security, port_name
):
    client = SMTPClient(
        servers.host, getattr(servers, port_name), security=security,
        tls_context=make_tls_context(None), timeout=10,
    )
    with pytest.raises(TLSFailed, match=r"certificate of 127\.0\.0\.1 is not trusted"):
        client.connect()
    lines = client_lines(client)
    if security is Security.STARTTLS:
        assert lines[-1] == "STARTTLS"  # nothing at all after the failed handshake
    else:
        assert lines == []  # not even EHLO: TLS comes first
    assert not client.tls_active
    # The session is gone, not left open for a plaintext retry.
    assert client._wire is None


def test_certificate_for_another_host_name_is_refused(servers, tls):
    # "127.1" reaches 127.0.0.1, but the certificate names only localhost and 127.0.0.1.
    client = SMTPClient("127.1", servers.smtp_tls_port, security=Security.TLS, tls_context=tls)
    with pytest.raises(TLSFailed, match="Hostname mismatch"):
        client.connect()
    client = SMTPClient("localhost", servers.smtp_tls_port, security=Security.TLS, tls_context=tls)
    with client:
        assert client.tls_active


# --- AUTH ---------------------------------------------------------------------------------


def test_wrong_password_is_auth_failed_with_postfix_words(servers, tls):
    with starttls_client(servers, tls) as client:
        with pytest.raises(AuthFailed) as failed:
            client.login(ALICE, "not-the-password")
    assert failed.value.code == 535
    assert "authentication failed" in failed.value.server_text.lower()
    assert "535 5.7.8" in str(failed.value)
    assert "not-the-password" not in client.transcript.text()


def test_utf8_password_authenticates_with_auth_plain(servers, tls):
    raw = simple_message("utf-8 password", sender=IVAN, to=IVAN)
    with starttls_client(servers, tls) as client:
        reply = client.login(IVAN, servers.users[IVAN])
        assert reply.code == 235
        client.send(IVAN, [IVAN], raw)
    assert "C: AUTH PLAIN ***" in client.transcript.text()
    assert servers.users[IVAN] not in client.transcript.text()
    servers.wait_for_count(IVAN, 1)
    assert_delivered_intact(delivered(servers, IVAN)[0], raw)


def test_utf8_password_with_one_wrong_character_is_refused(servers, tls):
    with starttls_client(servers, tls) as client:
        with pytest.raises(AuthFailed):
            client.login(IVAN, servers.users[IVAN].replace("€", "e"))


def test_utf8_password_authenticates_with_auth_login_too(servers, tls):
    with starttls_client(servers, tls) as client:
        assert client.auth("LOGIN", IVAN, servers.users[IVAN]).code == 235
    text = client.transcript.text()
    assert "C: AUTH LOGIN" in text and servers.users[IVAN] not in text
    assert "S: 334 ***" in text  # the challenges (base64 "Username:") are not logged either


# --- recipients ---------------------------------------------------------------------------


def test_relay_to_another_domain_is_refused_and_the_session_goes_on(servers, tls):
    with starttls_client(servers, tls) as client:
        client.login(ALICE, servers.users[ALICE])
        with pytest.raises(RecipientsRefused) as refused:
            client.send(ALICE, ["someone@example.com"], simple_message("relay"))
        (reply,) = refused.value.refused.values()
        assert reply.code // 100 == 5 and "Relay access denied" in reply.text
        assert list(refused.value.refused) == ["someone@example.com"]
        # The transaction was reset: the same session can send the next message.
        result = client.send(ALICE, [BOB], simple_message("after the refusal"))
    assert list(result.accepted) == [BOB]
    servers.wait_for_count(BOB, 1)
    assert header_values(delivered(servers, BOB)[0], "Subject") == ["after the refusal"]


def test_one_refused_recipient_among_valid_ones_is_a_partial_result(servers, tls):
    recipients = [BOB, "someone@example.com", "nobody@pochta.test", IVAN]
    with starttls_client(servers, tls) as client:
        client.login(ALICE, servers.users[ALICE])
        result = client.send(ALICE, recipients, simple_message("partly"))
    assert result.partial
    assert list(result.accepted) == [BOB, IVAN]
    assert set(result.refused) == {"someone@example.com", "nobody@pochta.test"}
    assert all(reply.code // 100 == 5 for reply in result.refused.values())
    assert "User unknown" in result.refused["nobody@pochta.test"].text
    servers.wait_for_count(BOB, 1)
    servers.wait_for_count(IVAN, 1)


def test_hundred_recipients_are_pipelined_and_each_gets_a_copy(servers, tls):
    recipients = [f"alice+{n}@pochta.test" for n in range(1, 101)]
    with starttls_client(servers, tls) as client:
        client.login(BOB, servers.users[BOB])
        assert client.capabilities.pipelining
        result = client.send(BOB, [*recipients, recipients[0]], simple_message("to many"))
    assert list(result.accepted) == recipients  # the duplicate went out once
    entries = list(client.transcript.entries)
    mail = next(i for i, e in enumerate(entries) if e.text.startswith("MAIL FROM:"))
    # MAIL, 100 RCPT and DATA in one write, before the server said anything.
    burst = entries[mail : mail + 102]
    assert [e.direction for e in burst] == [CLIENT] * 102
    assert burst[-1].text == "DATA"
    assert entries[mail + 102].direction == SERVER
    # virtual(8) delivers once per envelope recipient: alice+1 .. alice+100 are 100 copies,
    # each saying which address it came for.
    servers.wait_for_count(ALICE, 100)
    messages = delivered(servers, ALICE)
    assert sorted(v for m in messages for v in header_values(m, "Delivered-To")) == sorted(
        recipients
    )


# --- content ------------------------------------------------------------------------------


def test_smtputf8_address_and_utf8_headers_arrive_intact(servers, tls):
    sender = "алиса@pochta.test"
    recipient = "alice+почта@pochta.test"
    raw = (
        f"From: Алиса <{sender}>\r\nTo: {recipient}\r\nSubject: Привет, мир\r\n"
        "Date: Mon, 01 Jan 2024 12:00:00 +0000\r\nMessage-ID: <utf8@pochta.test>\r\n"
        "MIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\n"
        "Content-Transfer-Encoding: 8bit\r\n\r\nТело письма.\r\n"
    ).encode()
    with starttls_client(servers, tls) as client:
        client.login(ALICE, servers.users[ALICE])
        client.send(sender, [recipient], raw)
    mail_line = next(line for line in client_lines(client) if line.startswith("MAIL"))
    assert mail_line.split()[-2:] == ["BODY=8BITMIME", "SMTPUTF8"]
    servers.wait_for_count(ALICE, 1)
    (got,) = delivered(servers, ALICE)
    assert_delivered_intact(got, raw)
    assert header_values(got, "Delivered-To") == [recipient]
    assert header_values(got, "Return-Path") == [f"<{sender}>"]


def test_8bit_body_goes_with_8bitmime_and_without_smtputf8(servers, tls):
    body = "Привет из КОИ-8.\r\nЁлка\r\n".encode("koi8-r") + bytes(range(0x80, 0x100)) + b"\r\n"
    raw = (
        b"From: alice@pochta.test\r\nTo: bob@pochta.test\r\nSubject: koi8\r\n"
        b"Date: Mon, 01 Jan 2024 12:00:00 +0000\r\nMessage-ID: <koi8@pochta.test>\r\n"
        b"MIME-Version: 1.0\r\nContent-Type: text/plain; charset=koi8-r\r\n"
        b"Content-Transfer-Encoding: 8bit\r\n\r\n" + body
    )
    with starttls_client(servers, tls) as client:
        client.login(ALICE, servers.users[ALICE])
        client.send(ALICE, [BOB], raw)
    mail_line = next(line for line in client_lines(client) if line.startswith("MAIL"))
    assert "BODY=8BITMIME" in mail_line.split() and "SMTPUTF8" not in mail_line
    servers.wait_for_count(BOB, 1)
    assert_delivered_intact(delivered(servers, BOB)[0], raw)


@pytest.mark.parametrize(
    "separator",
    [b"\r\n\r\n", b"\n\n", b"\n\r\n", b"\r\r", b"\r\n\r"],
)
def test_8bit_body_after_any_line_ending_does_not_ask_for_smtputf8(servers, tls, separator):
    raw = (
        b"From: alice@pochta.test\r\nTo: bob@pochta.test\r\nSubject: ascii head\r\n"
        b"Date: Mon, 01 Jan 2024 12:00:00 +0000\r\nMessage-ID: <sep@pochta.test>\r\n"
        b"Content-Transfer-Encoding: 8bit" + separator + "тело\r\n".encode()
    )
    with starttls_client(servers, tls) as client:
        client.login(ALICE, servers.users[ALICE])
        client.send(ALICE, [BOB], raw)
    servers.wait_for_count(BOB, 1)
    assert_delivered_intact(delivered(servers, BOB)[0], raw)
    mail_line = next(line for line in client_lines(client) if line.startswith("MAIL"))
    assert mail_line.split()[2:] == [f"SIZE={len(raw)}", "BODY=8BITMIME"]


def test_message_whose_every_line_starts_with_dots(servers, tls):
    dot_lines = [
        b".", b"..", b"...", b". space", b".\ttab", b"..two", b".", b".", b"." * 300,
        b".\xd1\x82\xd0\xbe\xd1\x87\xd0\xba\xd0\xb0", b".\r", b"..\n", b"."
    ]
    # Bare CR and LF among them; the last "." has no line end at all.
    raw = (
        b"From: alice@pochta.test\r\nTo: bob@pochta.test\r\nSubject: dots\r\n"
        b"Date: Mon, 01 Jan 2024 12:00:00 +0000\r\nMessage-ID: <dots@pochta.test>\r\n"
        b"Content-Transfer-Encoding: 8bit\r\n\r\n" + b"\r\n".join(dot_lines)
    )
    with starttls_client(servers, tls) as client:
        client.login(ALICE, servers.users[ALICE])
        client.send(ALICE, [BOB], raw)
    servers.wait_for_count(BOB, 1)
    (got,) = delivered(servers, BOB)
    assert_delivered_intact(got, raw)
    # And back out through Dovecot, which stuffs them again, and POP3Client, which unstuffs.
    with POP3Client(servers.host, servers.pop3_tls_port, tls_context=tls, timeout=10) as pop:
        pop.login(BOB, servers.users[BOB])
        assert pop.retr_bytes(1) == got


def test_message_over_the_advertised_size_is_refused_before_sending(servers, tls):
    with starttls_client(servers, tls) as client:
        client.login(ALICE, servers.users[ALICE])
        limit = client.capabilities.size
        assert limit == 100 * 1024 * 1024
        with pytest.raises(MessageTooLarge, match=f"accepts at most {limit}"):
            client.send(ALICE, [BOB], io.BytesIO(b"Subject: big\r\n\r\nx\r\n"), size=limit + 1)
        assert not any(line.startswith("MAIL") for line in client_lines(client))
        client.send(ALICE, [BOB], simple_message("still fine"))
    servers.wait_for_count(BOB, 1)


def twenty_megabytes() -> bytes:
    """About 20 MB of random printable lines (some start with "."), line ends mixed: CRLF,
    bare LF and bare CR, with a CRLF split across the client's first chunk boundary and a
    bare CR at the end of its second chunk."""
    printable = bytes(range(0x20, 0x7F))
    table = bytes(printable[i % len(printable)] for i in range(256))
    noise = os.urandom(20 * 1024 * 1024).translate(table)
    endings = (b"\r\n", b"\n", b"\r")
    lines = [noise[start : start + 97] for start in range(0, len(noise), 97)]
    parts: list[bytes] = []
    for index, line in enumerate(lines):
        parts += (line, endings[index % 3])
    head = (
        b"From: alice@pochta.test\r\nTo: bob@pochta.test\r\nSubject: twenty megabytes\r\n"
        b"Date: Mon, 01 Jan 2024 12:00:00 +0000\r\nMessage-ID: <big@pochta.test>\r\n\r\n"
    )
    data = bytearray(head + b"".join(parts))
    data[DATA_CHUNK - 1 : DATA_CHUNK + 1] = b"\r\n"
    data[2 * DATA_CHUNK - 1] = ord("\r")
    data[2 * DATA_CHUNK] = ord("x")
    return bytes(data)


def test_twenty_megabyte_message_round_trip_streamed_both_ways(servers, tls, tmp_path: Path):
    raw = twenty_megabytes()
    outgoing = tmp_path / "outgoing.eml"
    outgoing.write_bytes(raw)
    with starttls_client(servers, tls) as client, outgoing.open("rb") as source:
        client.login(ALICE, servers.users[ALICE])
        result = client.send(ALICE, [BOB], source)
    assert result.reply.code == 250
    assert f"<message data, {len(raw)} bytes>" in client.transcript.text()
    servers.wait_for_count(BOB, 1, timeout=60)
    fetched = tmp_path / "fetched.eml"
    with POP3Client(servers.host, servers.pop3_tls_port, tls_context=tls, timeout=30) as pop:
        pop.login(BOB, servers.users[BOB])
        with fetched.open("wb") as sink:
            size = pop.retr(1, sink)
    got = fetched.read_bytes()
    assert size == len(got)
    assert_delivered_intact(got, raw)
