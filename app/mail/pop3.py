"""POP3 client (RFC 1939) with CAPA and PIPELINING (2449), STLS (2595) and SASL (5034).

One public method per command over the small I/O layer of `_command` and `_status`. Beyond
the standard library's poplib: certificates are verified, STLS discards what the server sent
before the handshake, AUTH PLAIN carries UTF-8 passwords, RETR streams into a file object
under a size cap, and with PIPELINING a window of RETR/DELE commands is kept in flight so a
big mailbox is not paid for in round trips.
"""

from __future__ import annotations

import io
import re
import ssl
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import BinaryIO

from app.mail import auth
from app.mail.errors import (
    AuthFailed,
    AuthUnavailable,
    CommandRefused,
    ConnectFailed,
    ProtocolViolation,
    StartTLSUnavailable,
    TLSFailed,
)
from app.mail.replies import POP3Response
from app.mail.security import Security
from app.mail.session import Session
from app.mail.transcript import REDACTED, Transcript, data_summary, printable

MAX_CAPA_BYTES = 64 * 1024
MAX_LISTING_BYTES = 16 * 1024 * 1024  # LIST/UIDL of about half a million messages
DEFAULT_WINDOW = 64
_RESPONSE_CODE = re.compile(r"^\[([A-Z0-9/-]+)\]")
_APOP_TIMESTAMP = re.compile(r"<[^<>\s]+@[^<>\s]+>")


@dataclass(frozen=True)
class Capabilities:
    """CAPA's answer: capability names (upper-cased) and their arguments. `known` is False
    when the server does not understand CAPA at all (then nothing can be assumed)."""

    names: dict[str, tuple[str, ...]] = field(default_factory=dict)
    known: bool = True

    def has(self, name: str) -> bool:
        return name.upper() in self.names

    @property
    def pipelining(self) -> bool:
        return self.has("PIPELINING")

    @property
    def stls(self) -> bool:
        return self.has("STLS")

    @property
    def uidl(self) -> bool:
        return self.has("UIDL")

    @property
    def top(self) -> bool:
        return self.has("TOP")

    @property
    def sasl(self) -> frozenset[str]:
        return frozenset(m.upper() for m in self.names.get("SASL", ()))


@dataclass(frozen=True)
class Retrieved:
    """One message of a pipelined RETR: where it went and its size, or why it failed."""

    number: int
    sink: BinaryIO | None
    size: int
    error: POP3Response | None = None


def response_code(response: POP3Response) -> str | None:
    """The RFC 2449/3206 response code in brackets ("AUTH", "IN-USE", "SYS/TEMP"), if any."""
    match = _RESPONSE_CODE.match(response.text)
    return match.group(1) if match else None


class POP3Client(Session):
    """One POP3 session. As a context manager it connects (upgrading for STARTTLS) on entry
    and on exit says QUIT, which is when the server really deletes what DELE marked."""

    def __init__(
        self,
        host: str,
        port: int,
        *,
        security: Security = Security.TLS,
        tls_context: ssl.SSLContext | None = None,
        timeout: float = 30.0,
        transcript: Transcript | None = None,
        max_line: int = 8192,
        time_limit: float | None = None,
        max_message_bytes: int = 40 * 1024 * 1024,
    ):
        super().__init__(
            host,
            port,
            security=security,
            tls_context=tls_context,
            timeout=timeout,
            transcript=transcript or Transcript("pochta.pop3"),
            max_line=max_line,
            time_limit=time_limit,
        )
        self.max_message_bytes = max_message_bytes
        self.capabilities = Capabilities(known=False)
        self.greeting: POP3Response | None = None

    def connect(self) -> POP3Response:
        """Connect, read the greeting, CAPA, and for STARTTLS upgrade with STLS."""
        self._open()
        try:
            self.greeting = self._status()
            if not self.greeting.ok:
                raise ConnectFailed(f"{self.host} refused the session", self.greeting)
            self.capa()
            if self.security is Security.STARTTLS:
                self.stls()
        except BaseException:
            self.close()
            raise
        return self.greeting

    # -- the I/O layer -----------------------------------------------------------------

    def _status(self, *, redact_continuation: bool = False) -> POP3Response:
        """Read a status line: +OK, -ERR, or (inside SASL) a "+ " continuation."""
        raw = self._require_wire().read_line()
        if raw.startswith(b"+OK"):
            response = POP3Response(True, raw[3:].strip().decode("utf-8", "replace"))
        elif raw.startswith(b"-ERR"):
            response = POP3Response(False, raw[4:].strip().decode("utf-8", "replace"))
        elif raw.startswith(b"+") and redact_continuation:
            self.transcript.server(f"+ {REDACTED}")
            return POP3Response(True, "+")
        else:
            self.transcript.server(printable(raw))
            raise ProtocolViolation(f"{self.host} sent a malformed status line")
        self.transcript.server(printable(raw))
        return response

    def _command(self, line: str, shown: str | None = None) -> POP3Response:
        self._send_line(line, shown)
        return self._status()

    def _expect_ok(self, line: str, what: str) -> POP3Response:
        response = self._command(line)
        if not response.ok:
            raise CommandRefused(f"{self.host} refused {what}", response, line.split()[0])
        return response

    def _multiline(self, sink: BinaryIO, limit: int) -> int:
        return self._require_wire().read_multiline(sink, limit)

    def _listing(self, limit: int = MAX_LISTING_BYTES) -> list[str]:
        """A multiline listing (CAPA, LIST, UIDL) as text lines, logged up to a point."""
        buffer = io.BytesIO()
        self._multiline(buffer, limit)
        lines = buffer.getvalue().decode("utf-8", "replace").splitlines()
        shown = self.transcript.listing_lines
        for line in lines[:shown]:
            self.transcript.server(printable(line.encode()))
        if len(lines) > shown:
            self.transcript.server(f"<{len(lines) - shown} more lines>")
        self.transcript.server(".")
        return lines

    # -- one method per command -----------------------------------------------------------

    def capa(self) -> Capabilities:
        """CAPA; a server without it gives an empty, `known=False` result."""
        response = self._command("CAPA")
        if not response.ok:
            self.capabilities = Capabilities(known=False)
            return self.capabilities
        names: dict[str, tuple[str, ...]] = {}
        for line in self._listing(MAX_CAPA_BYTES):
            parts = line.split()
            if parts:
                names[parts[0].upper()] = tuple(parts[1:])
        self.capabilities = Capabilities(names)
        return self.capabilities

    def stls(self) -> POP3Response:
        """STLS, then CAPA again: what the server claimed in plaintext is forgotten."""
        if not self.capabilities.stls:
            raise StartTLSUnavailable(
                f"{self.host}:{self.port} does not offer STLS, and the mode is starttls"
            )
        response = self._command("STLS")
        if not response.ok:
            raise TLSFailed(f"{self.host} refused STLS", response, "STLS")
        self._upgrade()
        self.capabilities = Capabilities(known=False)
        self.capa()
        return response

    def login(self, username: str, password: str) -> POP3Response:
        """SASL PLAIN when offered (the way UTF-8 passwords work), else USER/PASS."""
        if not self.tls_active and self.security is not Security.NONE:
            raise AuthUnavailable("refusing to send credentials over an unencrypted connection")
        if "PLAIN" in self.capabilities.sasl:
            return self.auth_plain(username, password)
        if self.capabilities.known and not self.capabilities.has("USER"):
            offered = ", ".join(sorted(self.capabilities.sasl)) or "none"
            raise AuthUnavailable(
                f"{self.host} offers neither USER/PASS nor SASL PLAIN (SASL: {offered})"
            )
        self.user(username)
        return self.pass_(password)

    def user(self, username: str) -> POP3Response:
        response = self._command(f"USER {username}")
        if not response.ok:
            raise AuthFailed(f"{self.host} did not accept the user name", response, "USER")
        return response

    def pass_(self, password: str) -> POP3Response:
        response = self._command(f"PASS {password}", f"PASS {REDACTED}")
        if not response.ok:
            raise AuthFailed(
                f"{self.host} did not accept the user name or password", response, "PASS"
            )
        return response

    def auth_plain(self, username: str, password: str) -> POP3Response:
        """RFC 5034 AUTH PLAIN with an initial response."""
        self._send_line(
            f"AUTH PLAIN {auth.plain_response(username, password)}", f"AUTH PLAIN {REDACTED}"
        )
        response = self._status(redact_continuation=True)
        if response.text == "+":  # the server asks for the response on its own line
            self._send_line(auth.plain_response(username, password), REDACTED)
            response = self._status(redact_continuation=True)
            if response.text == "+":
                self._send_line("*")
                response = self._status()
        if not response.ok:
            raise AuthFailed(
                f"{self.host} did not accept the user name or password", response, "AUTH"
            )
        return response

    def apop(self, username: str, password: str) -> POP3Response:
        """APOP, for servers that offer nothing better; needs a timestamp in the greeting."""
        stamp = _APOP_TIMESTAMP.search(self.greeting.text if self.greeting else "")
        if stamp is None:
            raise AuthUnavailable(f"{self.host} does not support APOP (no timestamp)")
        digest = auth.apop_digest(stamp.group(0), password)
        response = self._command(f"APOP {username} {digest}", f"APOP {username} {REDACTED}")
        if not response.ok:
            raise AuthFailed(f"{self.host} did not accept APOP", response, "APOP")
        return response

    def stat(self) -> tuple[int, int]:
        """(message count, mailbox size in octets)."""
        response = self._expect_ok("STAT", "STAT")
        return _two_numbers(response.text, "STAT")

    def list(self) -> dict[int, int]:
        """Message number → size in octets, for every message not marked deleted."""
        self._expect_ok("LIST", "LIST")
        return dict(_two_numbers(line, "LIST") for line in self._listing())

    def list_one(self, number: int) -> int:
        response = self._expect_ok(f"LIST {number}", "LIST")
        return _two_numbers(response.text, "LIST")[1]

    def uidl(self) -> dict[int, str]:
        """Message number → unique id."""
        self._expect_ok("UIDL", "UIDL")
        return dict(_number_and_uid(line) for line in self._listing())

    def uidl_one(self, number: int) -> str:
        response = self._expect_ok(f"UIDL {number}", "UIDL")
        return _number_and_uid(response.text)[1]

    def top(self, number: int, lines: int = 0) -> bytes:
        """The headers and the first `lines` lines of the body."""
        self._expect_ok(f"TOP {number} {lines}", "TOP")
        buffer = io.BytesIO()
        size = self._multiline(buffer, self.max_message_bytes)
        self.transcript.server(data_summary(size))
        return buffer.getvalue()

    def retr(self, number: int, sink: BinaryIO) -> int:
        """Stream one message into `sink`; return its size."""
        self._expect_ok(f"RETR {number}", "RETR")
        size = self._multiline(sink, self.max_message_bytes)
        self.transcript.server(data_summary(size))
        return size

    def retr_bytes(self, number: int) -> bytes:
        buffer = io.BytesIO()
        self.retr(number, buffer)
        return buffer.getvalue()

    def retr_many(
        self,
        numbers: Iterable[int],
        open_sink: Callable[[int], BinaryIO],
        *,
        window: int = DEFAULT_WINDOW,
    ) -> Iterator[Retrieved]:
        """RETR each message in turn, yielding each as soon as it is complete.

        With PIPELINING up to `window` commands are in flight (RFC 2449, 6.6); without it,
        one at a time. A -ERR for one message is reported in its result and the rest go on.
        """
        for number, response in self._pipelined("RETR", numbers, window):
            if not response.ok:
                yield Retrieved(number, None, 0, response)
                continue
            sink = open_sink(number)
            try:
                size = self._multiline(sink, self.max_message_bytes)
            except BaseException:
                sink.close()
                raise
            self.transcript.server(data_summary(size))
            yield Retrieved(number, sink, size)

    def dele(self, number: int) -> POP3Response:
        return self._expect_ok(f"DELE {number}", "DELE")

    def dele_many(
        self, numbers: Iterable[int], *, window: int = DEFAULT_WINDOW
    ) -> dict[int, POP3Response]:
        """DELE each message, pipelined when possible; the responses by message number."""
        return dict(self._pipelined("DELE", numbers, window))

    def _pipelined(
        self, verb: str, numbers: Iterable[int], window: int
    ) -> Iterator[tuple[int, POP3Response]]:
        """Send `verb n` for each number, keeping up to `window` unanswered, and yield each
        status line in order. The caller reads any multiline body before asking for more.
        The window is topped up once half of it has been answered: one write for many
        commands, and the server is never left without one."""
        wire = self._require_wire()
        if not self.capabilities.pipelining:
            window = 1
        pending: deque[int] = deque()
        queue = iter(numbers)
        while True:
            batch = []
            if len(pending) <= window // 2:
                for number in queue:
                    batch.append(number)
                    if len(pending) + len(batch) >= window:
                        break
            if batch:
                for number in batch:
                    self.transcript.client(f"{verb} {number}")
                wire.write("".join(f"{verb} {n}\r\n" for n in batch).encode())
                pending.extend(batch)
            if not pending:
                return
            number = pending.popleft()
            yield number, self._status()

    def rset(self) -> POP3Response:
        return self._expect_ok("RSET", "RSET")

    def noop(self) -> POP3Response:
        return self._expect_ok("NOOP", "NOOP")

    def quit(self) -> POP3Response | None:
        """QUIT (the server then deletes what was marked) and close. A failed QUIT is
        reported, because it means the deletions did not happen."""
        wire = self._wire
        if wire is None:
            return None
        try:
            if wire.broken:
                return None
            return self._command("QUIT")
        finally:
            self.close()


def _two_numbers(text: str, what: str) -> tuple[int, int]:
    parts = text.split()
    try:
        first, second = int(parts[0]), int(parts[1])
    except (IndexError, ValueError):
        raise ProtocolViolation(f"malformed {what} answer: {text[:100]!r}") from None
    if first < 0 or second < 0:
        raise ProtocolViolation(f"malformed {what} answer: {text[:100]!r}")
    return first, second


def _number_and_uid(text: str) -> tuple[int, str]:
    parts = text.split()
    if len(parts) != 2 or not parts[0].isdigit() or len(parts[1]) > 512:
        raise ProtocolViolation(f"malformed UIDL answer: {text[:100]!r}")
    return int(parts[0]), parts[1]

