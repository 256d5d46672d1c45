"""SMTP client (RFC 5321) with STARTTLS (3207), AUTH (4954), PIPELINING (2920), SIZE (1870),
8BITMIME (6152) and SMTPUTF8 (6531).

Read it beside the RFCs: one public method per verb, `send()` for a whole transaction, and a
tiny I/O layer (`_command`/`_reply`) underneath. What the standard library's smtplib leaves to
the caller is done here: certificates are verified, a missing STARTTLS is an error instead of
a plaintext session, the data is framed so no content can end it early, and every failure is
a typed error carrying the server's words.
"""

from __future__ import annotations

import contextlib
import io
import re
import socket
import ssl
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import BinaryIO, Protocol

from app.mail import auth
from app.mail.errors import (
    AuthFailed,
    AuthUnavailable,
    CommandRefused,
    ConnectFailed,
    ExtensionUnavailable,
    InvalidAddress,
    MailError,
    MessageRefused,
    MessageTooLarge,
    ProtocolViolation,
    RecipientsRefused,
    SenderRefused,
    StartTLSUnavailable,
    TLSFailed,
)
from app.mail.framing import header_section, smtp_data_chunks
from app.mail.replies import SMTPReply
from app.mail.security import Security
from app.mail.session import Session
from app.mail.transcript import REDACTED, Transcript, data_summary, printable

MAX_REPLY_LINES = 200
DATA_CHUNK = 256 * 1024
_REPLY_LINE = re.compile(rb"(\d{3})([ -]?)(.*)", re.DOTALL)
_FORBIDDEN_IN_ADDRESS = re.compile(r"[\x00-\x1f\x7f<>]")


@dataclass(frozen=True)
class Capabilities:
    """The EHLO keywords (upper-cased) and their parameters."""

    features: dict[str, str] = field(default_factory=dict)
    esmtp: bool = True

    @classmethod
    def from_ehlo(cls, reply: SMTPReply) -> Capabilities:
        features: dict[str, str] = {}
        for line in reply.lines[1:]:
            keyword, _, params = line.strip().partition(" ")
            keyword = keyword.upper()
            if keyword.startswith("AUTH="):  # the pre-RFC "AUTH=LOGIN" form
                keyword, params = "AUTH", f"{keyword[5:]} {params}"
            if keyword == "AUTH":  # both forms may appear: the mechanisms add up
                params = f"{features.get('AUTH', '')} {params}"
            if keyword:
                features[keyword] = params.strip()
        return cls(features)

    def has(self, keyword: str) -> bool:
        return keyword.upper() in self.features

    @property
    def starttls(self) -> bool:
        return self.has("STARTTLS")

    @property
    def pipelining(self) -> bool:
        return self.has("PIPELINING")

    @property
    def smtputf8(self) -> bool:
        return self.has("SMTPUTF8")

    @property
    def eightbitmime(self) -> bool:
        return self.has("8BITMIME")

    @property
    def size(self) -> int | None:
        """None when SIZE is not offered; 0 when offered without a fixed limit."""
        if not self.has("SIZE"):
            return None
        raw = self.features["SIZE"].split()
        return int(raw[0]) if raw and raw[0].isdigit() else 0

    @property
    def auth_mechanisms(self) -> frozenset[str]:
        return frozenset(m.upper() for m in self.features.get("AUTH", "").split())


@dataclass(frozen=True)
class SendResult:
    """What the server said to each recipient and to the message itself.

    Some recipients refused and others accepted is a partial success, not an exception: the
    message went to those accepted, and the caller shows the rest.
    """

    accepted: dict[str, SMTPReply]
    refused: dict[str, SMTPReply]
    reply: SMTPReply

    @property
    def partial(self) -> bool:
        return bool(self.refused)


class MessageSource(Protocol):
    """Message data written out on the fly, as often as asked (an outgoing message whose
    attachments are encoded as they go), with its size known beforehand."""

    @property
    def size(self) -> int: ...

    def chunks(self) -> Iterator[bytes]: ...


MessageData = bytes | BinaryIO | MessageSource


@dataclass(frozen=True)
class _Body:
    """Message data to send: its size and chunks, whether it came as bytes, a file or a
    source that writes itself out."""

    size: int
    source: bytes | BinaryIO | MessageSource

    def chunks(self) -> Iterator[bytes]:
        source = self.source
        if isinstance(source, bytes):
            view = memoryview(source)
            for start in range(0, len(view), DATA_CHUNK):
                yield bytes(view[start : start + DATA_CHUNK])
        elif hasattr(source, "chunks"):
            yield from source.chunks()
        else:
            source.seek(0)
            while chunk := source.read(DATA_CHUNK):
                yield chunk

    def header_bytes(self) -> bytes:
        """The header section, to decide whether the message needs SMTPUTF8."""
        if isinstance(self.source, bytes):
            return header_section(self.source[: 4 * DATA_CHUNK])
        head = b""
        for chunk in self.chunks():
            head += chunk
            if len(head) >= 4 * DATA_CHUNK:
                break
        return header_section(head[: 4 * DATA_CHUNK])

    def is_ascii(self) -> bool:
        if isinstance(self.source, bytes):
            return self.source.isascii()
        return all(chunk.isascii() for chunk in self.chunks())


def _check_address(address: str) -> str:
    if _FORBIDDEN_IN_ADDRESS.search(address) or address != address.strip():
        raise InvalidAddress(f"{address!r} cannot be used as an SMTP address")
    return address


def _parse_reply_line(raw: bytes) -> tuple[int, bool, str]:
    match = _REPLY_LINE.fullmatch(raw)
    if match is None:
        raise ProtocolViolation(f"the server sent a malformed reply: {printable(raw)[:200]}")
    code, separator, text = match.groups()
    if separator == b"" and text:
        raise ProtocolViolation(f"the server sent a malformed reply: {printable(raw)[:200]}")
    return int(code), separator == b"-", text.decode("utf-8", errors="replace")


class SMTPClient(Session):
    """One SMTP session. Use as a context manager: it connects (and upgrades, for STARTTLS)
    on entry and always says QUIT and closes on exit, also after an error."""

    def __init__(
        self,
        host: str,
        port: int,
        *,
        security: Security = Security.STARTTLS,
        tls_context: ssl.SSLContext | None = None,
        timeout: float = 30.0,
        data_timeout: float | None = None,
        local_hostname: str | None = None,
        transcript: Transcript | None = None,
        max_line: int = 8192,
        time_limit: float | None = None,
    ):
        super().__init__(
            host,
            port,
            security=security,
            tls_context=tls_context,
            timeout=timeout,
            transcript=transcript or Transcript("pochta.smtp"),
            max_line=max_line,
            time_limit=time_limit,
        )
        # RFC 5321 4.5.3.2.6: the reply to the end of data may take minutes (content scans).
        self.data_timeout = data_timeout if data_timeout is not None else max(timeout, 120.0)
        # gethostname, not getfqdn: a reverse DNS lookup could stall every send for seconds
        self.local_hostname = local_hostname or socket.gethostname() or "localhost"
        self.capabilities = Capabilities(esmtp=False)

    def connect(self) -> SMTPReply:
        """Connect, read the greeting, EHLO, and for STARTTLS upgrade and EHLO again."""
        self._open()
        try:
            greeting = self._reply()
            if greeting.code != 220:
                raise ConnectFailed(f"{self.host} refused the session", greeting)
            self.ehlo()
            if self.security is Security.STARTTLS:
                self.starttls()
        except BaseException:
            self.close()
            raise
        return greeting

    # -- the I/O layer -----------------------------------------------------------------

    def _reply(self, *, redact: bool = False, timeout: float | None = None) -> SMTPReply:
        """Read one reply; every line must carry the same code (RFC 5321, 4.2.1)."""
        wire = self._require_wire()
        lines: list[str] = []
        code = None
        while True:
            raw = wire.read_line(timeout)
            line_code, more, text = _parse_reply_line(raw)
            secret = redact and line_code == 334  # a SASL challenge, or our echoed payload
            self.transcript.server(f"{line_code} {REDACTED}" if secret else printable(raw))
            if code is not None and line_code != code:
                raise ProtocolViolation(
                    f"the server mixed reply codes {code} and {line_code} in one reply"
                )
            code = line_code
            lines.append(text)
            if not more:
                return SMTPReply(code, tuple(lines))
            if len(lines) >= MAX_REPLY_LINES:
                raise ProtocolViolation(f"the server sent a reply over {MAX_REPLY_LINES} lines")

    def _command(self, line: str, shown: str | None = None) -> SMTPReply:
        self._send_line(line, shown)
        return self._reply()

    # -- one method per verb -------------------------------------------------------------

    def ehlo(self, name: str | None = None) -> Capabilities:
        """EHLO, falling back to HELO for a server that does not speak ESMTP."""
        reply = self._command(f"EHLO {name or self.local_hostname}")
        if reply.code == 250:
            self.capabilities = Capabilities.from_ehlo(reply)
            return self.capabilities
        if reply.code in (500, 502, 504):
            self.helo(name)
            self.capabilities = Capabilities(esmtp=False)
            return self.capabilities
        raise CommandRefused(f"{self.host} refused EHLO", reply, "EHLO")

    def helo(self, name: str | None = None) -> SMTPReply:
        reply = self._command(f"HELO {name or self.local_hostname}")
        if reply.code != 250:
            raise CommandRefused(f"{self.host} refused HELO", reply, "HELO")
        return reply

    def starttls(self) -> SMTPReply:
        """STARTTLS, then EHLO again: capabilities learned in plaintext are forgotten."""
        if not self.capabilities.starttls:
            raise StartTLSUnavailable(
                f"{self.host}:{self.port} does not offer STARTTLS, and the mode is starttls"
            )
        reply = self._command("STARTTLS")
        if reply.code != 220:
            raise TLSFailed(f"{self.host} refused STARTTLS", reply, "STARTTLS")
        self._upgrade()
        self.capabilities = Capabilities(esmtp=False)
        self.ehlo()
        return reply

    def login(self, username: str, password: str) -> SMTPReply:
        """AUTH with the best mechanism the server offers; never in plaintext unless the
        mode is explicitly `none`."""
        if not self.tls_active and self.security is not Security.NONE:
            raise AuthUnavailable("refusing to send credentials over an unencrypted connection")
        offered = self.capabilities.auth_mechanisms
        mechanism = auth.choose_mechanism(offered)
        if mechanism is None:
            if not offered and not self.tls_active:
                raise AuthUnavailable(
                    f"{self.host} offers no AUTH on a plaintext connection; choose STARTTLS or TLS"
                )
            listed = ", ".join(sorted(offered)) or "none"
            raise AuthUnavailable(f"{self.host} offers no usable AUTH mechanism ({listed})")
        return self.auth(mechanism, username, password)

    def auth(self, mechanism: str, username: str, password: str) -> SMTPReply:
        """AUTH with one named mechanism (PLAIN, LOGIN or CRAM-MD5)."""
        mechanism = mechanism.upper()
        if mechanism == "PLAIN":
            reply = self._command(
                f"AUTH PLAIN {auth.plain_response(username, password)}", f"AUTH PLAIN {REDACTED}"
            )
            if reply.code == 334:  # a server that wants the response on its own line
                reply = self._answer(auth.plain_response(username, password))
        elif mechanism == "LOGIN":
            self._send_line("AUTH LOGIN")
            reply = self._reply(redact=True)
            if reply.code == 334:
                reply = self._answer(auth.login_response(username))
            if reply.code == 334:
                reply = self._answer(auth.login_response(password))
        elif mechanism == "CRAM-MD5":
            self._send_line("AUTH CRAM-MD5")
            reply = self._reply(redact=True)
            if reply.code == 334:
                try:
                    response = auth.cram_md5_response(username, password, reply.text)
                except ValueError as exc:
                    self._answer("*")
                    raise ProtocolViolation(str(exc), reply, "AUTH") from None
                reply = self._answer(response)
        else:
            raise AuthUnavailable(f"the mechanism {mechanism} is not supported")
        if reply.code == 334:  # more challenges than the mechanism has: cancel
            reply = self._answer("*")
        if reply.code != 235:
            raise AuthFailed(f"{self.host} did not accept the user name or password", reply, "AUTH")
        return reply

    def _answer(self, payload: str) -> SMTPReply:
        self._send_line(payload, REDACTED)
        return self._reply(redact=True)

    def mail(self, sender: str, params: Sequence[str] = ()) -> SMTPReply:
        """MAIL FROM; a refusal raises SenderRefused."""
        reply = self._command(self._mail_line(sender, params))
        if reply.code != 250:
            raise SenderRefused(f"{self.host} refused the sender {sender}", reply, "MAIL")
        return reply

    def rcpt(self, recipient: str, params: Sequence[str] = ()) -> SMTPReply:
        """RCPT TO; the reply is returned either way, as refusing one recipient is normal."""
        return self._command(self._rcpt_line(recipient, params))

    def data(self, message: MessageData, size: int | None = None) -> SMTPReply:
        """DATA, the framed message, and the server's verdict on it."""
        reply = self._command("DATA")
        if reply.code != 354:
            raise MessageRefused(f"{self.host} refused DATA", reply, "DATA")
        return self._send_body(_make_body(message, size))

    def rset(self) -> SMTPReply:
        return self._command("RSET")

    def noop(self) -> SMTPReply:
        return self._command("NOOP")

    def quit(self) -> None:
        """QUIT if the connection still works, then close, swallowing transport errors: by
        now the outcome of the session is already known."""
        wire = self._wire
        if wire is None:
            return
        if not wire.broken:
            with contextlib.suppress(MailError):
                self._command("QUIT")
        self.close()

    # -- the whole transaction -------------------------------------------------------------

    @staticmethod
    def _mail_line(sender: str, params: Sequence[str]) -> str:
        return " ".join([f"MAIL FROM:<{_check_address(sender)}>", *params])

    @staticmethod
    def _rcpt_line(recipient: str, params: Sequence[str]) -> str:
        return " ".join([f"RCPT TO:<{_check_address(recipient)}>", *params])

    def send(
        self,
        sender: str,
        recipients: Iterable[str],
        message: MessageData,
        *,
        size: int | None = None,
        smtputf8: bool = False,
    ) -> SendResult:
        """Send one message to several recipients, pipelined when the server allows.

        The needed extensions are worked out from the addresses and the data; a message over
        the server's SIZE, or needing SMTPUTF8/8BITMIME that the server lacks, is refused here
        before anything is sent.
        """
        recipients = list(dict.fromkeys(recipients))
        if not recipients:
            raise InvalidAddress("a message needs at least one recipient")
        for address in (sender, *recipients):
            _check_address(address)
        body = _make_body(message, size)
        params = self._mail_params(sender, recipients, body, smtputf8)
        if self.capabilities.pipelining:
            return self._send_pipelined(sender, recipients, body, params)
        return self._send_stepwise(sender, recipients, body, params)

    def _mail_params(
        self, sender: str, recipients: list[str], body: _Body, smtputf8: bool
    ) -> list[str]:
        caps = self.capabilities
        limit = caps.size
        if limit and body.size > limit:
            raise MessageTooLarge(
                f"the message is {body.size} bytes and {self.host} accepts at most {limit}"
            )
        needs_utf8 = (
            smtputf8
            or not all(a.isascii() for a in (sender, *recipients))
            or not body.header_bytes().isascii()
        )
        eight_bit = needs_utf8 or not body.is_ascii()
        if needs_utf8 and not caps.smtputf8:
            raise ExtensionUnavailable(
                f"the message has UTF-8 addresses or headers and {self.host} "
                "does not offer SMTPUTF8"
            )
        if eight_bit and not caps.eightbitmime:
            raise ExtensionUnavailable(
                f"the message has 8-bit data and {self.host} does not offer 8BITMIME"
            )
        params = []
        if limit is not None:
            params.append(f"SIZE={body.size}")
        if eight_bit:
            params.append("BODY=8BITMIME")
        if needs_utf8:
            params.append("SMTPUTF8")
        return params

    def _send_stepwise(
        self, sender: str, recipients: list[str], body: _Body, params: list[str]
    ) -> SendResult:
        self.mail(sender, params)
        replies = {rcpt: self.rcpt(rcpt) for rcpt in recipients}
        accepted, refused = _split(replies)
        if not accepted:
            self.rset()
            raise RecipientsRefused(f"{self.host} refused every recipient", refused)
        reply = self._command("DATA")
        if reply.code != 354:
            raise MessageRefused(f"{self.host} refused DATA", reply, "DATA")
        return SendResult(accepted, refused, self._send_body(body))

    def _send_pipelined(
        self, sender: str, recipients: list[str], body: _Body, params: list[str]
    ) -> SendResult:
        """MAIL, every RCPT and DATA in one write, then the replies in order (RFC 2920)."""
        lines = [self._mail_line(sender, params)]
        lines += [self._rcpt_line(rcpt, ()) for rcpt in recipients]
        lines.append("DATA")
        for line in lines:
            self.transcript.client(line)
        self._require_wire().write("".join(f"{line}\r\n" for line in lines).encode())
        mail_reply = self._reply()
        replies = {rcpt: self._reply() for rcpt in recipients}
        data_reply = self._reply()
        accepted, refused = _split(replies)
        if mail_reply.code != 250 or not accepted:
            if data_reply.code == 354:  # RFC 2920 3.1: the server wants data; end it empty
                self._send_line(".")
                self._reply()
            self.rset()
            if mail_reply.code != 250:
                raise SenderRefused(f"{self.host} refused the sender {sender}", mail_reply, "MAIL")
            raise RecipientsRefused(f"{self.host} refused every recipient", refused)
        if data_reply.code != 354:
            raise MessageRefused(f"{self.host} refused DATA", data_reply, "DATA")
        return SendResult(accepted, refused, self._send_body(body))

    def _send_body(self, body: _Body) -> SMTPReply:
        wire = self._require_wire()
        self.transcript.client(data_summary(body.size))
        for chunk in smtp_data_chunks(body.chunks()):
            wire.write(chunk)
        self.transcript.client(".")
        reply = self._reply(timeout=self.data_timeout)
        if reply.code != 250:
            raise MessageRefused(f"{self.host} refused the message", reply, "DATA")
        return reply


def _make_body(message: MessageData, size: int | None) -> _Body:
    if isinstance(message, bytes):
        return _Body(len(message), message)
    if isinstance(message, bytearray | memoryview):
        data = bytes(message)
        return _Body(len(data), data)
    if hasattr(message, "chunks"):
        return _Body(message.size if size is None else size, message)
    if size is None:
        position = message.seek(0, io.SEEK_END)
        message.seek(0)
        size = position
    return _Body(size, message)


def _split(replies: dict[str, SMTPReply]) -> tuple[dict[str, SMTPReply], dict[str, SMTPReply]]:
    accepted = {rcpt: r for rcpt, r in replies.items() if r.code in (250, 251)}
    refused = {rcpt: r for rcpt, r in replies.items() if r.code not in (250, 251)}
    return accepted, refused
