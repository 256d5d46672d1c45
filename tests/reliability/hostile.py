"""Hostile mail servers: threads in the test process, on 127.0.0.1, that misbehave on cue.

A `HostileServer` plays an honest POP3 or SMTP server for its first `honest_sessions`
connections (so a login check can pass before a fetch meets the trouble), then does one
hostile thing at one point of the dialogue (`at`: the greeting, or the answer to a command):

    refused       nobody listens any more (the port is closed)
    silent        accepts, then never says a word
    endless_line  a line that never ends, as fast as the socket takes it
    huge_reply    a 100 MB answer made of well-formed lines
    hangup        half an answer, then the connection closes
    bad_cert      TLS from the first byte with a certificate nobody trusts
    trickle       an answer of many lines, each one just before the timeout, forever
    slow_replies  an honest dialogue, but every answer comes just before the timeout

Every thread ends when the client goes away, the server is closed, or after `MAX_SECONDS`,
so a test whose defence is missing fails on its own timeout instead of leaking a thread.
"""

from __future__ import annotations

import contextlib
import socket
import ssl
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from app.demo.certs import make_certificates

HOST = "127.0.0.1"
HUGE_BYTES = 100 * 1024 * 1024
MAX_SECONDS = 60.0
BEHAVIOURS = (
    "refused", "silent", "endless_line", "huge_reply", "hangup", "bad_cert", "trickle",
    "slow_replies",
)
_NOT_AT_A_POINT = ("refused", "bad_cert", "slow_replies")
HONEST_MESSAGE = (
    b"From: Honest <honest@pochta.test>\r\nTo: you@pochta.test\r\n"
    b"Subject: the one honest message\r\nMessage-ID: <honest@pochta.test>\r\n\r\n"
    b"Nothing to see here.\r\n"
)


def server_context(directory: Path) -> ssl.SSLContext:
    """A TLS server context with a fresh CA's certificate for localhost/127.0.0.1.

    The CA is trusted only by whoever is handed `directory / "ca.pem"`: a context made in
    a directory the app does not know is the "bad certificate".
    """
    certs = make_certificates(directory, ("localhost", HOST))
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(certs.server_cert, certs.server_key)
    return context


class _Gone(Exception):
    """The client went away or the server is closing."""


@dataclass
class _Peer:
    """One accepted connection, line by line, with a stop check on every wait."""

    sock: socket.socket
    stop: threading.Event
    buffer: bytes = b""

    def read_line(self) -> bytes:
        while b"\n" not in self.buffer:
            self.buffer += self._recv()
        line, self.buffer = self.buffer.split(b"\n", 1)
        return line.rstrip(b"\r")

    def _recv(self) -> bytes:
        deadline = time.monotonic() + MAX_SECONDS
        while not self.stop.is_set() and time.monotonic() < deadline:
            try:
                chunk = self.sock.recv(65536)
            except TimeoutError:
                continue
            except OSError:
                raise _Gone from None
            if not chunk:
                raise _Gone
            return chunk
        raise _Gone

    def send(self, data: bytes) -> None:
        if self.stop.is_set():
            raise _Gone
        try:
            self.sock.sendall(data)
        except OSError:  # the client closed; a timeout means it stopped reading
            raise _Gone from None

    def wait_for_close(self) -> None:
        with contextlib.suppress(_Gone):
            while True:
                self._recv()


@dataclass
class HostileServer:
    """POP3 or SMTP, honest for `honest_sessions` connections, then `behaviour` at `at`.

    `at` is "greeting" or a command verb ("CAPA", "EHLO", "RETR", ...): the answer that
    goes wrong. `tls` serves the honest sessions (and the hostile ones, except `bad_cert`)
    with implicit TLS; `rogue_tls` is the untrusted context `bad_cert` presents.
    `interval` paces `trickle` and `slow_replies` (just under the app's per-read timeout).
    """

    role: str
    behaviour: str
    at: str = "greeting"
    honest_sessions: int = 0
    tls: ssl.SSLContext | None = None
    rogue_tls: ssl.SSLContext | None = None
    interval: float = 1.5
    connections: int = 0
    sent_bytes: int = 0
    errors: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        assert self.role in ("pop3", "smtp"), self.role
        assert self.behaviour in BEHAVIOURS, self.behaviour
        self._stop = threading.Event()
        self._listener: socket.socket | None = socket.create_server((HOST, 0))
        self._listener.settimeout(0.2)
        self.port = self._listener.getsockname()[1]
        self._threads: list[threading.Thread] = []
        self._sockets: list[socket.socket] = []
        self._lock = threading.Lock()
        if self.behaviour == "refused" and self.honest_sessions == 0:
            self._close_listener()
        else:
            self._spawn(self._accept_loop, "hostile-accept")

    # -- life cycle ------------------------------------------------------------------------

    def _spawn(self, target: Callable[..., None], name: str, *args: object) -> None:
        thread = threading.Thread(target=target, args=args, name=name, daemon=True)
        with self._lock:
            self._threads.append(thread)
        thread.start()

    def _close_listener(self) -> None:
        with self._lock:
            listener, self._listener = self._listener, None
        if listener is not None:
            listener.close()

    def close(self) -> None:
        self._stop.set()
        self._close_listener()
        with self._lock:
            sockets, threads = list(self._sockets), list(self._threads)
        for sock in sockets:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
        for thread in threads:
            thread.join(10)
        for sock in sockets:
            sock.close()

    def __enter__(self) -> HostileServer:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def _accept_loop(self) -> None:
        while not self._stop.is_set():
            with self._lock:
                listener = self._listener
            if listener is None:
                return
            try:
                sock, _address = listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            number = self.connections
            self.connections += 1
            sock.settimeout(0.2)
            with self._lock:
                self._sockets.append(sock)
            honest = number < self.honest_sessions
            self._spawn(self._serve, f"hostile-{number}", sock, honest)
            if self.behaviour == "refused" and self.connections >= self.honest_sessions:
                self._close_listener()
                return

    def _serve(self, sock: socket.socket, honest: bool) -> None:
        try:
            peer = self._secure(sock, honest)
            if peer is None:
                return
            if self.role == "pop3":
                self._pop3(peer, honest)
            else:
                self._smtp(peer, honest)
        except _Gone:
            pass
        except Exception as exc:  # a thread must not raise: record it for the test
            self.errors.append(f"{type(exc).__name__}: {exc}")
        finally:
            with contextlib.suppress(OSError):
                sock.close()

    def _secure(self, sock: socket.socket, honest: bool) -> _Peer | None:
        context = self.tls
        if not honest and self.behaviour == "bad_cert":
            context = self.rogue_tls
        if context is None:
            return _Peer(sock, self._stop)
        sock.settimeout(10)
        try:
            wrapped = context.wrap_socket(sock, server_side=True)
        except (ssl.SSLError, OSError):  # the client refused our certificate: as intended
            return None
        wrapped.settimeout(0.2)
        with self._lock:
            self._sockets.append(wrapped)
        return _Peer(wrapped, self._stop)

    # -- the hostile acts --------------------------------------------------------------------

    def _misbehave(self, peer: _Peer, head: bytes, line: bytes, end: bytes) -> None:
        """Do the hostile thing in place of an answer that would begin with `head`, go on
        with lines like `line` and close with `end`."""
        kind = self.behaviour
        if kind == "silent":
            peer.wait_for_close()
        elif kind == "endless_line":
            peer.send(head[:-2] + b" ")
            chunk = b"x" * 65536
            deadline = time.monotonic() + MAX_SECONDS
            while time.monotonic() < deadline:
                peer.send(chunk)
                self.sent_bytes += len(chunk)
        elif kind == "huge_reply":
            peer.send(head)
            chunk = line * (1024 * 1024 // len(line))
            while self.sent_bytes < HUGE_BYTES:
                peer.send(chunk)
                self.sent_bytes += len(chunk)
            peer.send(end)
            peer.wait_for_close()
        elif kind == "hangup":
            peer.send(head + line[: len(line) // 2])
            raise _Gone
        elif kind == "trickle":
            peer.send(head)
            deadline = time.monotonic() + MAX_SECONDS
            while time.monotonic() < deadline:
                if self._stop.wait(self.interval):
                    raise _Gone
                peer.send(line)
                self.sent_bytes += len(line)
        else:
            raise AssertionError(f"{kind} has no place in a dialogue")

    def _hostile_here(self, honest: bool, point: str) -> bool:
        return not honest and self.at == point and self.behaviour not in _NOT_AT_A_POINT

    def _replier(self, peer: _Peer, honest: bool) -> Callable[[bytes], None]:
        """How this session answers: at once, or (slow_replies) just before the timeout."""
        if honest or self.behaviour != "slow_replies":
            return peer.send

        def slowly(data: bytes) -> None:
            if self._stop.wait(self.interval):
                raise _Gone
            peer.send(data)

        return slowly

    # -- POP3 ------------------------------------------------------------------------------

    def _pop3(self, peer: _Peer, honest: bool) -> None:
        greeting = b"+OK hostile POP3 ready\r\n"
        if self._hostile_here(honest, "greeting"):
            self._misbehave(peer, greeting, b"+OK more greeting\r\n", b"\r\n")
            return
        reply = self._replier(peer, honest)
        reply(greeting)
        message = HONEST_MESSAGE.replace(b"\r\n.", b"\r\n..")
        while True:
            command = peer.read_line().decode("ascii", "replace")
            verb = command.split(" ", 1)[0].upper()
            if self._hostile_here(honest, verb):
                body = b"X-Hostile: " + b"y" * 60 + b"\r\n"
                self._misbehave(peer, b"+OK here it comes\r\n", body, b".\r\n")
                return
            if verb == "CAPA":
                reply(b"+OK\r\nUSER\r\nUIDL\r\nTOP\r\n.\r\n")
            elif verb in ("USER", "PASS", "NOOP", "RSET", "DELE"):
                reply(b"+OK\r\n")
            elif verb == "STAT":
                reply(b"+OK 1 %d\r\n" % len(message))
            elif verb == "LIST":
                reply(b"+OK\r\n1 %d\r\n.\r\n" % len(message))
            elif verb == "UIDL":
                reply(b"+OK\r\n1 honest-message-1\r\n.\r\n")
            elif verb == "RETR":
                reply(b"+OK\r\n" + message + b".\r\n")
            elif verb == "QUIT":
                reply(b"+OK bye\r\n")
                return
            else:
                reply(b"-ERR unknown command\r\n")

    # -- SMTP ------------------------------------------------------------------------------

    def _smtp(self, peer: _Peer, honest: bool) -> None:
        greeting = b"220 hostile ESMTP\r\n"
        if self._hostile_here(honest, "greeting"):
            self._misbehave(peer, b"220-hostile ESMTP\r\n", b"220-" + b"z" * 70 + b"\r\n",
                            b"220 done\r\n")
            return
        reply = self._replier(peer, honest)
        reply(greeting)
        while True:
            command = peer.read_line().decode("ascii", "replace")
            verb = command.split(" ", 1)[0].upper()
            if self._hostile_here(honest, verb):
                self._misbehave(peer, b"250-hostile\r\n", b"250-X-" + b"w" * 60 + b"\r\n",
                                b"250 done\r\n")
                return
            if verb in ("EHLO", "HELO"):
                reply(b"250-hostile\r\n250-AUTH PLAIN LOGIN\r\n250 8BITMIME\r\n")
            elif verb == "AUTH":
                reply(b"235 2.7.0 accepted\r\n")
            elif verb == "QUIT":
                reply(b"221 bye\r\n")
                return
            else:
                reply(b"250 ok\r\n")
