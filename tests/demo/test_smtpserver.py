"""The demo SMTP server against smtplib: STARTTLS and implicit TLS verified with the demo CA,
AUTH before sending, no relaying, exact delivery with trace headers, SMTPUTF8, SIZE."""

from __future__ import annotations

import smtplib
import socket
from base64 import b64encode
from collections.abc import Callable, Iterator
from email import policy
from email.parser import BytesParser

import pytest

from app.demo.server import DemoMailServer
from app.mail.security import Security
from tests.demo.conftest import trusting

ALICE = "alice@demo.pochta.test"
BOB = "bob@demo.pochta.test"
MESSAGE = (
    b"From: Bob <bob@demo.pochta.test>\r\n"
    b"To: Alice <alice@demo.pochta.test>\r\n"
    b"Subject: exact bytes\r\n"
    b"\r\n"
    b".a line that starts with a dot\r\n"
    b"..and one with two\r\n"
    b"8-bit: \xd0\xd2\xc9\xd7\xc5\xd4\r\n"
    b"end\r\n"
)


@pytest.fixture
def open_smtp() -> Iterator[Callable[..., smtplib.SMTP]]:
    """smtplib clients: `open_smtp(server)` speaks the server's mode (STARTTLS done, TLS
    verified); `login=False` leaves it unauthenticated. Closed after the test."""
    clients: list[smtplib.SMTP] = []

    def connect(server: DemoMailServer, *, login: str | None = "bob") -> smtplib.SMTP:
        context = trusting(server)
        if server.smtp_security is Security.TLS:
            client = smtplib.SMTP_SSL("localhost", server.smtp_port, context=context, timeout=5)
        else:
            client = smtplib.SMTP("localhost", server.smtp_port, timeout=5)
        clients.append(client)
        if server.smtp_security is Security.STARTTLS:
            client.starttls(context=context)
        if login:
            client.login(login, server.users[login])
        return client

    yield connect
    for client in clients:
        client.close()


def only_message(server: DemoMailServer, user: str) -> bytes:
    messages = server.mailboxes.list(user)
    assert len(messages) == 1
    return server.mailboxes.read(user, messages[0].uid)


def test_starttls_auth_plain_send_and_read_back_over_pop3(server, tls, open_smtp, open_pop3):
    client = open_smtp(server)
    assert client.sock.version() in {"TLSv1.2", "TLSv1.3"}
    assert client.sendmail(BOB, [ALICE], MESSAGE) == {}
    pop3 = open_pop3(server.pop3_port, tls)
    pop3.user("alice")
    pop3.pass_("alice-demo")
    _, lines, _ = pop3.retr(1)
    fetched = b"\r\n".join(lines) + b"\r\n"
    trace, _, rest = fetched.partition(b"From: Bob")
    assert b"From: Bob" + rest == MESSAGE  # exactly what was sent, after the trace headers
    assert trace.startswith(b"Authentication-Results: demo.pochta.test;\r\n\tauth=pass")
    assert b"smtp.auth=bob\r\n" in trace
    assert b"Received: from " in trace and b"with ESMTPSA" in trace
    assert f"for <{ALICE}>;".encode() in trace


def test_trace_headers_parse_as_headers(server, open_smtp):
    open_smtp(server).sendmail(BOB, [ALICE], MESSAGE)
    parsed = BytesParser(policy=policy.default).parsebytes(only_message(server, "alice"))
    assert parsed["Subject"] == "exact bytes"
    assert "by demo.pochta.test" in parsed["Received"]
    assert parsed["Authentication-Results"].startswith("demo.pochta.test;")


def test_auth_login_works_too(server, open_smtp):
    client = open_smtp(server, login=None)
    client.ehlo()
    client.user, client.password = "alice", "alice-demo"
    code, _ = client.auth("LOGIN", client.auth_login)
    assert code == 235


def test_auth_is_not_offered_before_starttls(server, open_smtp):
    client = smtplib.SMTP("localhost", server.smtp_port, timeout=5)
    try:
        client.ehlo()
        assert client.has_extn("starttls")
        assert not client.has_extn("auth")
        code, text = client.docmd("AUTH", "PLAIN AGJvYgBib2ItZGVtbw==")
        assert code == 538, text
        client.starttls(context=trusting(server))
        client.ehlo()
        assert client.esmtp_features["auth"].split() == ["LOGIN", "PLAIN"]
    finally:
        client.close()


def test_sending_requires_authentication(server, open_smtp):
    client = open_smtp(server, login=None)
    with pytest.raises(smtplib.SMTPSenderRefused) as refused:
        client.sendmail(BOB, [ALICE], MESSAGE)
    assert refused.value.smtp_code == 530
    assert server.mailboxes.count("alice") == 0


def test_wrong_password_is_refused(server, open_smtp):
    client = open_smtp(server, login=None)
    with pytest.raises(smtplib.SMTPAuthenticationError) as refused:
        client.login("bob", "not-it")
    assert refused.value.smtp_code == 535


def test_relay_to_another_domain_is_refused(server, open_smtp):
    client = open_smtp(server)
    with pytest.raises(smtplib.SMTPRecipientsRefused) as refused:
        client.sendmail(BOB, ["someone@example.com"], MESSAGE)
    code, text = refused.value.recipients["someone@example.com"]
    assert code == 550 and b"Relay access denied" in text


def test_only_the_refused_recipient_is_dropped(server, open_smtp):
    client = open_smtp(server)
    rejected = client.sendmail(BOB, [ALICE, "carol@demo.pochta.test"], MESSAGE)
    assert rejected["carol@demo.pochta.test"][0] == 550
    assert b"User unknown" in rejected["carol@demo.pochta.test"][1]
    assert server.mailboxes.count("alice") == 1


def test_plus_addresses_and_case_reach_the_user_once(server, open_smtp):
    client = open_smtp(server)
    client.sendmail(BOB, ["alice+lab@demo.pochta.test", "ALICE@Demo.Pochta.Test", BOB], MESSAGE)
    assert b"for <alice+lab@demo.pochta.test>" in only_message(server, "alice")
    assert only_message(server, "bob").endswith(MESSAGE)


def test_smtputf8_with_a_utf8_address(make_server, open_smtp):
    server = make_server(users={"алиса": "пароль", "bob": "bob-demo"})
    client = open_smtp(server)
    client.ehlo()
    assert client.has_extn("smtputf8") and client.has_extn("8bitmime")
    to = "алиса@demo.pochta.test"
    body = f"From: bob@demo.pochta.test\r\nTo: {to}\r\nSubject: Привет\r\n\r\nтекст\r\n".encode()
    client.sendmail(BOB, [to], body, mail_options=["SMTPUTF8", "BODY=8BITMIME"])
    delivered = only_message(server, "алиса")
    assert delivered.endswith(body)
    assert f"for <{to}>;".encode() in delivered
    assert b"with UTF8SMTPSA" in delivered


def test_size_limit_is_advertised_and_enforced(make_server, open_smtp):
    server = make_server(max_message_bytes=2000)
    client = open_smtp(server)
    client.ehlo()
    assert client.esmtp_features["size"] == "2000"
    line = b"x" * 70 + b"\r\n"
    with pytest.raises(smtplib.SMTPSenderRefused) as declared:
        client.sendmail(BOB, [ALICE], b"Subject: big\r\n\r\n" + line * 40)  # smtplib: SIZE=
    assert declared.value.smtp_code == 552
    assert client.mail(BOB)[0] == 250  # no SIZE= declared: the DATA itself is cut off
    assert client.rcpt(ALICE)[0] == 250
    assert client.data(b"Subject: big\r\n\r\n" + line * 40)[0] == 552
    assert client.sendmail(BOB, [ALICE], b"Subject: small\r\n\r\n" + line) == {}
    assert b"Subject: small" in only_message(server, "alice")


def test_implicit_tls(make_server, open_smtp):
    server = make_server(smtp_security=Security.TLS)
    client = open_smtp(server)
    client.sendmail(BOB, [ALICE], MESSAGE)
    assert b"with ESMTPSA" in only_message(server, "alice")


def test_plain_mode_allows_auth_without_tls(make_server, open_smtp):
    server = make_server(smtp_security=Security.NONE)
    client = open_smtp(server)
    assert client.sock.__class__.__name__ == "socket"
    client.sendmail(BOB, [ALICE], MESSAGE)
    assert b"with ESMTPA" in only_message(server, "alice")


def test_bare_lf_is_stored_as_crlf(server, open_smtp):
    open_smtp(server).sendmail(BOB, [ALICE], b"Subject: lf\n\nline one\nline two\r\n")
    stored = only_message(server, "alice")
    assert stored.endswith(b"Subject: lf\r\n\r\nline one\r\nline two\r\n")
    assert b"\n" not in stored.replace(b"\r\n", b"")


def test_pipelined_transaction_is_answered_in_order(make_server):
    server = make_server(smtp_security=Security.NONE)
    plain = b64encode(b"\0bob\0bob-demo")
    with socket.create_connection(("127.0.0.1", server.smtp_port), timeout=5) as sock:
        replies = sock.makefile("rb")
        assert replies.readline().startswith(b"220 ")
        sock.sendall(b"EHLO client.test\r\n")
        features = []
        while (line := replies.readline())[3:4] == b"-":
            features.append(line)
        assert b"250-PIPELINING\r\n" in features and line == b"250 HELP\r\n"
        sock.sendall(
            b"AUTH PLAIN " + plain + b"\r\n"
            b"MAIL FROM:<bob@demo.pochta.test>\r\n"
            b"RCPT TO:<nobody@example.com>\r\n"
            b"RCPT TO:<alice@demo.pochta.test>\r\n"
            b"DATA\r\n"
        )
        codes = [replies.readline()[:3] for _ in range(5)]
        assert codes == [b"235", b"250", b"550", b"250", b"354"]
        sock.sendall(b"Subject: piped\r\n\r\nbody\r\n.\r\nNOOP\r\nQUIT\r\n")
        assert [replies.readline()[:3] for _ in range(3)] == [b"250", b"250", b"221"]
    assert only_message(server, "alice").endswith(b"Subject: piped\r\n\r\nbody\r\n")
    assert b"from client.test (127.0.0.1)" in only_message(server, "alice")


def test_starttls_discards_pipelined_plaintext(server):
    with socket.create_connection(("127.0.0.1", server.smtp_port), timeout=5) as sock:
        replies = sock.makefile("rb")
        assert replies.readline().startswith(b"220 ")
        sock.sendall(b"EHLO client.test\r\n")
        while replies.readline()[3:4] == b"-":
            pass
        sock.sendall(b"STARTTLS\r\nRSET\r\n")
        assert replies.readline().startswith(b"220 ")
        with trusting(server).wrap_socket(sock, server_hostname="localhost") as tls:
            tls.sendall(b"QUIT\r\n")
            assert tls.makefile("rb").read() == b"221 Bye\r\n"  # no reply to the RSET


def test_control_characters_in_a_recipient_are_refused(server, open_smtp):
    client = open_smtp(server)
    assert client.mail(BOB)[0] == 250
    for address in (b'"alice+\rx"@demo.pochta.test', b'"alice+\x01x"@demo.pochta.test'):
        client.send(b"RCPT TO:<" + address + b">\r\n")
        assert client.getreply()[0] == 501
    assert client.rcpt(ALICE)[0] == 250


@pytest.mark.parametrize("security", [Security.TLS, Security.STARTTLS])
def test_stop_right_after_a_tls_client_quit_does_not_fail(make_server, open_smtp, security):
    """After QUIT the TLS session is closing but not gone; on some Pythons (3.11.2) aborting
    such a transport raised AttributeError and the whole stop() failed."""
    server = make_server(smtp_security=security)
    client = open_smtp(server, login=None)
    assert client.docmd("QUIT")[0] == 221  # the client's socket stays open, unread
    server.stop()
    with pytest.raises(OSError):
        socket.create_connection(("127.0.0.1", server.smtp_port), timeout=2).close()
