"""DemoMailServer as a whole: defaults, certificates, and starting and stopping cleanly
(no leaked threads, sockets or event loops), with and without clients connected."""

from __future__ import annotations

import gc
import poplib
import smtplib
import socket
import ssl
import threading
import time
import warnings

import pytest

from app.demo.server import DEMO_DOMAIN, DEMO_USERS, DemoMailServer
from app.mail.security import Security
from tests.demo.conftest import RawPOP3, trusting


def refuses_connections(port: int) -> bool:
    try:
        socket.create_connection(("127.0.0.1", port), timeout=1).close()
    except ConnectionRefusedError:
        return True
    return False


def test_defaults(tmp_path):
    server = DemoMailServer(tmp_path)
    assert server.host == "127.0.0.1"
    assert server.domain == DEMO_DOMAIN == "demo.pochta.test"
    assert server.users == dict(DEMO_USERS) == {"alice": "alice-demo", "bob": "bob-demo"}
    assert server.pop3_security is Security.TLS
    assert server.smtp_security is Security.STARTTLS
    assert server.mailboxes.users == ("alice", "bob")
    assert server.address("bob") == "bob@demo.pochta.test"
    assert server.ca_file == tmp_path / "tls" / "ca.pem"
    assert not server.running


def test_ports_are_real_after_start(server):
    assert server.running
    assert server.smtp_port > 0 and server.pop3_port > 0
    assert server.smtp_port != server.pop3_port


def test_certificate_is_reused_across_instances(tmp_path):
    first = DemoMailServer(tmp_path).ca_file.read_bytes()
    assert DemoMailServer(tmp_path).ca_file.read_bytes() == first


def test_expired_certificate_is_replaced(tmp_path):
    from app.demo.certs import make_certificates

    make_certificates(tmp_path / "tls", ("localhost", "127.0.0.1"), days=0)
    stale = (tmp_path / "tls" / "ca.pem").read_bytes()
    assert DemoMailServer(tmp_path).ca_file.read_bytes() != stale


def test_certificate_verifies_for_localhost_and_127_0_0_1(server):
    for name in ("localhost", "127.0.0.1"):
        with socket.create_connection(("127.0.0.1", server.pop3_port), timeout=5) as raw:
            with trusting(server).wrap_socket(raw, server_hostname=name) as tls:
                assert tls.recv(3) == b"+OK"


def test_start_stop_twice_leaks_nothing(tmp_path):
    threads_before = set(threading.enumerate())
    server = DemoMailServer(tmp_path)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        for _ in range(2):
            started = time.monotonic()
            with server:
                smtp_port, pop3_port = server.smtp_port, server.pop3_port
                assert not refuses_connections(smtp_port)
                assert not refuses_connections(pop3_port)
            assert time.monotonic() - started < 2
            assert refuses_connections(smtp_port) and refuses_connections(pop3_port)
            assert set(threading.enumerate()) == threads_before
        gc.collect()
    assert [str(w.message) for w in caught] == []


def test_stop_with_clients_mid_session(tmp_path):
    threads_before = set(threading.enumerate())
    server = DemoMailServer(tmp_path)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        server.start()
        context = trusting(server)
        smtp = smtplib.SMTP("localhost", server.smtp_port, timeout=5)
        smtp.starttls(context=context)
        smtp.login("alice", "alice-demo")
        smtp.mail("alice@demo.pochta.test")
        plain_smtp = smtplib.SMTP("localhost", server.smtp_port, timeout=5)
        plain_smtp.ehlo()
        pop3 = RawPOP3.connect(server.pop3_port, context)
        pop3.login("bob", "bob-demo")
        half_open = socket.create_connection(("127.0.0.1", server.pop3_port), timeout=5)
        started = time.monotonic()
        server.stop()
        assert time.monotonic() - started < 2
        assert pop3.read_until_closed() == b""
        with pytest.raises((smtplib.SMTPServerDisconnected, ssl.SSLError, OSError)):
            smtp.noop()
        with pytest.raises((smtplib.SMTPServerDisconnected, OSError)):
            plain_smtp.noop()
        for client in (smtp, plain_smtp, pop3, half_open):
            client.close()
        assert set(threading.enumerate()) == threads_before
        gc.collect()
    assert [str(w.message) for w in caught] == []


def test_start_twice_without_stop_is_an_error(server):
    with pytest.raises(RuntimeError):
        server.start()


def test_stop_is_idempotent(tmp_path):
    server = DemoMailServer(tmp_path)
    server.stop()
    server.start()
    server.stop()
    server.stop()
    assert not server.running


def test_busy_port_fails_start_without_leaking(tmp_path):
    threads_before = set(threading.enumerate())
    with socket.create_server(("127.0.0.1", 0)) as busy:
        port = busy.getsockname()[1]
        server = DemoMailServer(tmp_path, pop3_port=port)
        with pytest.raises(OSError):
            server.start()
    assert not server.running
    assert set(threading.enumerate()) == threads_before


def ipv6_loopback() -> bool:
    try:
        socket.create_server(("::1", 0), family=socket.AF_INET6).close()
    except OSError:
        return False
    return True


@pytest.mark.skipif(not ipv6_loopback(), reason="no IPv6 loopback here")
def test_binds_ipv6_loopback(make_server):
    server = make_server(host="::1", pop3_security=Security.NONE, smtp_security=Security.NONE)
    client = poplib.POP3("::1", server.pop3_port, timeout=5)
    try:
        client.user("alice")
        assert client.pass_("alice-demo").startswith(b"+OK")
    finally:
        client.close()
    with smtplib.SMTP("::1", server.smtp_port, timeout=5) as smtp:
        smtp.login("bob", "bob-demo")
        smtp.sendmail("bob@demo.pochta.test", ["alice@demo.pochta.test"], b"Subject: v6\r\n\r\n")
    assert server.mailboxes.count("alice") == 1
