"""Smoke tests of the test setup's real Dovecot and Postfix, using smtplib/poplib as peers.

They prove what the end-to-end tests rely on: every port with its TLS mode and a verifiable
certificate, AUTH for every user (UTF-8 passwords too), delivery of the test domain only,
the advertised extensions, fast failed logins, and the mailbox helpers.
"""

from __future__ import annotations

import base64
import os
import poplib
import re
import shutil
import smtplib
import socket
import ssl
import tempfile
import time
from email.message import EmailMessage
from pathlib import Path

import pytest

from tests.support.realservers import RealServers, start_servers, stop_servers

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
    """Verifies the servers' certificate (and host name) against the setup's CA only."""
    return ssl.create_default_context(cafile=real_servers.ca_file)


def message(sender: str, to: str, subject: str, body: str = "Hello.\n") -> EmailMessage:
    msg = EmailMessage()
    msg["From"], msg["To"], msg["Subject"] = sender, to, subject
    msg.set_content(body)
    return msg


def auth_plain(user: str, password: str) -> str:
    return base64.b64encode(f"\0{user}\0{password}".encode()).decode("ascii")


def pop3_login(servers: RealServers, user: str) -> poplib.POP3:
    pop = poplib.POP3(servers.host, servers.pop3_plain_port, timeout=10)
    pop.user(user)
    pop.pass_(servers.users[user])
    return pop


def subjects_on_server(servers: RealServers, user: str) -> list[str]:
    pop = pop3_login(servers, user)
    try:
        count, _size = pop.stat()
        subjects = []
        for number in range(1, count + 1):
            headers = pop.top(number, 0)[1]
            subjects += [line.decode()[9:] for line in headers if line.startswith(b"Subject: ")]
        return subjects
    finally:
        pop.quit()


def all_pids() -> list[int]:
    return [int(name) for name in os.listdir("/proc") if name.isdigit()]


def session_of(pid: int) -> int | None:
    """The session of a live process (each master leads one); None once gone or a zombie."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return None if fields[0] in ("Z", "X") else int(fields[3])


# --- the processes ------------------------------------------------------------------------


def test_every_port_listens_on_loopback_only(servers: RealServers):
    ports = {
        servers.smtp_starttls_port, servers.smtp_tls_port, servers.smtp_plain_port,
        servers.pop3_starttls_port, servers.pop3_tls_port, servers.pop3_plain_port,
    }
    listening: dict[int, set[str]] = {}
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        for row in Path(table).read_text().splitlines()[1:]:
            local, _remote, state = row.split()[1:4]
            address, port = local.rsplit(":", 1)
            if state == "0A":  # LISTEN
                listening.setdefault(int(port, 16), set()).add(address)
    assert {port: listening.get(port) for port in ports} == {port: {"0100007F"} for port in ports}


def test_a_second_instance_runs_beside_the_first_and_stops_completely(servers: RealServers):
    workdir = Path(tempfile.mkdtemp(prefix="pochta-second-"))
    try:
        with start_servers(workdir) as running:
            other = running.servers
            assert other.smtp_plain_port != servers.smtp_plain_port
            other.deliver(ALICE, b"Subject: elsewhere\r\n\r\nx\r\n")
            assert subjects_on_server(other, ALICE) == ["elsewhere"]
            assert subjects_on_server(servers, ALICE) == []
            masters = [
                int((workdir / name).read_text().split()[0])
                for name in ("postfix-queue/pid/master.pid", "dovecot/run/master.pid")
            ]
        assert [pid for pid in all_pids() if session_of(pid) in masters] == []
        with pytest.raises(OSError):
            socket.create_connection((other.host, other.pop3_plain_port), timeout=2).close()
    finally:
        stop_servers(workdir)
        shutil.rmtree(workdir, ignore_errors=True)


# --- SMTP submission ----------------------------------------------------------------------


def test_starttls_port_offers_auth_only_after_tls_and_delivers(servers, tls):
    with smtplib.SMTP(servers.host, servers.smtp_starttls_port, timeout=10) as smtp:
        smtp.ehlo()
        assert smtp.has_extn("starttls")
        assert not smtp.has_extn("auth")
        smtp.starttls(context=tls)
        smtp.ehlo()
        assert "PLAIN" in smtp.esmtp_features["auth"].split()
        smtp.login(ALICE, servers.users[ALICE])
        smtp.send_message(message(ALICE, BOB, "over starttls"))
    servers.wait_for_count(BOB, 1)
    assert subjects_on_server(servers, BOB) == ["over starttls"]


def test_implicit_tls_port_delivers(servers, tls):
    with smtplib.SMTP_SSL(servers.host, servers.smtp_tls_port, context=tls, timeout=10) as smtp:
        smtp.login(BOB, servers.users[BOB])
        smtp.send_message(message(BOB, ALICE, "over implicit tls"))
    servers.wait_for_count(ALICE, 1)
    assert subjects_on_server(servers, ALICE) == ["over implicit tls"]


def test_plain_port_offers_auth_without_tls_and_delivers(servers):
    with smtplib.SMTP(servers.host, servers.smtp_plain_port, timeout=10) as smtp:
        smtp.ehlo()
        assert not smtp.has_extn("starttls")
        assert "PLAIN" in smtp.esmtp_features["auth"].split()
        smtp.login(ALICE, servers.users[ALICE])
        smtp.send_message(message(ALICE, ALICE, "over plaintext"))
    servers.wait_for_count(ALICE, 1)
    assert subjects_on_server(servers, ALICE) == ["over plaintext"]


def test_certificate_is_checked_against_the_setup_ca(servers):
    with smtplib.SMTP(servers.host, servers.smtp_starttls_port, timeout=10) as smtp:
        smtp.ehlo()
        with pytest.raises(ssl.SSLCertVerificationError):
            smtp.starttls(context=ssl.create_default_context(cafile=None, capath="/nonexistent"))
    context = ssl.create_default_context(cafile=servers.ca_file)
    for name in ("localhost", "127.0.0.1"):
        with socket.create_connection((servers.host, servers.pop3_tls_port), timeout=10) as raw:
            with context.wrap_socket(raw, server_hostname=name) as sock:
                assert sock.recv(100).startswith(b"+OK")


def test_submission_without_auth_is_refused(servers):
    with smtplib.SMTP(servers.host, servers.smtp_plain_port, timeout=10) as smtp:
        with pytest.raises(smtplib.SMTPRecipientsRefused) as refused:
            smtp.sendmail(ALICE, [BOB], b"Subject: anonymous\r\n\r\nx\r\n")
    assert refused.value.recipients[BOB][0] // 100 == 5


@pytest.mark.parametrize(
    "recipient", ["someone@example.com", "alice@localhost", "alice@[127.0.0.1]", "alice"]
)
def test_mail_to_any_other_domain_is_refused(servers, recipient):
    with smtplib.SMTP(servers.host, servers.smtp_plain_port, timeout=10) as smtp:
        smtp.login(ALICE, servers.users[ALICE])
        with pytest.raises(smtplib.SMTPRecipientsRefused) as refused:
            smtp.sendmail(ALICE, [recipient], b"Subject: relay\r\n\r\nx\r\n")
    code, text = refused.value.recipients[recipient]
    assert code // 100 == 5, text


def test_unknown_user_of_the_test_domain_is_refused(servers):
    with smtplib.SMTP(servers.host, servers.smtp_plain_port, timeout=10) as smtp:
        smtp.login(ALICE, servers.users[ALICE])
        with pytest.raises(smtplib.SMTPRecipientsRefused) as refused:
            smtp.sendmail(ALICE, ["nobody@pochta.test"], b"Subject: who\r\n\r\nx\r\n")
    assert refused.value.recipients["nobody@pochta.test"][0] // 100 == 5


def test_submission_advertises_pipelining_smtputf8_8bitmime_and_a_large_size(servers):
    with smtplib.SMTP(servers.host, servers.smtp_plain_port, timeout=10) as smtp:
        smtp.ehlo()
        for extension in ("pipelining", "smtputf8", "8bitmime", "size"):
            assert smtp.has_extn(extension), extension
        assert int(smtp.esmtp_features["size"]) >= 60 * 1024 * 1024


def test_utf8_password_authenticates_with_auth_plain_over_smtp(servers, tls):
    with smtplib.SMTP(servers.host, servers.smtp_starttls_port, timeout=10) as smtp:
        smtp.starttls(context=tls)
        smtp.ehlo()
        code, reply = smtp.docmd("AUTH", "PLAIN " + auth_plain(IVAN, "пароль-Ünï€"))
        assert code == 235, reply
        smtp.sendmail(IVAN, [IVAN], b"Subject: utf-8 password\r\n\r\nx\r\n")
    servers.wait_for_count(IVAN, 1)


def test_wrong_utf8_password_is_refused_over_smtp(servers):
    with smtplib.SMTP(servers.host, servers.smtp_plain_port, timeout=10) as smtp:
        smtp.ehlo()
        code, _reply = smtp.docmd("AUTH", "PLAIN " + auth_plain(IVAN, "пароль-Ünï"))
    assert code == 535


def test_message_with_smtputf8_and_utf8_headers_is_delivered_intact(servers):
    raw = (
        f"From: {BOB}\r\nTo: {ALICE}\r\nSubject: Привет, мир\r\n"
        "Content-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: 8bit\r\n"
        "\r\nТело письма.\r\n"
    ).encode()
    with smtplib.SMTP(servers.host, servers.smtp_plain_port, timeout=10) as smtp:
        smtp.login(BOB, servers.users[BOB])
        smtp.sendmail(BOB, [ALICE], raw, mail_options=["SMTPUTF8", "BODY=8BITMIME"])
    servers.wait_for_count(ALICE, 1)
    pop = pop3_login(servers, ALICE)
    try:
        lines = pop.retr(1)[1]
    finally:
        pop.quit()
    assert "Subject: Привет, мир".encode() in lines
    assert "Тело письма.".encode() in lines


def test_hundred_recipients_with_a_plus_detail_all_reach_alice(servers):
    recipients = [f"alice+{n}@pochta.test" for n in range(100)]
    with smtplib.SMTP(servers.host, servers.smtp_plain_port, timeout=30) as smtp:
        smtp.login(BOB, servers.users[BOB])
        refused = smtp.sendmail(BOB, recipients, b"Subject: to many\r\n\r\nx\r\n")
    assert refused == {}
    servers.wait_for_count(ALICE, 100)


def test_twenty_megabyte_message_is_accepted_and_delivered(servers):
    line = b"x" * 76 + b"\r\n"
    raw = b"Subject: big\r\n\r\n" + line * (20 * 1024 * 1024 // len(line))
    with smtplib.SMTP(servers.host, servers.smtp_plain_port, timeout=60) as smtp:
        smtp.login(ALICE, servers.users[ALICE])
        smtp.sendmail(ALICE, [BOB], raw)
    servers.wait_for_count(BOB, 1)
    pop = pop3_login(servers, BOB)
    try:
        (_number, size), = [entry.split() for entry in pop.list()[1]]
    finally:
        pop.quit()
    assert int(size) > len(raw)


def test_wrong_password_is_refused_quickly_every_time(servers):
    for _attempt in range(3):
        started = time.monotonic()
        with smtplib.SMTP(servers.host, servers.smtp_plain_port, timeout=10) as smtp:
            smtp.ehlo()
            code, _reply = smtp.docmd("AUTH", "PLAIN " + auth_plain(ALICE, "wrong"))
        assert code == 535
        pop = poplib.POP3(servers.host, servers.pop3_plain_port, timeout=10)
        pop.user(ALICE)
        with pytest.raises(poplib.error_proto):
            pop.pass_("wrong")
        pop.close()
        assert time.monotonic() - started < 2


# --- POP3 ---------------------------------------------------------------------------------


def test_pop3_starttls_port_capabilities_and_stls(servers, tls):
    pop = poplib.POP3(servers.host, servers.pop3_starttls_port, timeout=10)
    try:
        capabilities = pop.capa()
        for name in ("PIPELINING", "UIDL", "TOP", "STLS", "USER"):
            assert name in capabilities, name
        assert "PLAIN" in capabilities["SASL"]
        pop.stls(context=tls)
        assert "STLS" not in pop.capa()
        pop.user(ALICE)
        assert pop.pass_(servers.users[ALICE]).startswith(b"+OK")
    finally:
        pop.quit()


def test_pop3s_port_verifies_and_logs_in(servers, tls):
    pop = poplib.POP3_SSL(servers.host, servers.pop3_tls_port, context=tls, timeout=10)
    try:
        assert "PLAIN" in pop.capa()["SASL"]
        pop.user(BOB)
        assert pop.pass_(servers.users[BOB]).startswith(b"+OK")
    finally:
        pop.quit()


def test_pop3_plain_port_allows_plaintext_login(servers):
    pop = poplib.POP3(servers.host, servers.pop3_plain_port, timeout=10)
    try:
        assert "PLAIN" in pop.capa()["SASL"]
        pop.user(ALICE)
        assert pop.pass_(servers.users[ALICE]).startswith(b"+OK")
    finally:
        pop.quit()


def test_utf8_password_authenticates_over_pop3_with_pass_and_auth_plain(servers, tls):
    pop = poplib.POP3_SSL(servers.host, servers.pop3_tls_port, context=tls, timeout=10)
    try:
        assert pop.encoding.lower().replace("-", "") == "utf8"
        pop.user(IVAN)
        assert pop.pass_("пароль-Ünï€").startswith(b"+OK")
    finally:
        pop.quit()
    pop = poplib.POP3(servers.host, servers.pop3_plain_port, timeout=10)
    try:
        assert pop._shortcmd("AUTH PLAIN " + auth_plain(IVAN, "пароль-Ünï€")).startswith(b"+OK")
    finally:
        pop.quit()


def test_pop3_uidl_is_uid_and_uidvalidity_in_hex(servers):
    servers.deliver(ALICE, b"Subject: one\r\n\r\nx\r\n")
    pop = pop3_login(servers, ALICE)
    try:
        (_number, uidl), = [entry.split() for entry in pop.uidl()[1]]
    finally:
        pop.quit()
    assert re.fullmatch(rb"[0-9a-fA-F]{16}", uidl)


# --- the mailbox helpers ------------------------------------------------------------------


def test_delivered_message_is_visible_to_pop3_at_once_and_byte_exact(servers):
    raw = b"From: bob@pochta.test\r\nSubject: seeded\r\n\r\nline one\r\nline two\r\n"
    for expected in (1, 2):
        servers.deliver(ALICE, raw)
        assert servers.count(ALICE) == expected
        pop = pop3_login(servers, ALICE)
        try:
            count, size = pop.stat()
            assert (count, size) == (expected, expected * len(raw))
            _response, lines, _octets = pop.retr(expected)
        finally:
            pop.quit()
        assert b"\r\n".join(lines) + b"\r\n" == raw


def test_deliver_many_keeps_the_order_and_clear_empties(servers):
    servers.deliver_many(BOB, (f"Subject: m{n}\r\n\r\nx\r\n".encode() for n in range(50)))
    assert servers.count(BOB) == 50
    assert subjects_on_server(servers, BOB) == [f"m{n}" for n in range(50)]
    servers.clear(BOB)
    assert servers.count(BOB) == 0
    assert subjects_on_server(servers, BOB) == []


def test_uids_keep_rising_after_clear(servers):
    servers.deliver(ALICE, b"Subject: before\r\n\r\nx\r\n")
    first = pop3_login(servers, ALICE)
    try:
        before = first.uidl(1).split()[2]
    finally:
        first.quit()
    servers.clear(ALICE)
    servers.deliver(ALICE, b"Subject: after\r\n\r\nx\r\n")
    second = pop3_login(servers, ALICE)
    try:
        after = second.uidl(1).split()[2]
    finally:
        second.quit()
    assert after != before


def test_wait_for_count_reports_a_shortfall(servers):
    with pytest.raises(AssertionError, match="holds 0 messages, not 1"):
        servers.wait_for_count(ALICE, 1, timeout=0.1)


def test_unknown_user_has_no_maildir(servers):
    with pytest.raises(KeyError):
        servers.count("mallory@pochta.test")
    assert os.path.isdir(servers.maildir(ALICE) / "new")
