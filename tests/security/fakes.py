"""Hostile or watchful peers for the security tests, all on loopback, all in threads.

- `FakeMailServer`: a tiny plaintext POP3 + SMTP server that accepts any user name with any
  password (or only the ones it is told), greets with whatever words a test wants, and
  records every command line and connection. It stands for a server an attacker runs.
- `RecordingRelay`: a TCP relay in front of a real (plaintext) server that keeps every byte
  the client sent, so a test can read the exact SMTP commands that reached the server.
- `AcceptRecorder`: a listening socket that only counts the connections it accepted, to
  prove that something was refused before any connection was made.
"""

from __future__ import annotations

import contextlib
import socket
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

HOST = "127.0.0.1"


def _listener() -> socket.socket:
    sock = socket.create_server((HOST, 0))
    sock.settimeout(0.2)
    return sock


class _Threads:
    """Accepts connections on a listener and serves each in its own thread until stop()."""

    def __init__(self, serve: Callable[[socket.socket], None]) -> None:
        self._serve = serve
        self._listener = _listener()
        self.port: int = self._listener.getsockname()[1]
        self._stopping = threading.Event()
        self._lock = threading.Lock()
        self._open: list[socket.socket] = []
        self._threads: list[threading.Thread] = []
        self.accepted = 0
        self._acceptor = threading.Thread(target=self._accept_loop, daemon=True)
        self._acceptor.start()

    def _accept_loop(self) -> None:
        while not self._stopping.is_set():
            try:
                conn, _peer = self._listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            with self._lock:
                if self._stopping.is_set():
                    conn.close()
                    return
                self.accepted += 1
                self._open.append(conn)
                thread = threading.Thread(target=self._run, args=(conn,), daemon=True)
                self._threads.append(thread)
            thread.start()

    def _run(self, conn: socket.socket) -> None:
        try:
            conn.settimeout(10)
            self._serve(conn)
        except OSError:
            pass
        finally:
            with contextlib.suppress(OSError):
                conn.close()

    def stop(self) -> None:
        self._stopping.set()
        self._acceptor.join(5)
        self._listener.close()
        with self._lock:
            connections, threads = list(self._open), list(self._threads)
        for conn in connections:
            with contextlib.suppress(OSError):
                conn.shutdown(socket.SHUT_RDWR)
        for thread in threads:
            thread.join(5)


def _lines(conn: socket.socket) -> Callable[[], bytes | None]:
    """A reader of CRLF lines from `conn` (None at end of stream), without their ending."""
    buffer = bytearray()

    def readline() -> bytes | None:
        while b"\n" not in buffer:
            chunk = conn.recv(65536)
            if not chunk:
                return None
            buffer.extend(chunk)
        end = buffer.index(b"\n")
        line = bytes(buffer[: end + 1])
        del buffer[: end + 1]
        return line.rstrip(b"\r\n")

    return readline


@dataclass
class FakeMailServer:
    """Plaintext POP3 and SMTP that say yes to anyone (unless `passwords` says otherwise).

    `pop3_lines` / `smtp_lines` keep every command line each side received, in order;
    `messages` are what POP3 offers (raw bytes with CRLF endings).
    """

    greeting: str = "fake POP3 ready"
    smtp_greeting: str = "fake ESMTP ready"
    passwords: dict[str, str] | None = None  # None: any user name, any password
    refusal: str = "authentication failed"
    messages: Sequence[bytes] = ()
    pop3_lines: list[bytes] = field(default_factory=list)
    smtp_lines: list[bytes] = field(default_factory=list)
    smtp_data: list[bytes] = field(default_factory=list)

    def __post_init__(self) -> None:
        self._pop3 = _Threads(self._serve_pop3)
        self._smtp = _Threads(self._serve_smtp)
        self.pop3_port = self._pop3.port
        self.smtp_port = self._smtp.port

    @property
    def pop3_connections(self) -> int:
        return self._pop3.accepted

    @property
    def smtp_connections(self) -> int:
        return self._smtp.accepted

    def stop(self) -> None:
        self._pop3.stop()
        self._smtp.stop()

    def __enter__(self) -> FakeMailServer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def _accepts(self, user: str, password: str) -> bool:
        return self.passwords is None or self.passwords.get(user) == password

    # -- POP3 ----------------------------------------------------------------------------

    def _serve_pop3(self, conn: socket.socket) -> None:
        readline = _lines(conn)

        def say(text: str) -> None:
            conn.sendall(text.encode() + b"\r\n")

        say(f"+OK {self.greeting}")
        user = None
        while (line := readline()) is not None:
            self.pop3_lines.append(line)
            verb, _, argument = line.decode("utf-8", "replace").partition(" ")
            verb = verb.upper()
            if verb == "CAPA":
                say("+OK\r\nUSER\r\nUIDL\r\n.")
            elif verb == "USER":
                user = argument
                say("+OK")
            elif verb == "PASS":
                if user is not None and self._accepts(user, argument):
                    say("+OK maildrop ready")
                else:
                    say(f"-ERR {self.refusal}")
            elif verb == "STAT":
                say(f"+OK {len(self.messages)} {sum(map(len, self.messages))}")
            elif verb == "LIST":
                listing = "".join(f"{i} {len(m)}\r\n" for i, m in enumerate(self.messages, 1))
                say(f"+OK\r\n{listing}.")
            elif verb == "UIDL":
                listing = "".join(f"{i} fake-{i}\r\n" for i in range(1, len(self.messages) + 1))
                say(f"+OK\r\n{listing}.")
            elif verb == "RETR":
                data = self.messages[int(argument) - 1]
                stuffed = b"\r\n".join(
                    b"." + x if x.startswith(b".") else x for x in data.split(b"\r\n")
                )
                conn.sendall(b"+OK\r\n" + stuffed.rstrip(b"\r\n") + b"\r\n.\r\n")
            elif verb == "QUIT":
                say("+OK bye")
                return
            else:
                say("+OK")

    # -- SMTP ----------------------------------------------------------------------------

    def _serve_smtp(self, conn: socket.socket) -> None:
        readline = _lines(conn)

        def say(text: str) -> None:
            conn.sendall(text.encode() + b"\r\n")

        say(f"220 {self.smtp_greeting}")
        while (line := readline()) is not None:
            self.smtp_lines.append(line)
            verb = line.split(b" ", 1)[0].upper()
            if verb == b"EHLO":
                say("250-fake\r\n250-AUTH PLAIN LOGIN\r\n250 8BITMIME")
            elif verb == b"AUTH":
                say("235 2.7.0 accepted")
            elif verb == b"DATA":
                say("354 go ahead")
                data = bytearray()
                while (chunk := readline()) is not None and chunk != b".":
                    data.extend(chunk + b"\r\n")
                self.smtp_data.append(bytes(data))
                say("250 2.0.0 queued")
            elif verb == b"QUIT":
                say("221 bye")
                return
            else:
                say("250 OK")


class RecordingRelay:
    """Relays TCP connections to `target_port` and keeps what the client sent on each."""

    def __init__(self, target_port: int, target_host: str = HOST) -> None:
        self.target = (target_host, target_port)
        self.sent: list[bytearray] = []
        self._threads = _Threads(self._relay)
        self.port = self._threads.port

    @property
    def client_bytes(self) -> bytes:
        """Everything every client sent, connection after connection."""
        return b"".join(bytes(chunk) for chunk in self.sent)

    def command_lines(self) -> list[bytes]:
        return self.client_bytes.split(b"\r\n")

    def _relay(self, client: socket.socket) -> None:
        record = bytearray()
        self.sent.append(record)
        with socket.create_connection(self.target, timeout=10) as upstream:
            upstream.settimeout(10)

            def pump_back() -> None:
                with contextlib.suppress(OSError):
                    while data := upstream.recv(65536):
                        client.sendall(data)
                with contextlib.suppress(OSError):
                    client.shutdown(socket.SHUT_WR)

            back = threading.Thread(target=pump_back, daemon=True)
            back.start()
            with contextlib.suppress(OSError):
                while data := client.recv(65536):
                    record.extend(data)
                    upstream.sendall(data)
            with contextlib.suppress(OSError):
                upstream.shutdown(socket.SHUT_WR)
            back.join(10)

    def stop(self) -> None:
        self._threads.stop()

    def __enter__(self) -> RecordingRelay:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


class AcceptRecorder:
    """A port where a mail server could be: it accepts, counts, and hangs up."""

    def __init__(self) -> None:
        self._threads = _Threads(lambda conn: None)
        self.port = self._threads.port

    @property
    def accepted(self) -> int:
        return self._threads.accepted

    def settle(self, seconds: float = 0.3) -> int:
        """The number of accepted connections after giving late ones time to arrive."""
        time.sleep(seconds)
        return self.accepted

    def stop(self) -> None:
        self._threads.stop()

    def __enter__(self) -> AcceptRecorder:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()
