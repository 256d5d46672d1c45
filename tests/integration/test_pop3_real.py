"""POP3Client and the fetch policy against the real Dovecot of the test setup: STLS and
implicit TLS, SASL PLAIN with a UTF-8 password, every command, pipelined RETR and DELE, what
QUIT (and its absence) does, and fetch_new into a directory of .eml files.

Mailboxes are seeded straight into the Maildirs (`RealServers.deliver`), so each test knows
exactly which bytes Dovecot must hand back.
"""

from __future__ import annotations

import contextlib
import io
import re
import ssl
from collections.abc import Iterator
from pathlib import Path

import pytest

from app.fetch.emldir import UID_LIST, EmlDirectory
from app.fetch.policy import fetch_new
from app.mail.errors import AuthFailed, MessageTooLarge, TLSFailed
from app.mail.pop3 import POP3Client, response_code
from app.mail.security import Security, make_tls_context
from app.mail.transcript import CLIENT, SERVER
from tests.support.realservers import RealServers

pytestmark = pytest.mark.realservers

ALICE = "alice@pochta.test"
BOB = "bob@pochta.test"
IVAN = "ivan@pochta.test"  # password "пароль-Ünï€"


@pytest.fixture
def servers(real_servers: RealServers) -> RealServers:
    """The session's servers with every mailbox emptied first."""
    for user in real_servers.users:
        real_servers.clear(user)
    return real_servers


@pytest.fixture
def tls(real_servers: RealServers) -> ssl.SSLContext:
    return make_tls_context(real_servers.ca_file)


def message(n: int, body_lines: int = 3) -> bytes:
    """A distinct message with dot lines and a size that grows with n."""
    body = b"".join(
        b".line %d of message %d %s\r\n" % (i, n, b"x" * ((n * 37 + i) % 200))
        for i in range(body_lines)
    )
    return (
        b"From: bob@pochta.test\r\nTo: alice@pochta.test\r\nSubject: message %d\r\n\r\n"
        b"%s..\r\n.\r\n" % (n, body)
    )


def logged_in(servers: RealServers, tls: ssl.SSLContext, user: str = ALICE) -> POP3Client:
    """A logged-in session over implicit TLS; the caller says QUIT or closes it."""
    client = POP3Client(servers.host, servers.pop3_tls_port, tls_context=tls, timeout=10)
    client.connect()
    client.login(user, servers.users[user])
    return client


@contextlib.contextmanager
def tls_session(
    servers: RealServers, tls: ssl.SSLContext, user: str = ALICE
) -> Iterator[POP3Client]:
    """A logged-in session over implicit TLS that says QUIT at the end."""
    client = logged_in(servers, tls, user)
    try:
        yield client
    finally:
        client.quit()


def stat_on_server(servers: RealServers, tls: ssl.SSLContext, user: str = ALICE) -> int:
    with tls_session(servers, tls, user) as client:
        return client.stat()[0]


# --- connecting and logging in ------------------------------------------------------------


def test_stls_upgrades_then_logs_in(servers, tls):
    client = POP3Client(
        servers.host, servers.pop3_starttls_port, security=Security.STARTTLS, tls_context=tls,
        timeout=10,
    )
    with client:
        assert client.tls_active
        assert not client.capabilities.stls  # CAPA again inside TLS
        assert "PLAIN" in client.capabilities.sasl
        response = client.login(ALICE, servers.users[ALICE])
        assert response.ok
        assert client.stat() == (0, 0)
    text = client.transcript.text()
    assert "TLS established (TLSv1." in text
    assert text.index("C: STLS") < text.index("C: AUTH PLAIN ***")


def test_implicit_tls_logs_in(servers, tls):
    client = POP3Client(servers.host, servers.pop3_tls_port, tls_context=tls, timeout=10)
    with client:
        assert client.tls_active
        assert client.login(BOB, servers.users[BOB]).ok
    assert next(e.text for e in client.transcript.entries if e.direction == CLIENT) == "CAPA"


def test_plaintext_mode_on_the_plain_port(servers):
    client = POP3Client(
        servers.host, servers.pop3_plain_port, security=Security.NONE, timeout=10
    )
    with client:
        assert not client.tls_active
        assert client.login(ALICE, servers.users[ALICE]).ok


@pytest.mark.parametrize(
    ("security", "port_name"),
    [(Security.STARTTLS, "pop3_starttls_port"), (Security.TLS, "pop3_tls_port")],
)
def test_untrusted_certificate_is_a_clear_error_without_plaintext_fallback(
    servers, security, port_name
):
    client = POP3Client(
        servers.host, getattr(servers, port_name), security=security,
        tls_context=make_tls_context(None), timeout=10,
    )
    with pytest.raises(TLSFailed, match=r"certificate of 127\.0\.0\.1 is not trusted"):
        client.connect()
    sent = [e.text for e in client.transcript.entries if e.direction == CLIENT]
    assert sent == (["CAPA", "STLS"] if security is Security.STARTTLS else [])
    assert client._wire is None


def test_utf8_password_logs_in_with_sasl_plain(servers, tls):
    servers.deliver(IVAN, message(1))
    for port, security in (
        (servers.pop3_tls_port, Security.TLS),
        (servers.pop3_starttls_port, Security.STARTTLS),
    ):
        client = POP3Client(
            servers.host, port, security=security, tls_context=tls, timeout=10
        )
        with client:
            client.login(IVAN, servers.users[IVAN])
            assert client.stat()[0] == 1
        text = client.transcript.text()
        assert "C: AUTH PLAIN ***" in text
        assert "C: USER" not in text and servers.users[IVAN] not in text


def test_utf8_password_logs_in_with_user_and_pass(servers, tls):
    client = POP3Client(servers.host, servers.pop3_tls_port, tls_context=tls, timeout=10)
    with client:
        client.user(IVAN)
        assert client.pass_(servers.users[IVAN]).ok
    assert "C: PASS ***" in client.transcript.text()
    assert servers.users[IVAN] not in client.transcript.text()


def test_certificate_for_another_host_name_is_refused(servers, tls):
    # "127.1" reaches 127.0.0.1, but the certificate names only localhost and 127.0.0.1.
    client = POP3Client("127.1", servers.pop3_starttls_port, security=Security.STARTTLS,
                        tls_context=tls, timeout=10)
    with pytest.raises(TLSFailed, match="Hostname mismatch"):
        client.connect()


def test_wrong_password_is_auth_failed_with_dovecots_words(servers, tls):
    client = POP3Client(servers.host, servers.pop3_tls_port, tls_context=tls, timeout=10)
    with client:
        with pytest.raises(AuthFailed) as failed:
            client.login(IVAN, "пароль")
    assert response_code(failed.value.reply) == "AUTH"
    assert "Authentication failed" in failed.value.server_text
    assert "пароль" not in client.transcript.text()


# --- the commands -------------------------------------------------------------------------


def test_stat_list_uidl_top_and_retr(servers, tls):
    raws = [message(n) for n in (1, 2, 3)]
    servers.deliver_many(ALICE, raws)
    with tls_session(servers, tls) as client:
        assert client.capabilities.uidl and client.capabilities.top
        assert client.stat() == (3, sum(len(raw) for raw in raws))
        assert client.list() == {n: len(raw) for n, raw in enumerate(raws, 1)}
        assert client.list_one(2) == len(raws[1])
        uids = client.uidl()
        assert sorted(uids) == [1, 2, 3]
        assert len(set(uids.values())) == 3
        assert all(re.fullmatch(r"[0-9a-fA-F]{16}", uid) for uid in uids.values())
        assert client.uidl_one(3) == uids[3]
        head = raws[1].split(b"\r\n\r\n")[0] + b"\r\n\r\n"
        assert client.top(2, 0) == head
        assert client.top(2, 1) == head + raws[1].split(b"\r\n")[4] + b"\r\n"
        assert [client.retr_bytes(n) for n in (3, 1, 2)] == [raws[2], raws[0], raws[1]]
        sink = io.BytesIO()
        assert client.retr(1, sink) == len(raws[0])
        assert sink.getvalue() == raws[0]
    # The same UIDs next time: that is what keeps a fetch from taking a message twice.
    with tls_session(servers, tls) as client:
        assert client.uidl() == uids


def test_pipelined_retr_many_of_two_hundred_messages(servers, tls):
    raws = [message(n, body_lines=n % 7) for n in range(200)]
    servers.deliver_many(ALICE, raws)
    sinks: dict[int, io.BytesIO] = {}

    def open_sink(number: int) -> io.BytesIO:
        sinks[number] = io.BytesIO()
        return sinks[number]

    with tls_session(servers, tls) as client:
        assert client.capabilities.pipelining
        results = list(client.retr_many(range(1, 201), open_sink))
    assert [r.number for r in results] == list(range(1, 201))
    assert all(r.error is None for r in results)
    assert [sinks[n].getvalue() for n in range(1, 201)] == raws
    assert [r.size for r in results] == [len(raw) for raw in raws]
    # More than one RETR was on the wire before Dovecot's first answer to one.
    entries = list(client.transcript.entries)
    first = next(i for i, e in enumerate(entries) if e.text == "RETR 1")
    answered = next(i for i, e in enumerate(entries[first:], first) if e.direction == SERVER)
    assert answered - first == 64


def test_a_refused_retr_in_the_pipeline_does_not_disturb_the_others(servers, tls):
    raws = [message(1), message(2)]
    servers.deliver_many(ALICE, raws)
    with tls_session(servers, tls) as client:
        results = list(client.retr_many([1, 7, 2], lambda _n: io.BytesIO()))
        assert [r.number for r in results] == [1, 7, 2]
        assert results[1].error is not None and not results[1].error.ok
        assert [results[0].sink.getvalue(), results[2].sink.getvalue()] == raws
        responses = client.dele_many([2, 9])
        assert responses[2].ok and not responses[9].ok
        assert client.stat()[0] == 1  # the session goes on


def test_retr_over_the_size_cap_is_refused(servers, tls):
    servers.deliver(ALICE, b"Subject: big\r\n\r\n" + b"y" * 5000 + b"\r\n")
    client = POP3Client(
        servers.host, servers.pop3_tls_port, tls_context=tls, timeout=10,
        max_message_bytes=4096,
    )
    with client:
        client.login(ALICE, servers.users[ALICE])
        with pytest.raises(MessageTooLarge):
            client.retr_bytes(1)


def test_dele_many_then_quit_empties_the_mailbox(servers, tls):
    servers.deliver_many(ALICE, [message(n) for n in range(10)])
    with tls_session(servers, tls) as client:
        responses = client.dele_many(range(1, 11))
        assert sorted(responses) == list(range(1, 11))
        assert all(response.ok for response in responses.values())
        assert client.stat() == (0, 0)  # marked, within the session
        assert client.quit().ok
    assert servers.count(ALICE) == 0
    assert stat_on_server(servers, tls) == 0


def test_dele_without_quit_deletes_nothing(servers, tls):
    servers.deliver_many(ALICE, [message(n) for n in range(5)])
    client = logged_in(servers, tls)
    assert all(r.ok for r in client.dele_many(range(1, 6)).values())
    client.close()  # the connection drops: no QUIT, no UPDATE state
    assert stat_on_server(servers, tls) == 5
    assert servers.count(ALICE) == 5


def test_rset_unmarks_deleted_messages(servers, tls):
    servers.deliver_many(ALICE, [message(1), message(2)])
    with tls_session(servers, tls) as client:
        client.dele(1)
        assert client.stat()[0] == 1
        client.rset()
        assert client.stat()[0] == 2
    assert stat_on_server(servers, tls) == 2


# --- fetch_new into a directory ------------------------------------------------------------


def eml_files(directory: Path) -> list[bytes]:
    return sorted(path.read_bytes() for path in directory.glob("*.eml"))


def test_fetch_new_with_delete_moves_everything_off_the_server(servers, tls, tmp_path):
    raws = [message(n) for n in range(5)]
    servers.deliver_many(ALICE, raws)
    destination = EmlDirectory(tmp_path / "mail")
    report = fetch_new(
        logged_in(servers, tls), destination, delete=True, max_message_bytes=10**6
    )
    assert (report.on_server, report.new, report.deleted, report.failures) == (5, 5, 5, [])
    assert eml_files(tmp_path / "mail") == sorted(raws)
    assert len((tmp_path / "mail" / UID_LIST).read_text().split()) == 5
    assert servers.count(ALICE) == 0
    again = fetch_new(
        logged_in(servers, tls), destination, delete=True, max_message_bytes=10**6
    )
    assert (again.on_server, again.new, again.deleted) == (0, 0, 0)


def test_fetch_new_keeping_mail_on_the_server_takes_only_what_is_new(servers, tls, tmp_path):
    first = [message(n) for n in range(3)]
    servers.deliver_many(ALICE, first)
    destination = EmlDirectory(tmp_path / "mail")
    report = fetch_new(
        logged_in(servers, tls), destination, delete=False, max_message_bytes=10**6
    )
    assert (report.on_server, report.new, report.deleted) == (3, 3, 0)
    assert servers.count(ALICE) == 3
    later = [message(n) for n in range(3, 5)]
    servers.deliver_many(ALICE, later)
    report = fetch_new(
        logged_in(servers, tls), destination, delete=False, max_message_bytes=10**6
    )
    assert (report.on_server, report.new) == (5, 2)
    assert eml_files(tmp_path / "mail") == sorted(first + later)
    assert stat_on_server(servers, tls) == 5


def test_fetch_new_leaves_a_message_over_the_limit_on_the_server(servers, tls, tmp_path):
    small, big = message(1), b"Subject: big\r\n\r\n" + b"z" * 3000 + b"\r\n"
    servers.deliver_many(ALICE, [big, small])
    report = fetch_new(
        logged_in(servers, tls), EmlDirectory(tmp_path / "mail"), delete=True,
        max_message_bytes=2000,
    )
    assert (report.new, report.deleted) == (1, 1)
    assert len(report.failures) == 1 and "over the limit of 2000" in report.failures[0]
    assert eml_files(tmp_path / "mail") == [small]
    with tls_session(servers, tls) as client:
        assert client.retr_bytes(1) == big


def test_fetch_new_in_several_batches_with_delete(servers, tls, tmp_path):
    raws = [message(n, body_lines=1) for n in range(250)]
    servers.deliver_many(ALICE, raws)
    batches = []
    report = fetch_new(
        logged_in(servers, tls), EmlDirectory(tmp_path / "mail"), delete=True,
        max_message_bytes=10**6, batch_size=100,
        progress=lambda progress: batches.append((progress.done, progress.new)),
    )
    assert (report.new, report.deleted, report.failures) == (250, 250, [])
    assert batches == [(0, 0), (100, 100), (200, 200), (250, 250)]
    assert eml_files(tmp_path / "mail") == sorted(raws)
    assert servers.count(ALICE) == 0
