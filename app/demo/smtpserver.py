"""The demo server's SMTP side: aiosmtpd on loopback, delivering into the local mailboxes.

It accepts mail only from authenticated users and only for local recipients (it never
relays), so `pochta demo` and the test suite can send real mail through Pochta's own SMTP
client with STARTTLS, implicit TLS or plaintext, and read it back over POP3.

aiosmtpd does the protocol; this module adds the policy (who may send, who can receive),
the trace headers, a listening socket bound before start (so port 0 works and the real port
is known at once) and a stop that closes every open connection first (so nothing leaks).
"""

from __future__ import annotations

import asyncio
import contextlib
import re
import socket
import ssl
from collections.abc import Callable
from email.utils import format_datetime, localtime
from typing import Any

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, AuthResult, Envelope, LoginPassword, Session

from app.demo.mailboxes import Mailboxes
from app.mail.security import Security

MIB = 1024 * 1024
MAX_RECIPIENTS = 100
IDENT = "Pochta demo ESMTP"
_UNSAFE_IN_HEADER = re.compile(r"[^\x21-\x7e]")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


Authenticator = Callable[[SMTP, Session, Envelope, str, Any], AuthResult]


def make_authenticator(mailboxes: Mailboxes) -> Authenticator:
    """aiosmtpd `authenticator=`: PLAIN and LOGIN against the mailboxes' user table."""

    def authenticate(
        server: SMTP, session: Session, envelope: Envelope, mechanism: str, auth_data: Any
    ) -> AuthResult:
        if not isinstance(auth_data, LoginPassword):
            return AuthResult(success=False, handled=False)
        try:
            login = auth_data.login.decode("utf-8")
            password = auth_data.password.decode("utf-8")
        except UnicodeDecodeError:
            return AuthResult(success=False, handled=False)
        user = mailboxes.authenticate(login, password)
        if user is None:
            return AuthResult(success=False, handled=False)
        return AuthResult(success=True, auth_data=user)

    return authenticate


def _header_safe(text: str) -> str:
    """Whatever a client claims (its HELO name) reduced to something inert in a header."""
    return _UNSAFE_IN_HEADER.sub("?", text)[:100] or "unknown"


def _protocol(session: Session, envelope: Envelope, secure: bool) -> str:
    """RFC 3848 / 6531 `with` keyword: ESMTP, ESMTPSA, UTF8SMTPSA and so on."""
    plain = "ESMTP" if session.extended_smtp else "SMTP"
    base = "UTF8SMTP" if envelope.smtp_utf8 else plain
    suffix = ("S" if secure else "") + ("A" if session.authenticated else "")
    return base + suffix


class DeliveryHandler:
    """aiosmtpd handler: authenticated senders only, local recipients only."""

    def __init__(self, mailboxes: Mailboxes, *, hostname: str, implicit_tls: bool) -> None:
        self.mailboxes = mailboxes
        self.hostname = hostname
        self.implicit_tls = implicit_tls

    async def handle_EHLO(  # noqa: N802 - aiosmtpd hook name
        self,
        server: SMTP,
        session: Session,
        envelope: Envelope,
        hostname: str,
        responses: list[str],
    ) -> list[str]:
        """Advertise PIPELINING (RFC 2920): aiosmtpd reads commands from a buffer in order,
        and drops what was buffered at STARTTLS, so pipelined clients are served right."""
        session.host_name = hostname  # aiosmtpd leaves this to a custom EHLO hook
        return [*responses[:-1], "250-PIPELINING", responses[-1]]

    async def handle_MAIL(  # noqa: N802 - aiosmtpd hook name
        self,
        server: SMTP,
        session: Session,
        envelope: Envelope,
        address: str,
        mail_options: list[str],
    ) -> str:
        if not session.authenticated:
            return "530 5.7.0 Authentication required"
        envelope.mail_from = address
        envelope.mail_options.extend(mail_options)
        return "250 2.1.0 OK"

    async def handle_RCPT(  # noqa: N802 - aiosmtpd hook name
        self,
        server: SMTP,
        session: Session,
        envelope: Envelope,
        address: str,
        rcpt_options: list[str],
    ) -> str:
        if _CONTROL.search(address):
            return "501 5.1.3 Bad recipient address syntax"
        if not self.mailboxes.is_local_domain(address):
            return f"550 5.7.1 <{address}>: Relay access denied"
        if self.mailboxes.user_for_address(address) is None:
            return f"550 5.1.1 <{address}>: Recipient address rejected: User unknown"
        if len(envelope.rcpt_tos) >= MAX_RECIPIENTS:
            return "452 4.5.3 Too many recipients"
        envelope.rcpt_tos.append(address)
        envelope.rcpt_options.extend(rcpt_options)
        return "250 2.1.5 OK"

    async def handle_DATA(  # noqa: N802 - aiosmtpd hook name
        self, server: SMTP, session: Session, envelope: Envelope
    ) -> str:
        content = envelope.original_content
        assert isinstance(content, bytes)
        secure = self.implicit_tls or session.ssl is not None
        delivered: dict[str, str] = {}
        for address in envelope.rcpt_tos:
            user = self.mailboxes.user_for_address(address)
            if user is None or user in delivered:
                continue
            trace = self.trace_headers(session, envelope, address, secure)
            try:
                delivered[user] = self.mailboxes.deliver(user, trace + content)
            except OSError:
                return "451 4.3.0 Local delivery failed, try again later"
        return f"250 2.0.0 OK: delivered as {' '.join(delivered.values())}"

    def trace_headers(
        self, session: Session, envelope: Envelope, address: str, secure: bool
    ) -> bytes:
        """Received and Authentication-Results, newest on top, as a real MTA adds them."""
        peer = session.peer[0] if isinstance(session.peer, tuple) else str(session.peer)
        helo = _header_safe(session.host_name or "unknown")
        date = format_datetime(localtime())
        received = (
            f"Received: from {helo} ({_header_safe(peer)})\r\n"
            f"\tby {self.hostname} (Pochta demo) with {_protocol(session, envelope, secure)}\r\n"
            f"\tfor <{address}>; {date}\r\n"
        )
        results = (
            f"Authentication-Results: {self.hostname};\r\n"
            f"\tauth=pass smtp.auth={session.auth_data}\r\n"
        )
        return (results + received).encode("utf-8")


class _Session(Session):
    """aiosmtpd 1.4 still assigns the deprecated `login_data` after AUTH, and its property
    logs a warning every time; a plain attribute keeps the demo's console quiet."""

    login_data: Any = None


class _SMTP(SMTP):
    """Remembers its socket: a TLS session already closing (after QUIT) cannot be aborted on
    every Python (3.11.2 drops the transport's protocol on a second close(), which aiosmtpd
    does), but shutting the socket down ends it through the loop's own EOF handling."""

    raw_socket: socket.socket | None = None

    def _create_session(self) -> Session:
        return _Session(self.loop)

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        if self.raw_socket is None:
            self.raw_socket = transport.get_extra_info("socket")
        super().connection_made(transport)


class _BoundController(Controller):
    """aiosmtpd's Controller serving on a socket we bound, closing live sessions at stop."""

    def __init__(self, handler: DeliveryHandler, sock: socket.socket, **kwargs: Any) -> None:
        host, port = sock.getsockname()[:2]
        super().__init__(handler, hostname=host, port=port, **kwargs)
        self._sock = sock
        self._sessions: list[SMTP] = []

    def _create_server(self) -> Any:
        return self.loop.create_server(self._factory_invoker, sock=self._sock, ssl=self.ssl_context)

    def factory(self) -> SMTP:
        smtp = _SMTP(self.handler, loop=self.loop, **self.SMTP_kwargs)
        self._sessions = [s for s in self._sessions if s.transport is not None]
        self._sessions.append(smtp)
        return smtp

    async def _drop_sessions(self) -> None:
        for smtp in self._sessions:
            transport = smtp.transport
            if transport is None:
                continue
            if not transport.is_closing():
                transport.abort()
            elif smtp.raw_socket is not None:  # a TLS goodbye waiting on the client
                with contextlib.suppress(OSError):
                    smtp.raw_socket.shutdown(socket.SHUT_RDWR)
        for _ in range(100):  # let connection_lost() run for each (bounded: 1 s)
            if all(smtp.transport is None for smtp in self._sessions):
                break
            await asyncio.sleep(0.01)
        self._sessions.clear()

    def stop(self, no_assert: bool = False) -> None:
        if self._thread is not None and self.loop.is_running():
            future = asyncio.run_coroutine_threadsafe(self._drop_sessions(), self.loop)
            future.result(timeout=5)
        super().stop(no_assert=no_assert)
        if not self.loop.is_closed():
            self.loop.close()
        self._sock.close()


class SMTPServer:
    """Listens on `host:port` (0 picks a free port; `.port` is real as soon as start() returns).

    `security`: STARTTLS (AUTH only after it), TLS (implicit, from the first byte) or NONE.
    `allow_plaintext_auth=None` allows AUTH on an unprotected connection only in NONE mode.
    """

    def __init__(
        self,
        mailboxes: Mailboxes,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        security: Security = Security.STARTTLS,
        tls_context: ssl.SSLContext | None = None,
        allow_plaintext_auth: bool | None = None,
        hostname: str = "localhost",
        max_message_bytes: int = 40 * MIB,
        idle_timeout: float = 300.0,
    ) -> None:
        if security is not Security.NONE and tls_context is None:
            raise ValueError(f"SMTP security {security.value!r} needs a TLS context")
        self.mailboxes = mailboxes
        self.host = host
        self.port = port
        self.security = security
        self.tls_context = tls_context
        if allow_plaintext_auth is None:
            allow_plaintext_auth = security is Security.NONE
        self.allow_plaintext_auth = allow_plaintext_auth
        self.hostname = hostname
        self.max_message_bytes = max_message_bytes
        self.idle_timeout = idle_timeout
        self._controller: _BoundController | None = None

    def start(self) -> None:
        if self._controller is not None:
            raise RuntimeError("SMTP server already running")
        implicit = self.security is Security.TLS
        handler = DeliveryHandler(self.mailboxes, hostname=self.hostname, implicit_tls=implicit)
        family = socket.AF_INET6 if ":" in self.host else socket.AF_INET
        sock = socket.create_server((self.host, self.port), family=family)
        port = sock.getsockname()[1]
        controller = _BoundController(
            handler,
            sock,
            ssl_context=self.tls_context if implicit else None,
            server_hostname=self.hostname,
            ident=IDENT,
            tls_context=self.tls_context if self.security is Security.STARTTLS else None,
            auth_require_tls=not (implicit or self.allow_plaintext_auth),
            authenticator=make_authenticator(self.mailboxes),
            data_size_limit=self.max_message_bytes,
            enable_SMTPUTF8=True,
            decode_data=False,
            timeout=self.idle_timeout,
        )
        try:
            controller.start()
        except BaseException:
            controller.stop(no_assert=True)
            raise
        self.port = port
        self._controller = controller

    def stop(self) -> None:
        """Close every open session, then the listener and the event loop thread."""
        if self._controller is not None:
            self._controller.stop()
            self._controller = None

    def __enter__(self) -> SMTPServer:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()
