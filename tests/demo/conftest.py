"""Fixtures for the demo mail server's tests: a started server per test and a raw POP3
client for what poplib cannot show (the bytes on the wire, pipelining, AUTH PLAIN)."""

from __future__ import annotations

import poplib
import socket
import ssl
from base64 import b64encode
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from app.demo.server import DemoMailServer


class RawPOP3:
    """A bare POP3 peer: send bytes, read lines or whole multi-line responses, exactly."""

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self.buffer = b""

    @classmethod
    def connect(cls, port: int, context: ssl.SSLContext | None = None) -> RawPOP3:
        sock = socket.create_connection(("127.0.0.1", port), timeout=5)
        if context is not None:
            sock = context.wrap_socket(sock, server_hostname="localhost")
        client = cls(sock)
        greeting = client.line()
        assert greeting.startswith(b"+OK"), greeting
        return client

    def send(self, data: bytes) -> None:
        self.sock.sendall(data)

    def line(self) -> bytes:
        """One line including its CRLF."""
        while b"\r\n" not in self.buffer:
            chunk = self.sock.recv(65536)
            if not chunk:
                raise ConnectionError(f"closed; unread: {self.buffer!r}")
            self.buffer += chunk
        line, _, self.buffer = self.buffer.partition(b"\r\n")
        return line + b"\r\n"

    def command(self, text: str | bytes) -> bytes:
        self.send((text.encode() if isinstance(text, str) else text) + b"\r\n")
        return self.line()

    def multiline_body(self) -> bytes:
        """The raw body after a +OK status line, up to and including the `.CRLF` end."""
        body = b""
        while True:
            line = self.line()
            body += line
            if line == b".\r\n":
                return body

    def login(self, user: str, password: str) -> None:
        assert self.command(f"USER {user}").startswith(b"+OK")
        reply = self.command(f"PASS {password}")
        assert reply.startswith(b"+OK"), reply

    def auth_plain(self, user: str, password: str, authzid: str = "") -> bytes:
        blob = b64encode(f"{authzid}\0{user}\0{password}".encode()).decode()
        return self.command(f"AUTH PLAIN {blob}")

    def read_until_closed(self) -> bytes:
        data, self.buffer = self.buffer, b""
        while chunk := self.sock.recv(65536):
            data += chunk
        return data

    def close(self) -> None:
        self.sock.close()


@pytest.fixture
def make_server(tmp_path: Path) -> Iterator[Callable[..., DemoMailServer]]:
    """Start DemoMailServers with any options; all are stopped after the test."""
    servers: list[DemoMailServer] = []

    def make(**options: object) -> DemoMailServer:
        server = DemoMailServer(tmp_path / f"demo{len(servers)}", **options)  # type: ignore[arg-type]
        server.start()
        servers.append(server)
        return server

    yield make
    for server in servers:
        server.stop()


@pytest.fixture
def server(make_server: Callable[..., DemoMailServer]) -> DemoMailServer:
    """The defaults: POP3 over implicit TLS, SMTP with STARTTLS."""
    return make_server()


def trusting(server: DemoMailServer) -> ssl.SSLContext:
    """A client context that trusts only this server's demo CA and checks the host name."""
    return ssl.create_default_context(cafile=str(server.ca_file))


@pytest.fixture
def tls(server: DemoMailServer) -> ssl.SSLContext:
    return trusting(server)


@pytest.fixture
def open_pop3() -> Iterator[Callable[..., poplib.POP3]]:
    """poplib clients (`open_pop3(port, context)`: implicit TLS when a context is given),
    closed after the test."""
    clients: list[poplib.POP3] = []

    def connect(port: int, context: ssl.SSLContext | None = None) -> poplib.POP3:
        if context is None:
            client = poplib.POP3("localhost", port, timeout=5)
        else:
            client = poplib.POP3_SSL("localhost", port, context=context, timeout=5)
        clients.append(client)
        return client

    yield connect
    for client in clients:
        client.close()


@pytest.fixture
def raw_pop3() -> Iterator[Callable[..., RawPOP3]]:
    """Connect RawPOP3 clients (`raw_pop3(port, context=None)`), closed after the test."""
    clients: list[RawPOP3] = []

    def connect(port: int, context: ssl.SSLContext | None = None) -> RawPOP3:
        client = RawPOP3.connect(port, context)
        clients.append(client)
        return client

    yield connect
    for client in clients:
        client.close()
