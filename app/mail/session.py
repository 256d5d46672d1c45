"""What the SMTP and POP3 clients share: the life of one connection.

Opening it (TLS from the first byte for `tls`), upgrading it (STARTTLS/STLS), writing one
command line, and closing it are the same for both protocols; each client adds only its own
dialogue on top. A client object is one session: it connects once and is closed for good.
"""

from __future__ import annotations

import contextlib
import ssl
import time
from types import TracebackType
from typing import Self

from app.mail.errors import InvalidCommand, MailError
from app.mail.security import Security, make_tls_context
from app.mail.transcript import Transcript
from app.mail.wire import Wire

_FORBIDDEN_IN_COMMANDS = ("\r", "\n", "\0")


class Session:
    """One connection to a mail server, as a context manager: connect on entry; QUIT (if
    the connection still works) and close on exit, without masking an error in flight.

    `timeout` bounds every wait for the server; `time_limit` (seconds, or None) the whole
    session, for callers that hold a web request open while it runs.
    """

    def __init__(
        self,
        host: str,
        port: int,
        *,
        security: Security,
        tls_context: ssl.SSLContext | None,
        timeout: float,
        transcript: Transcript,
        max_line: int,
        time_limit: float | None = None,
    ):
        self.host = host
        self.port = port
        self.security = Security(security)
        self.tls_context = tls_context
        self.timeout = timeout
        self.transcript = transcript
        self.max_line = max_line
        self.time_limit = time_limit
        self._wire: Wire | None = None

    def connect(self) -> object:
        raise NotImplementedError

    def quit(self) -> object:
        raise NotImplementedError

    def __enter__(self) -> Self:
        self.connect()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        # An explicit quit() reports a failed QUIT; on the way out of a with block the
        # session's outcome is already decided, so a failing QUIT must not mask it.
        with contextlib.suppress(MailError):
            self.quit()
        self.close()

    def _context(self) -> ssl.SSLContext:
        if self.tls_context is None:
            self.tls_context = make_tls_context()
        return self.tls_context

    def _open(self) -> Wire:
        """The TCP (and, for `tls`, TLS) connection; once per client."""
        if self._wire is not None:
            raise MailError("already connected: one client is one session")
        self.transcript.note(f"connecting to {self.host}:{self.port} ({self.security.value})")
        tls = self._context() if self.security is Security.TLS else None
        limit = self.time_limit
        self._wire = Wire.connect(
            self.host,
            self.port,
            timeout=self.timeout,
            max_line=self.max_line,
            tls_context=tls,
            deadline=time.monotonic() + limit if limit is not None else None,
        )
        return self._wire

    def _upgrade(self) -> None:
        """The TLS handshake after STARTTLS/STLS was accepted; plaintext the server sent
        after its "go ahead" is dropped, never read as an answer."""
        wire = self._require_wire()
        discarded = wire.start_tls(self._context())
        if discarded:
            self.transcript.note(f"discarded {discarded} bytes sent before the TLS handshake")
        self.transcript.note(f"TLS established ({wire.tls_version})")

    @property
    def tls_active(self) -> bool:
        return self._wire is not None and self._wire.tls_active

    def _require_wire(self) -> Wire:
        if self._wire is None:
            raise MailError("not connected")
        return self._wire

    def _send_line(self, line: str, shown: str | None = None) -> None:
        """Write one command line; `shown` is what the transcript gets instead (redacted)."""
        if any(char in line for char in _FORBIDDEN_IN_COMMANDS):
            raise InvalidCommand("a command line cannot contain CR, LF or NUL")
        self.transcript.client(shown if shown is not None else line)
        self._require_wire().write(line.encode() + b"\r\n")

    def close(self) -> None:
        if self._wire is not None:
            self._wire.close()
            self._wire = None
