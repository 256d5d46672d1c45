"""The demo POP3 server against poplib and a raw socket: the three security modes, CAPA,
authentication, byte-exact retrieval, deletion semantics, pipelining, STLS injection, line
caps and maildrop locking."""

from __future__ import annotations

import hashlib
import poplib
import socket
import ssl
import time
from base64 import b64encode

import pytest

from app.demo.pop3server import MAX_COMMAND, Session
from app.mail.security import Security
from tests.demo.conftest import RawPOP3, trusting

TRICKY = (
    b"From: bob@demo.pochta.test\r\n"
    b"To: alice@demo.pochta.test\r\n"
    b"Subject: dots\r\n"
    b"\r\n"
    b".hidden line\r\n"
    b"..two dots\r\n"
    b".\r\n"
    b"8-bit: \xd0\xd2\xc9\xd7\xc5\xd4 \xff\x00 end\r\n"
    b"last line\r\n"
)


def simple(n: int) -> bytes:
    return f"Subject: message {n}\r\n\r\nbody of message {n}\r\nsecond line\r\n".encode()


def fill(server, user: str = "alice", count: int = 3) -> list[str]:
    return [server.mailboxes.deliver(user, simple(n)) for n in range(1, count + 1)]


# -- security modes ------------------------------------------------------------------------


def test_implicit_tls_verified_with_the_demo_ca(server, tls, open_pop3):
    fill(server)
    client = open_pop3(server.pop3_port, tls)
    client.user("alice")
    client.pass_("alice-demo")
    assert client.stat() == (3, sum(len(simple(n)) for n in (1, 2, 3)))
    assert client.sock.version() in {"TLSv1.2", "TLSv1.3"}


def test_implicit_tls_is_refused_by_a_client_that_does_not_trust_the_ca(server):
    context = ssl.create_default_context()  # system CAs only
    with pytest.raises(ssl.SSLCertVerificationError):
        poplib.POP3_SSL("localhost", server.pop3_port, context=context, timeout=5)


def test_stls_upgrades_then_login_works(make_server, open_pop3):
    server = make_server(pop3_security=Security.STARTTLS)
    fill(server, count=1)
    client = open_pop3(server.pop3_port)
    assert "STLS" in client.capa()
    client.stls(trusting(server))
    client.user("alice")
    client.pass_("alice-demo")
    assert client.stat()[0] == 1


def test_plain_mode_allows_plaintext_login(make_server, open_pop3):
    server = make_server(pop3_security=Security.NONE)
    client = open_pop3(server.pop3_port)
    client.user("bob")
    assert client.pass_("bob-demo").startswith(b"+OK")


# -- CAPA ----------------------------------------------------------------------------------


def test_capa_over_tls_lists_everything_but_stls(server, tls, open_pop3):
    capa = open_pop3(server.pop3_port, tls).capa()
    for name in ("TOP", "UIDL", "USER", "PIPELINING", "RESP-CODES", "AUTH-RESP-CODE"):
        assert name in capa
    assert capa["SASL"] == ["PLAIN"]
    assert capa["IMPLEMENTATION"] == ["Pochta-demo"]
    assert "STLS" not in capa


def test_capa_offers_stls_and_no_plaintext_auth_before_upgrade(make_server, open_pop3):
    server = make_server(pop3_security=Security.STARTTLS)
    client = open_pop3(server.pop3_port)
    before = client.capa()
    assert "STLS" in before
    assert "USER" not in before and "SASL" not in before
    client.stls(trusting(server))
    after = client.capa()
    assert "STLS" not in after
    assert "USER" in after and after["SASL"] == ["PLAIN"]


def test_capa_in_plain_mode_has_no_stls(make_server, open_pop3):
    server = make_server(pop3_security=Security.NONE)
    capa = open_pop3(server.pop3_port).capa()
    assert "STLS" not in capa
    assert "USER" in capa


# -- authentication ------------------------------------------------------------------------


def test_plaintext_auth_refused_before_stls(make_server, raw_pop3):
    server = make_server(pop3_security=Security.STARTTLS)
    client = raw_pop3(server.pop3_port)
    refused = b"-ERR [AUTH] Plaintext authentication disallowed on non-secure connections\r\n"
    assert client.command("USER alice") == refused
    assert client.command("PASS alice-demo") == refused
    assert client.auth_plain("alice", "alice-demo") == refused


def test_plain_mode_can_be_told_to_refuse_plaintext_auth(make_server, raw_pop3):
    server = make_server(pop3_security=Security.NONE, allow_plaintext_auth=False)
    client = raw_pop3(server.pop3_port)
    assert client.command("USER alice").startswith(b"-ERR [AUTH] Plaintext authentication")


def test_wrong_password_answers_auth_code(server, tls, raw_pop3):
    client = raw_pop3(server.pop3_port, tls)
    assert client.command("USER alice").startswith(b"+OK")
    assert client.command("PASS wrong").startswith(b"-ERR [AUTH] ")
    assert client.auth_plain("alice", "wrong").startswith(b"-ERR [AUTH] ")
    assert client.command("STAT").startswith(b"-ERR")  # still not logged in


def test_unknown_user_looks_like_a_wrong_password(server, tls, raw_pop3):
    client = raw_pop3(server.pop3_port, tls)
    assert client.command("USER mallory").startswith(b"+OK")
    assert client.command("PASS x").startswith(b"-ERR [AUTH] ")


def test_login_with_the_full_address(server, tls, open_pop3):
    client = open_pop3(server.pop3_port, tls)
    client.user("alice@demo.pochta.test")
    assert client.pass_("alice-demo").startswith(b"+OK")


def test_user_pass_with_utf8_credentials(make_server, open_pop3):
    server = make_server(users={"алиса": "пароль ёлка"})
    client = open_pop3(server.pop3_port, trusting(server))
    client.user("алиса")
    assert client.pass_("пароль ёлка").startswith(b"+OK")


def test_auth_plain_with_initial_response_and_utf8_password(make_server, raw_pop3):
    server = make_server(users={"alice": "пароль-ё"})
    client = raw_pop3(server.pop3_port, trusting(server))
    assert client.auth_plain("alice", "пароль-ё").startswith(b"+OK")
    assert client.command("STAT") == b"+OK 0 0\r\n"


def test_auth_plain_with_continuation(server, tls, raw_pop3):
    client = raw_pop3(server.pop3_port, tls)
    assert client.command("AUTH PLAIN") == b"+ \r\n"
    blob = b64encode(b"\0bob\0bob-demo")
    assert client.command(blob).startswith(b"+OK")


def test_auth_plain_cancelled_then_retried(server, tls, raw_pop3):
    client = raw_pop3(server.pop3_port, tls)
    assert client.command("AUTH PLAIN") == b"+ \r\n"
    assert client.command("*").startswith(b"-ERR")
    assert client.auth_plain("bob", "bob-demo").startswith(b"+OK")


def test_auth_plain_authzid_must_be_the_same_user(server, tls, raw_pop3):
    client = raw_pop3(server.pop3_port, tls)
    assert client.auth_plain("alice", "alice-demo", authzid="bob").startswith(b"-ERR [AUTH]")
    assert client.auth_plain("alice", "alice-demo", authzid="alice").startswith(b"+OK")


def test_auth_plain_malformed_and_unknown_mechanism(server, tls, raw_pop3):
    client = raw_pop3(server.pop3_port, tls)
    assert client.command("AUTH PLAIN not-base64!").startswith(b"-ERR")
    assert client.command("AUTH PLAIN " + b64encode(b"no-nuls").decode()).startswith(b"-ERR")
    assert client.command("AUTH CRAM-MD5").startswith(b"-ERR")
    assert client.command("AUTH") == b"+OK Mechanisms follow\r\n"
    assert client.multiline_body() == b"PLAIN\r\n.\r\n"


def test_apop_uses_the_greeting_timestamp(server, tls, open_pop3):
    client = open_pop3(server.pop3_port, tls)
    assert client.apop("alice", "alice-demo").startswith(b"+OK")


def test_apop_with_a_wrong_secret_fails(server, tls, open_pop3):
    client = open_pop3(server.pop3_port, tls)
    with pytest.raises(poplib.error_proto, match=r"\[AUTH\]"):
        client.apop("alice", "nope")
    timestamp = client.welcome.split()[-1]
    digest = hashlib.md5(timestamp + b"alice-demo", usedforsecurity=False).hexdigest()
    assert client._shortcmd(f"APOP alice {digest}").startswith(b"+OK")


# -- listing and retrieval -----------------------------------------------------------------


def test_stat_list_uidl_match_the_mailbox(server, tls, open_pop3):
    uids = fill(server)
    client = open_pop3(server.pop3_port, tls)
    client.user("alice")
    client.pass_("alice-demo")
    sizes = [len(simple(n)) for n in (1, 2, 3)]
    assert client.stat() == (3, sum(sizes))
    numbered = list(zip((1, 2, 3), sizes, uids, strict=True))
    assert client.list()[1] == [f"{n} {size}".encode() for n, size, _ in numbered]
    assert client.uidl()[1] == [f"{n} {uid}".encode() for n, _, uid in numbered]
    assert client.list(2) == f"+OK 2 {sizes[1]}".encode()
    assert client.uidl(3) == f"+OK 3 {uids[2]}".encode()
    for bad in ("4", "0", "-1", "x", "99999999999"):
        with pytest.raises(poplib.error_proto):
            client.list(bad)


def test_retr_returns_the_message_byte_exact(server, tls, open_pop3):
    server.mailboxes.deliver("alice", TRICKY)
    client = open_pop3(server.pop3_port, tls)
    client.user("alice")
    client.pass_("alice-demo")
    status, lines, _ = client.retr(1)
    assert status == f"+OK {len(TRICKY)} octets".encode()
    assert b"\r\n".join(lines) + b"\r\n" == TRICKY


def test_retr_dot_stuffs_on_the_wire(server, tls, raw_pop3):
    server.mailboxes.deliver("alice", TRICKY)
    client = raw_pop3(server.pop3_port, tls)
    client.login("alice", "alice-demo")
    assert client.command("RETR 1").startswith(b"+OK")
    body = client.multiline_body()
    expected = (
        TRICKY.replace(b"\r\n.", b"\r\n..")  # every line that starts with a dot
        + b".\r\n"
    )
    assert body == expected
    assert b"\r\n...two dots\r\n" in body and b"\r\n..\r\n" in body


def test_top_returns_headers_blank_line_and_n_body_lines(server, tls, open_pop3):
    server.mailboxes.deliver("alice", TRICKY)
    client = open_pop3(server.pop3_port, tls)
    client.user("alice")
    client.pass_("alice-demo")
    header = TRICKY.split(b"\r\n\r\n")[0].split(b"\r\n")
    assert client.top(1, 0)[1] == [*header, b""]
    assert client.top(1, 2)[1] == [*header, b"", b".hidden line", b"..two dots"]
    assert client.top(1, 100)[1] == TRICKY.split(b"\r\n")[:-1]
    with pytest.raises(poplib.error_proto):
        client._shortcmd("TOP 1")


def test_messages_delivered_during_a_session_wait_for_the_next_one(server, tls, open_pop3):
    fill(server, count=1)
    client = open_pop3(server.pop3_port, tls)
    client.user("alice")
    client.pass_("alice-demo")
    server.mailboxes.deliver("alice", simple(9))
    assert client.stat()[0] == 1


# -- deletion ------------------------------------------------------------------------------


def test_dele_then_quit_removes(server, tls, open_pop3):
    uids = fill(server)
    client = open_pop3(server.pop3_port, tls)
    client.user("alice")
    client.pass_("alice-demo")
    client.dele(2)
    assert [m.uid for m in server.mailboxes.list("alice")] == uids  # not before QUIT
    assert client.stat()[0] == 2
    with pytest.raises(poplib.error_proto):
        client.retr(2)
    with pytest.raises(poplib.error_proto):
        client.dele(2)
    assert client.quit().startswith(b"+OK")
    assert [m.uid for m in server.mailboxes.list("alice")] == [uids[0], uids[2]]


def test_dele_then_dropped_connection_keeps_everything(server, tls, raw_pop3):
    uids = fill(server)
    client = raw_pop3(server.pop3_port, tls)
    client.login("alice", "alice-demo")
    assert client.command("DELE 1").startswith(b"+OK")
    client.close()
    relogin = raw_pop3(server.pop3_port, tls)
    wait_for_login(relogin, "alice", "alice-demo")
    assert relogin.command("STAT").startswith(b"+OK 3 ")
    assert [m.uid for m in server.mailboxes.list("alice")] == uids


def test_rset_undeletes(server, tls, open_pop3):
    uids = fill(server)
    client = open_pop3(server.pop3_port, tls)
    client.user("alice")
    client.pass_("alice-demo")
    client.dele(1)
    client.dele(3)
    assert client.rset().startswith(b"+OK")
    assert client.stat()[0] == 3
    client.quit()
    assert [m.uid for m in server.mailboxes.list("alice")] == uids


def test_stop_drops_sessions_without_applying_deletes(make_server, raw_pop3):
    server = make_server()
    fill(server)
    client = raw_pop3(server.pop3_port, trusting(server))
    client.login("alice", "alice-demo")
    assert client.command("DELE 1").startswith(b"+OK")
    server.stop()
    assert client.read_until_closed() == b""
    assert server.mailboxes.count("alice") == 3


# -- pipelining, STLS injection, bounds ----------------------------------------------------


def test_pipelined_commands_are_answered_in_order(server, tls, raw_pop3):
    server.mailboxes.deliver("alice", TRICKY)
    uid = server.mailboxes.deliver("alice", simple(2))
    client = raw_pop3(server.pop3_port, tls)
    client.send(
        b"USER alice\r\nPASS alice-demo\r\nSTAT\r\nUIDL 2\r\nRETR 1\r\nNOOP\r\n"
        b"LIST 7\r\nDELE 2\r\nRSET\r\nQUIT\r\n"
    )
    assert client.line().startswith(b"+OK")  # USER
    assert client.line().startswith(b"+OK Logged in")  # PASS
    assert client.line() == f"+OK 2 {len(TRICKY) + len(simple(2))}\r\n".encode()
    assert client.line() == f"+OK 2 {uid}\r\n".encode()
    assert client.line().startswith(b"+OK")  # RETR
    assert client.multiline_body().endswith(b"last line\r\n.\r\n")
    assert client.line() == b"+OK\r\n"  # NOOP
    assert client.line().startswith(b"-ERR")  # LIST 7
    assert client.line().startswith(b"+OK Message 2 deleted")
    assert client.line().startswith(b"+OK")  # RSET
    assert client.read_until_closed() == b"+OK Bye\r\n"
    assert server.mailboxes.count("alice") == 2


def test_stls_discards_pipelined_plaintext(make_server):
    server = make_server(pop3_security=Security.STARTTLS)
    sock = socket.create_connection(("127.0.0.1", server.pop3_port), timeout=5)
    client = RawPOP3(sock)
    try:
        assert client.line().startswith(b"+OK")
        client.send(b"STLS\r\nCAPA\r\n")
        assert client.line() == b"+OK Begin TLS negotiation\r\n"
        sock.settimeout(0.1)
        with pytest.raises(TimeoutError):
            sock.recv(1)  # nothing more in the clear: the injected CAPA was not answered
        assert client.buffer == b""
        sock.settimeout(5)
        client.sock = trusting(server).wrap_socket(sock, server_hostname="localhost")
        # Had the CAPA been kept, its answer would come before QUIT's.
        client.send(b"QUIT\r\n")
        assert client.read_until_closed() == b"+OK Bye\r\n"
    finally:
        client.close()


def test_stls_is_refused_when_not_configured_or_already_secure(server, tls, raw_pop3):
    client = raw_pop3(server.pop3_port, tls)
    assert client.command("STLS").startswith(b"-ERR")
    assert client.command("NOOP").startswith(b"-ERR")  # NOOP only after login
    assert client.command("CAPA").startswith(b"+OK")
    assert b"STLS" not in client.multiline_body()


def test_command_line_over_the_cap_is_refused_and_the_session_goes_on(server, tls, raw_pop3):
    client = raw_pop3(server.pop3_port, tls)
    fits = "USER " + "a" * (MAX_COMMAND - len("USER ") - 2)  # 255 octets with CRLF
    assert client.command(fits).startswith(b"+OK")
    assert client.command("USER " + "a" * MAX_COMMAND) == b"-ERR Command line too long\r\n"
    assert client.command("X" * 20000) == b"-ERR Command line too long\r\n"
    client.login("alice", "alice-demo")


def test_unknown_and_out_of_state_commands(server, tls, raw_pop3):
    client = raw_pop3(server.pop3_port, tls)
    assert client.command("HELO there").startswith(b"-ERR")
    assert client.command("").startswith(b"-ERR")
    assert client.command(b"\xff\xfe").startswith(b"-ERR")
    assert client.command("RETR 1").startswith(b"-ERR")
    assert client.command("PASS alice-demo").startswith(b"-ERR")  # USER first
    client.login("alice", "alice-demo")
    assert client.command("USER bob").startswith(b"-ERR")
    assert client.command("retr 9").startswith(b"-ERR No such message")
    assert client.command("noop") == b"+OK\r\n"


def test_idle_timeout_logs_out(make_server, raw_pop3):
    server = make_server(idle_timeout=0.2)
    client = raw_pop3(server.pop3_port, trusting(server))
    started = time.monotonic()
    assert client.read_until_closed() == b"-ERR Autologout; idle for too long\r\n"
    assert time.monotonic() - started < 3


# -- locking -------------------------------------------------------------------------------


def wait_for_login(client: RawPOP3, user: str, password: str, seconds: float = 3) -> None:
    """Log in, retrying while a just-dropped session still holds the lock."""
    deadline = time.monotonic() + seconds
    while True:
        assert client.command(f"USER {user}").startswith(b"+OK")
        reply = client.command(f"PASS {password}")
        if reply.startswith(b"+OK") or time.monotonic() > deadline:
            assert reply.startswith(b"+OK"), reply
            return
        assert reply.startswith(b"-ERR [IN-USE]"), reply
        time.sleep(0.01)


def test_second_session_for_the_same_user_is_in_use(server, tls, raw_pop3):
    first = raw_pop3(server.pop3_port, tls)
    first.login("alice", "alice-demo")
    second = raw_pop3(server.pop3_port, tls)
    assert second.command("USER alice").startswith(b"+OK")
    assert second.command("PASS alice-demo").startswith(b"-ERR [IN-USE]")
    assert second.auth_plain("alice", "alice-demo").startswith(b"-ERR [IN-USE]")
    other = raw_pop3(server.pop3_port, tls)
    other.login("bob", "bob-demo")  # other users are not affected
    assert first.command("QUIT") == b"+OK Bye\r\n"
    second.login("alice", "alice-demo")


def test_quit_releases_the_lock_before_it_answers(server, tls, raw_pop3, monkeypatch):
    """A client that logs in again the moment it reads QUIT's "+OK" finds the maildrop free
    (checked at the moment the answer is sent, so the test does not depend on timing)."""
    free_when_answered: list[bool] = []
    send = Session.send

    def watching_send(self: Session, line: str) -> None:
        if line.startswith("+OK Bye"):
            free = self.mailboxes.try_lock("alice")
            if free:
                self.mailboxes.unlock("alice")
            free_when_answered.append(free)
        send(self, line)

    monkeypatch.setattr(Session, "send", watching_send)
    client = raw_pop3(server.pop3_port, tls)
    client.login("alice", "alice-demo")
    assert client.command("QUIT") == b"+OK Bye\r\n"
    assert free_when_answered == [True]
    raw_pop3(server.pop3_port, tls).login("alice", "alice-demo")


def test_lock_is_released_when_the_connection_drops(server, tls, raw_pop3):
    first = raw_pop3(server.pop3_port, tls)
    first.login("alice", "alice-demo")
    first.close()
    wait_for_login(raw_pop3(server.pop3_port, tls), "alice", "alice-demo")
