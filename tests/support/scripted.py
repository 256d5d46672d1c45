"""In-process fake mail servers that play a script of expected commands and canned replies.

Protocol edge cases (an injected reply before STARTTLS, a line over the cap, a stall, a
connection dropped mid-RETR) need a peer that misbehaves exactly as told, byte for byte. A
script is a list of steps run in order on one accepted connection; a command that does not
match what the script expects is recorded and fails the test at `verify()`.

A script that waits for several commands before its first reply also proves pipelining: a
client that waits for each reply before sending the next command never gets one, and times
out.
"""

from __future__ import annotations

import re
import socket
import ssl
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field


@dataclass(frozen=True)
class Send:
    """Write these bytes to the client."""

    data: bytes


@dataclass(frozen=True)
class Expect:
    """Read one line (without CRLF); it must fully match the regex."""

    pattern: bytes


@dataclass(frozen=True)
class ReadData:
    """Read SMTP DATA up to and including CRLF.CRLF; kept in `server.data`."""


@dataclass(frozen=True)
class StartTLS:
    """Wrap the connection in TLS (the server side of STARTTLS/STLS)."""


@dataclass(frozen=True)
class Pause:
    """Say nothing for a while (a stalled server)."""

    seconds: float


@dataclass(frozen=True)
class Hangup:
    """Close the connection abruptly."""


Step = Send | Expect | ReadData | StartTLS | Pause | Hangup


@dataclass
class ScriptedServer:
    """Serves one connection on 127.0.0.1 from a script, in a background thread."""

    script: Sequence[Step]
    tls_context: ssl.SSLContext | None = None
    implicit_tls: bool = False
    received: list[bytes] = field(default_factory=list)
    data: list[bytes] = field(default_factory=list)
    failures: list[str] = field(default_factory=list)
    finished: bool = False

    def __post_init__(self) -> None:
        self._listener = socket.create_server(("127.0.0.1", 0))
        self._listener.settimeout(10)
        self.port = self._listener.getsockname()[1]
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._buffer = b""

    def __enter__(self) -> ScriptedServer:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._thread.join(timeout=15)
        self._listener.close()

    def verify(self) -> None:
        """Fail the test unless every step ran and every command matched."""
        self._thread.join(timeout=15)
        assert not self.failures, "\n".join(self.failures)
        assert self.finished, "the client stopped before the script's end"

    # -- the server's side ------------------------------------------------------------

    def _run(self) -> None:
        try:
            conn, _ = self._listener.accept()
        except OSError as exc:
            self.failures.append(f"no client connected: {exc}")
            return
        conn.settimeout(10)
        try:
            if self.implicit_tls:
                conn = self._wrap(conn)
            for index, step in enumerate(self.script):
                conn = self._play(conn, step, index)
                if isinstance(step, Hangup) or self.failures:
                    break
            else:
                self.finished = True
        except (OSError, ssl.SSLError) as exc:
            self.failures.append(f"connection error during the script: {exc!r}")
        finally:
            conn.close()
        if any(isinstance(step, Hangup) for step in self.script) and not self.failures:
            self.finished = True

    def _wrap(self, conn: socket.socket) -> socket.socket:
        assert self.tls_context is not None, "a TLS step needs tls_context"
        self._buffer = b""
        return self.tls_context.wrap_socket(conn, server_side=True)

    def _play(self, conn: socket.socket, step: Step, index: int) -> socket.socket:
        if isinstance(step, Send):
            conn.sendall(step.data)
        elif isinstance(step, Expect):
            line = self._read_line(conn)
            if line is None:
                self.failures.append(f"step {index}: client closed, expected {step.pattern!r}")
            elif not re.fullmatch(step.pattern, line, re.DOTALL):
                self.failures.append(f"step {index}: expected {step.pattern!r}, got {line!r}")
        elif isinstance(step, ReadData):
            self.data.append(self._read_until(conn, b"\r\n.\r\n"))
        elif isinstance(step, StartTLS):
            conn = self._wrap(conn)
        elif isinstance(step, Pause):
            time.sleep(step.seconds)
        elif isinstance(step, Hangup):
            conn.shutdown(socket.SHUT_RDWR)
        return conn

    def _recv(self, conn: socket.socket) -> bool:
        chunk = conn.recv(65536)
        if not chunk:
            return False
        self.received.append(chunk)
        self._buffer += chunk
        return True

    def _read_line(self, conn: socket.socket) -> bytes | None:
        while b"\r\n" not in self._buffer:
            if not self._recv(conn):
                return None
        line, self._buffer = self._buffer.split(b"\r\n", 1)
        return line

    def _read_until(self, conn: socket.socket, marker: bytes) -> bytes:
        while True:
            if self._buffer.startswith(marker[2:]):
                end = 0
                break
            end = self._buffer.find(marker)
            if end >= 0:
                end += 2
                break
            if not self._recv(conn):
                return self._buffer
        data, self._buffer = self._buffer[:end], self._buffer[end + len(marker) - 2 :]
        return data

    @property
    def all_received(self) -> bytes:
        return b"".join(self.received)
