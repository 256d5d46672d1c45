"""Buffered line I/O over one socket, with caps, timeouts and the TLS upgrade.

Both protocol clients sit on this layer. It turns every socket and TLS failure into the
project's exception tree, bounds what a server can make us hold in memory (a line longer than
`max_line`, data beyond a size limit), and is the one place where the buffer is thrown away
at a TLS upgrade, which is the STARTTLS/STLS command-injection defence.
"""

from __future__ import annotations

import contextlib
import socket
import ssl
import time
from typing import BinaryIO

from app.mail.errors import (
    ConnectFailed,
    ConnectionLost,
    MailTimeout,
    MessageTooLarge,
    ProtocolViolation,
    TLSFailed,
)
from app.mail.framing import scan_multiline

RECV_SIZE = 256 * 1024
# Acknowledge at once what arrives while we wait for an answer. Right after a TLS 1.3
# handshake the server sends its session tickets; with our command already sent, Linux
# would delay the ACK for them by 40 ms, and the server's Nagle would hold its answer
# behind that ACK (seen as a 40 ms stall after STARTTLS in three sessions of four).
# The flag does not stick, so it is set again before every wait (Linux only).
_QUICKACK: int | None = getattr(socket, "TCP_QUICKACK", None)
# A multiline answer may take as long as the timeout plus one second per KiB received so far:
# a slow link passes, a server trickling a line at a time to keep a worker busy does not.
MIN_RATE = 1024


def _tls_error(host: str, exc: ssl.SSLError) -> TLSFailed:
    if isinstance(exc, ssl.SSLCertVerificationError):
        reason = exc.verify_message or exc.reason or str(exc)
        return TLSFailed(f"the TLS certificate of {host} is not trusted ({reason})")
    return TLSFailed(f"TLS with {host} failed ({exc.reason or exc})")


class Wire:
    """One connection: read lines and multiline bodies, write bytes.

    `timeout` bounds each wait for the server; a line must also arrive whole within it, so a
    server trickling a byte at a time cannot hold a worker forever. `deadline` (a
    `time.monotonic()` moment, or None) bounds the whole connection, so neither can a server
    that sends each of a thousand lines just before the timeout.
    """

    def __init__(
        self,
        sock: socket.socket,
        host: str,
        *,
        timeout: float,
        max_line: int,
        deadline: float | None = None,
    ):
        self._sock = sock
        self.host = host
        self.timeout = timeout
        self.max_line = max_line
        self.deadline = deadline
        self._buffer = bytearray()
        self.broken = False

    @classmethod
    def connect(
        cls,
        host: str,
        port: int,
        *,
        timeout: float,
        max_line: int,
        tls_context: ssl.SSLContext | None = None,
        deadline: float | None = None,
    ) -> Wire:
        """Open a TCP connection, with TLS from the first byte when a context is given."""
        if deadline is not None:
            timeout = min(timeout, max(deadline - time.monotonic(), 0.001))
        try:
            sock = socket.create_connection((host, port), timeout=timeout)
        except TimeoutError:
            raise MailTimeout(f"no connection to {host}:{port} within {timeout:g} s") from None
        except socket.gaierror as exc:
            raise ConnectFailed(f"cannot find the host {host} ({exc.strerror})") from None
        except OSError as exc:
            reason = exc.strerror or exc
            raise ConnectFailed(f"cannot connect to {host}:{port} ({reason})") from None
        # Every write is a whole command, window of commands or data chunk already: waiting
        # to coalesce them (Nagle) only meets the peer's delayed ACK and stalls a dialogue.
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        wire = cls(sock, host, timeout=timeout, max_line=max_line, deadline=deadline)
        if tls_context is not None:
            wire._wrap(tls_context)
        return wire

    @property
    def tls_active(self) -> bool:
        return isinstance(self._sock, ssl.SSLSocket)

    @property
    def tls_version(self) -> str | None:
        return self._sock.version() if isinstance(self._sock, ssl.SSLSocket) else None

    def _wrap(self, context: ssl.SSLContext) -> None:
        try:
            self._sock.settimeout(self._budget(None))
            self._sock = context.wrap_socket(self._sock, server_hostname=self.host)
        except ssl.SSLError as exc:
            self.close()
            raise _tls_error(self.host, exc) from None
        except TimeoutError:
            self.close()
            raise MailTimeout(f"the TLS handshake with {self.host} timed out") from None
        except OSError as exc:
            self.close()
            raise ConnectionLost(f"the connection broke during the TLS handshake ({exc})") from None
        except MailTimeout:  # the connection's deadline passed before the handshake
            self.close()
            raise

    def start_tls(self, context: ssl.SSLContext) -> int:
        """Upgrade to TLS; return how many buffered plaintext bytes were thrown away.

        Anything the server sent after its "go ahead" and before the handshake was never
        protected; a man in the middle may have put it there, so it must not be read as a
        reply inside the TLS session.
        """
        discarded = len(self._buffer)
        self._buffer.clear()
        self._wrap(context)
        return discarded

    # -- reading -----------------------------------------------------------------------

    def _budget(self, line_deadline: float | None) -> float:
        """How long the next wait may take: the per-wait timeout or what is left of the
        line's time, and never past the connection's deadline."""
        now = time.monotonic()
        budget = self.timeout
        if line_deadline is not None:
            budget = min(budget, line_deadline - now)
        if self.deadline is not None:
            budget = min(budget, self.deadline - now)
        if budget <= 0:
            raise self._timed_out()
        return budget

    def _fill(self, deadline: float | None, *, drain: bool = False) -> None:
        """Read what the server sent. With `drain`, go on reading what is already here (up to
        RECV_SIZE) before returning: TLS hands over one record of a few KB per read, and a
        big body scanned after each of them would cost more in scanning than in reading."""
        self._recv(deadline)
        if drain:
            self._drain()

    def _drain(self) -> None:
        """Take what has already arrived, without waiting. Non-blocking reads until there is
        nothing more: asking `select` first would cost a system call per TLS record."""
        gathered = 0
        try:
            self._sock.settimeout(0.0)
            while gathered < RECV_SIZE:
                chunk = self._sock.recv(RECV_SIZE)
                if not chunk:  # closed: the next (waiting) read reports it
                    return
                self._buffer += chunk
                gathered += len(chunk)
        except (BlockingIOError, ssl.SSLWantReadError, ssl.SSLWantWriteError):
            return
        except OSError as exc:  # ssl.SSLError included
            raise self._broke(exc) from None

    def _broke(self, exc: OSError) -> ConnectionLost:
        self.broken = True
        if isinstance(exc, ssl.SSLError):
            return ConnectionLost(f"the TLS connection to {self.host} broke ({exc})")
        return ConnectionLost(f"the connection to {self.host} broke ({exc})")

    def _ack_quickly(self) -> None:
        if _QUICKACK is not None:
            with contextlib.suppress(OSError):  # not TCP after all: nothing to tune
                self._sock.setsockopt(socket.IPPROTO_TCP, _QUICKACK, 1)

    def _recv(self, deadline: float | None) -> None:
        if self.broken:
            raise ConnectionLost("the connection is no longer usable after an earlier error")
        try:
            self._sock.settimeout(self._budget(deadline))
            self._ack_quickly()
            chunk = self._sock.recv(RECV_SIZE)
        except TimeoutError:
            raise self._timed_out() from None
        except OSError as exc:  # ssl.SSLError included
            raise self._broke(exc) from None
        if not chunk:
            self.broken = True
            raise ConnectionLost(f"{self.host} closed the connection")
        self._buffer += chunk

    def _timed_out(self) -> MailTimeout:
        self.broken = True
        if self.deadline is not None and time.monotonic() >= self.deadline:
            return MailTimeout(f"{self.host} took longer than this operation may take")
        return MailTimeout(f"{self.host} did not answer within {self.timeout:g} s")

    def read_line(self, timeout: float | None = None) -> bytes:
        """One line without its CRLF (or bare LF); the whole line within `timeout`."""
        deadline = time.monotonic() + (timeout or self.timeout)
        searched = 0
        while True:
            end = self._buffer.find(b"\n", searched)
            if end >= 0:
                break
            if len(self._buffer) > self.max_line:
                self.broken = True
                raise ProtocolViolation(
                    f"{self.host} sent a line longer than {self.max_line} bytes"
                )
            searched = len(self._buffer)
            self._fill(deadline)
        if end > self.max_line:
            self.broken = True
            raise ProtocolViolation(f"{self.host} sent a line longer than {self.max_line} bytes")
        line = bytes(self._buffer[:end])
        del self._buffer[: end + 1]
        return line[:-1] if line.endswith(b"\r") else line

    def read_multiline(self, sink: BinaryIO, limit: int) -> int:
        """Stream a dot-terminated body into `sink`, unstuffed; return its size in bytes.

        More than `limit` bytes is an error, and the connection is then unusable (the rest of
        the body is still on the way), so it is marked broken. The body must keep coming at
        MIN_RATE on average after the first `timeout`.
        """
        size = 0
        started = time.monotonic()
        while True:
            scanned = scan_multiline(self._buffer)
            if scanned.consumed:
                del self._buffer[: scanned.consumed]
            if scanned.data:
                size += len(scanned.data)
                if size > limit:
                    self.broken = True
                    raise MessageTooLarge(f"{self.host} sent more than {limit} bytes")
                sink.write(scanned.data)
            if scanned.done:
                return size
            if len(self._buffer) > max(self.max_line, limit - size):
                self.broken = True
                raise MessageTooLarge(f"{self.host} sent more than {limit} bytes")
            received = size + len(self._buffer)
            self._fill(started + self.timeout + received / MIN_RATE, drain=True)

    # -- writing -----------------------------------------------------------------------

    def write(self, data: bytes | bytearray | memoryview) -> None:
        if self.broken:
            raise ConnectionLost("the connection is no longer usable after an earlier error")
        try:
            self._sock.settimeout(self._budget(None))
            self._sock.sendall(data)
        except TimeoutError:
            raise self._timed_out() from None
        except OSError as exc:
            self.broken = True
            raise ConnectionLost(f"the connection to {self.host} broke ({exc})") from None

    def close(self) -> None:
        self.broken = True
        with contextlib.suppress(OSError):
            self._sock.close()
