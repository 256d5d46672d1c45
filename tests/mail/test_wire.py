"""The line layer under both clients: how it waits for the server and how it reads a body
that has already arrived."""

from __future__ import annotations

import contextlib
import io
import socket
import threading
from collections.abc import Iterator

import pytest

from app.mail.wire import Wire

QUICKACK = getattr(socket, "TCP_QUICKACK", None)


class Recorder:
    """Stands in for the wire's socket and notes what the wire asks of it, in order."""

    def __init__(self, sock: socket.socket):
        self.sock = sock
        self.timeout: float | None = None
        self.calls: list[tuple[str, object]] = []

    def settimeout(self, timeout: float | None) -> None:
        self.timeout = timeout
        self.sock.settimeout(timeout)

    def setsockopt(self, level: int, option: int, value: int) -> None:
        self.calls.append(("setsockopt", (level, option, value)))
        self.sock.setsockopt(level, option, value)

    def recv(self, size: int) -> bytes:
        self.calls.append(("recv", self.timeout))
        return self.sock.recv(size)

    def __getattr__(self, name: str) -> object:
        return getattr(self.sock, name)

    def blocking_reads(self) -> int:
        return sum(1 for name, timeout in self.calls if name == "recv" and timeout)


@pytest.fixture
def tcp() -> Iterator[tuple[socket.socket, socket.socket]]:
    """A loopback TCP connection: (ours, the server's)."""
    with socket.create_server(("127.0.0.1", 0)) as listener:
        ours = socket.create_connection(listener.getsockname(), timeout=5)
        theirs, _ = listener.accept()
    with ours, theirs:
        yield ours, theirs


@pytest.mark.skipif(QUICKACK is None, reason="TCP_QUICKACK is Linux only")
def test_every_wait_for_the_server_first_asks_for_an_immediate_ack(tcp):
    ours, theirs = tcp
    recorder = Recorder(ours)
    wire = Wire(recorder, "server.test", timeout=5, max_line=1000)  # type: ignore[arg-type]
    sent = threading.Event()

    def answer() -> None:
        theirs.sendall(b"+OK one\r\n")
        sent.wait(5)
        theirs.sendall(b"+OK two\r\n")

    server = threading.Thread(target=answer, daemon=True)
    server.start()
    try:
        assert wire.read_line() == b"+OK one"
    finally:
        sent.set()
    assert wire.read_line() == b"+OK two"
    server.join(5)

    quickack = ("setsockopt", (socket.IPPROTO_TCP, QUICKACK, 1))
    reads = [k for k, (name, _) in enumerate(recorder.calls) if name == "recv"]
    assert len(reads) == 2
    assert all(k > 0 and recorder.calls[k - 1] == quickack for k in reads)


def test_a_body_of_many_tls_records_already_here_is_taken_in_one_wait(tls):
    ours, theirs = socket.socketpair()
    record = b"x" * 4094 + b"\r\n"
    records = 20  # 80 KB: within a socket pair's buffer, so the server finishes first
    done = threading.Event()

    def serve() -> None:
        with tls.server.wrap_socket(theirs, server_side=True) as server:
            for _ in range(records):  # one TLS record per send
                server.sendall(record)
            server.sendall(b".\r\n")
            done.set()
            with contextlib.suppress(OSError):
                server.recv(1)  # hold the connection until the client has read

    server = threading.Thread(target=serve, daemon=True)
    server.start()
    wire = Wire(ours, "localhost", timeout=5, max_line=8192)
    try:
        wire.start_tls(tls.client)
        assert done.wait(5)
        recorder = Recorder(wire._sock)  # type: ignore[arg-type]
        wire._sock = recorder  # type: ignore[assignment]
        body = io.BytesIO()
        assert wire.read_multiline(body, limit=10_000_000) == records * len(record)
        assert body.getvalue() == record * records
        # One wait for the first record; the rest were already here and taken without waiting.
        assert recorder.blocking_reads() == 1
        assert len(recorder.calls) > records / 2, "the records did not arrive one by one"
    finally:
        wire.close()
        server.join(5)
