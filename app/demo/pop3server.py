"""A small, strict POP3 server over the demo mailboxes (RFC 1939, 2449, 2595, 5034).

It exists so `pochta demo` works with no mail account and so the test suite has a fast,
rootless, real peer for Pochta's POP3 client: implicit TLS, STLS or plaintext; USER/PASS,
AUTH PLAIN and APOP; pipelining; RFC 2449 response codes; one session per maildrop.

One thread accepts, one thread per session talks. Each session reads through its own buffer
(so pipelined commands are answered in order) and that buffer is thrown away at STLS, so
nothing sent in plaintext after STLS is ever acted on.
"""

from __future__ import annotations

import binascii
import contextlib
import hashlib
import hmac
import logging
import os
import selectors
import socket
import ssl
import threading
import time
from base64 import b64decode
from collections.abc import Callable
from dataclasses import dataclass, field

from app.demo.mailboxes import Mailboxes, StoredMessage
from app.mail.security import Security

log = logging.getLogger(__name__)

MAX_COMMAND = 255  # RFC 2449 §4: a command line is at most 255 octets, CRLF included
MAX_SASL_LINE = 8192  # a SASL continuation line (base64 of user + password)
SEND_CHUNK = 64 * 1024
IMPLEMENTATION = "Pochta-demo"
PLAINTEXT_REFUSED = "-ERR [AUTH] Plaintext authentication disallowed on non-secure connections"


class LineTooLongError(Exception):
    """The client sent more than the cap before CRLF; the rest of the line was discarded."""


class ClientGoneError(Exception):
    """The client closed the connection (or it broke)."""


class LineReader:
    """Reads CRLF-terminated lines from a socket through a buffer that can be discarded."""

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self._buffer = bytearray()

    def discard(self) -> None:
        """Forget everything read but not yet consumed (pipelined plaintext at STLS)."""
        self._buffer.clear()

    def readline(self, limit: int) -> bytes:
        """One line without its CRLF (a bare LF is accepted); LineTooLongError past `limit`."""
        while True:
            end = self._buffer.find(b"\n")
            if end >= 0:
                line = bytes(self._buffer[: end + 1])
                del self._buffer[: end + 1]
                if len(line) > limit:
                    raise LineTooLongError
                return line.rstrip(b"\r\n")
            if len(self._buffer) > limit:
                self._skip_rest_of_line()
                raise LineTooLongError
            self._fill()

    def _skip_rest_of_line(self) -> None:
        while True:
            end = self._buffer.find(b"\n")
            if end >= 0:
                del self._buffer[: end + 1]
                return
            self._buffer.clear()
            self._fill()

    def _fill(self) -> None:
        data = self.sock.recv(16384)
        if not data:
            raise ClientGoneError
        self._buffer += data


def dot_stuffed(lines: list[bytes]) -> bytes:
    """Lines (each ending CRLF) as a multi-line response body, terminated by `.CRLF`."""
    out = bytearray()
    for line in lines:
        if line.startswith(b"."):
            out += b"."
        out += line
    out += b".\r\n"
    return bytes(out)


def split_lines(data: bytes) -> list[bytes]:
    """A stored message (CRLF line endings) as its lines, each keeping its CRLF."""
    lines = data.split(b"\r\n")
    if lines and lines[-1] == b"":
        lines.pop()
    return [line + b"\r\n" for line in lines]


def top_lines(data: bytes, body_lines: int) -> list[bytes]:
    """The header, the blank line and the first `body_lines` lines of the body."""
    lines = split_lines(data)
    try:
        blank = lines.index(b"\r\n")
    except ValueError:
        return lines
    return lines[: blank + 1 + body_lines]


@dataclass
class Maildrop:
    """What one session sees: the messages present at login and which are marked deleted."""

    user: str
    messages: list[StoredMessage]
    deleted: set[int] = field(default_factory=set)

    def live(self) -> list[tuple[int, StoredMessage]]:
        return [(n, m) for n, m in enumerate(self.messages, 1) if n not in self.deleted]

    def get(self, number: int) -> StoredMessage | None:
        if number < 1 or number > len(self.messages) or number in self.deleted:
            return None
        return self.messages[number - 1]


class Session:
    """One POP3 conversation: AUTHORIZATION, TRANSACTION, then UPDATE on QUIT."""

    def __init__(self, server: POP3Server, sock: socket.socket, peer: str) -> None:
        self.server = server
        self.mailboxes = server.mailboxes
        self.sock = sock
        self.peer = peer
        self.reader = LineReader(sock)
        self.secure = False
        self.pending_user: str | None = None
        self.drop: Maildrop | None = None
        self.timestamp = f"<{os.getpid()}.{time.time_ns()}@{server.hostname}>"
        self.greeted = False
        self.done = False

    # -- the loop --------------------------------------------------------------------------

    def run(self) -> None:
        try:
            self.sock.settimeout(self.server.idle_timeout)
            if self.server.security is Security.TLS:
                self._start_tls()
            self.send(f"+OK {IMPLEMENTATION} POP3 server ready {self.timestamp}")
            self.greeted = True
            while not self.done:
                self._one_command()
        except TimeoutError:
            if self.greeted:  # not in the middle of a TLS handshake
                self._try_send("-ERR Autologout; idle for too long")
        except (ClientGoneError, OSError) as error:
            log.debug("POP3 %s: connection ended: %s", self.peer, error)
        finally:
            if self.drop is not None:
                self.mailboxes.unlock(self.drop.user)
            self.sock.close()

    def _one_command(self) -> None:
        try:
            line = self.reader.readline(MAX_COMMAND)
        except LineTooLongError:
            self.send("-ERR Command line too long")
            return
        try:
            text = line.decode("utf-8")
        except UnicodeDecodeError:
            self.send("-ERR Command is not valid UTF-8")
            return
        verb, _, arg = text.partition(" ")
        known = verb.isascii() and verb.isalpha()
        handler = getattr(self, f"cmd_{verb.lower()}", None) if known else None
        if handler is None or not self._allowed(verb.upper()):
            self.send("-ERR Unknown command, or not valid in this state")
            return
        handler(arg)

    def _allowed(self, verb: str) -> bool:
        anytime = {"CAPA", "QUIT"}
        before_login = {"USER", "PASS", "AUTH", "APOP", "STLS"}
        if verb in anytime:
            return True
        return (verb in before_login) == (self.drop is None)

    # -- I/O -------------------------------------------------------------------------------

    def send(self, line: str) -> None:
        self.sock.sendall(line.encode("utf-8") + b"\r\n")

    def _try_send(self, line: str) -> None:
        with contextlib.suppress(OSError):
            self.send(line)

    def send_multiline(self, status: str, lines: list[bytes]) -> None:
        payload = status.encode("utf-8") + b"\r\n" + dot_stuffed(lines)
        for start in range(0, len(payload), SEND_CHUNK):
            self.sock.sendall(payload[start : start + SEND_CHUNK])

    def _start_tls(self) -> None:
        self.reader.discard()
        assert self.server.tls_context is not None
        self.sock = self.server.tls_context.wrap_socket(self.sock, server_side=True)
        self.reader.sock = self.sock
        self.secure = True

    # -- state helpers ---------------------------------------------------------------------

    def _plaintext_allowed(self) -> bool:
        return self.secure or self.server.allow_plaintext_auth

    def _login(self, user: str | None) -> None:
        """Finish any authentication: lock the maildrop and enter TRANSACTION."""
        if user is None:
            self.send("-ERR [AUTH] Authentication failed")
            return
        if not self.mailboxes.try_lock(user):
            self.send("-ERR [IN-USE] Mailbox is locked by another session")
            return
        try:
            messages = self.mailboxes.list(user)
        except BaseException:
            self.mailboxes.unlock(user)
            raise
        self.drop = Maildrop(user, messages)
        count = len(messages)
        self.send(f"+OK Logged in; {count} message{'s' if count != 1 else ''}")

    def _message(self, arg: str) -> tuple[int, StoredMessage] | None:
        """Parse a message-number argument, answering -ERR when it names nothing."""
        assert self.drop is not None
        number = _number(arg)
        message = self.drop.get(number) if number is not None else None
        if number is None or message is None:
            self.send("-ERR No such message")
            return None
        return number, message

    # -- AUTHORIZATION ---------------------------------------------------------------------

    def cmd_capa(self, arg: str) -> None:
        caps = ["TOP", "UIDL", "RESP-CODES", "AUTH-RESP-CODE", "PIPELINING"]
        if self.drop is None and self._plaintext_allowed():
            caps += ["USER", "SASL PLAIN"]
        if self.drop is None and self.server.security is Security.STARTTLS and not self.secure:
            caps.append("STLS")
        caps.append(f"IMPLEMENTATION {IMPLEMENTATION}")
        self.send_multiline("+OK Capability list follows", [c.encode() + b"\r\n" for c in caps])

    def cmd_stls(self, arg: str) -> None:
        if self.server.security is not Security.STARTTLS:
            self.send("-ERR STLS not supported here")
        elif self.secure:
            self.send("-ERR Already using TLS")
        else:
            self.send("+OK Begin TLS negotiation")
            self._start_tls()
            self.pending_user = None

    def cmd_user(self, arg: str) -> None:
        if not self._plaintext_allowed():
            self.send(PLAINTEXT_REFUSED)
        elif not arg:
            self.send("-ERR USER needs a name")
        else:
            self.pending_user = arg
            self.send("+OK Send the password")

    def cmd_pass(self, arg: str) -> None:
        if not self._plaintext_allowed():
            self.send(PLAINTEXT_REFUSED)
        elif self.pending_user is None:
            self.send("-ERR USER first")
        else:
            login, self.pending_user = self.pending_user, None
            self._login(self.mailboxes.authenticate(login, arg))

    def cmd_apop(self, arg: str) -> None:
        login, _, digest = arg.rpartition(" ")
        user = self.mailboxes.user_for_login(login) if login else None
        if user is not None:
            secret = (self.timestamp + self.mailboxes.password_of(user)).encode("utf-8")
            expected = hashlib.md5(secret, usedforsecurity=False).hexdigest()
            if not hmac.compare_digest(expected.encode(), digest.lower().encode()):
                user = None
        self._login(user)

    def cmd_auth(self, arg: str) -> None:
        mechanism, _, initial = arg.partition(" ")
        if not mechanism:
            self.send_multiline("+OK Mechanisms follow", [b"PLAIN\r\n"])
        elif mechanism.upper() != "PLAIN":
            self.send("-ERR Unsupported authentication mechanism")
        elif not self._plaintext_allowed():
            self.send(PLAINTEXT_REFUSED)
        else:
            self._auth_plain(initial)

    def _auth_plain(self, initial: str) -> None:
        if not initial:
            self.send("+ ")
            try:
                initial = self.reader.readline(MAX_SASL_LINE).decode("ascii", "replace")
            except LineTooLongError:
                self.send("-ERR [AUTH] Authentication response too long")
                return
            if initial == "*":
                self.send("-ERR Authentication cancelled")
                return
        credentials = _decode_plain("" if initial == "=" else initial)
        if credentials is None:
            self.send("-ERR [AUTH] Malformed PLAIN response")
            return
        authzid, login, password = credentials
        user = self.mailboxes.authenticate(login, password)
        if authzid and user is not None and self.mailboxes.user_for_login(authzid) != user:
            user = None
        self._login(user)

    # -- TRANSACTION -----------------------------------------------------------------------

    def cmd_stat(self, arg: str) -> None:
        assert self.drop is not None
        live = self.drop.live()
        self.send(f"+OK {len(live)} {sum(m.size for _, m in live)}")

    def cmd_list(self, arg: str) -> None:
        self._listing(arg, lambda m: str(m.size))

    def cmd_uidl(self, arg: str) -> None:
        self._listing(arg, lambda m: m.uid)

    def _listing(self, arg: str, column: Callable[[StoredMessage], str]) -> None:
        assert self.drop is not None
        if arg:
            found = self._message(arg)
            if found is not None:
                self.send(f"+OK {found[0]} {column(found[1])}")
            return
        lines = [f"{n} {column(m)}\r\n".encode() for n, m in self.drop.live()]
        self.send_multiline(f"+OK {len(lines)} messages", lines)

    def cmd_retr(self, arg: str) -> None:
        found = self._message(arg)
        if found is not None:
            data = self._read(found[1])
            if data is not None:
                self.send_multiline(f"+OK {found[1].size} octets", split_lines(data))

    def cmd_top(self, arg: str) -> None:
        number, _, count = arg.partition(" ")
        lines = _number(count, minimum=0)
        if lines is None:
            self.send("-ERR TOP needs a message number and a line count")
            return
        found = self._message(number)
        if found is not None:
            data = self._read(found[1])
            if data is not None:
                self.send_multiline("+OK Top of message follows", top_lines(data, lines))

    def _read(self, message: StoredMessage) -> bytes | None:
        assert self.drop is not None
        try:
            return self.mailboxes.read(self.drop.user, message.uid)
        except OSError:
            self.send("-ERR [SYS/TEMP] Message is gone")
            return None

    def cmd_dele(self, arg: str) -> None:
        found = self._message(arg)
        if found is not None:
            assert self.drop is not None
            self.drop.deleted.add(found[0])
            self.send(f"+OK Message {found[0]} deleted")

    def cmd_rset(self, arg: str) -> None:
        assert self.drop is not None
        self.drop.deleted.clear()
        self.send(f"+OK {len(self.drop.messages)} messages")

    def cmd_noop(self, arg: str) -> None:
        self.send("+OK")

    def cmd_quit(self, arg: str) -> None:
        self.done = True
        if self.drop is None:
            self.send("+OK Bye")
            return
        drop, self.drop = self.drop, None
        uids = [drop.messages[n - 1].uid for n in sorted(drop.deleted)]
        try:
            failed = self.mailboxes.delete(drop.user, uids)
        finally:
            # Unlocked before the answer: a client that logs in again as soon as it reads
            # "+OK" must not find its own finished session still holding the maildrop.
            self.mailboxes.unlock(drop.user)
        if failed:
            self.send(f"-ERR [SYS/TEMP] {len(failed)} deleted messages not removed")
        else:
            self.send("+OK Bye")


def _number(text: str, minimum: int = 1) -> int | None:
    text = text.strip()
    if not text.isascii() or not text.isdigit() or len(text) > 9:
        return None
    value = int(text)
    return value if value >= minimum else None


def _decode_plain(blob: str) -> tuple[str, str, str] | None:
    """RFC 4616 PLAIN: authzid NUL authcid NUL passwd, all UTF-8."""
    try:
        parts = b64decode(blob.encode("ascii"), validate=True).decode("utf-8").split("\x00")
    except (binascii.Error, UnicodeError, ValueError):
        return None
    if len(parts) != 3 or not parts[1]:
        return None
    return parts[0], parts[1], parts[2]


class POP3Server:
    """Listens on `host:port` (0 picks a free port; `.port` is the real one after start()).

    `allow_plaintext_auth=None` means: allow USER/PASS and AUTH PLAIN on an unprotected
    connection only when the whole server is plaintext (`Security.NONE`); in STLS mode the
    client must upgrade first, like Dovecot's disable_plaintext_auth.
    """

    def __init__(
        self,
        mailboxes: Mailboxes,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        security: Security = Security.TLS,
        tls_context: ssl.SSLContext | None = None,
        allow_plaintext_auth: bool | None = None,
        idle_timeout: float = 600.0,
        hostname: str = "localhost",
    ) -> None:
        if security is not Security.NONE and tls_context is None:
            raise ValueError(f"POP3 security {security.value!r} needs a TLS context")
        self.mailboxes = mailboxes
        self.host = host
        self.port = port
        self.security = security
        self.tls_context = tls_context
        if allow_plaintext_auth is None:
            allow_plaintext_auth = security is Security.NONE
        self.allow_plaintext_auth = allow_plaintext_auth
        self.idle_timeout = idle_timeout
        self.hostname = hostname
        self._listener: socket.socket | None = None
        self._wake_r: socket.socket | None = None
        self._wake_w: socket.socket | None = None
        self._acceptor: threading.Thread | None = None
        self._lock = threading.Lock()
        self._sessions: dict[threading.Thread, socket.socket] = {}
        self._stopping = False

    def start(self) -> None:
        if self._acceptor is not None:
            raise RuntimeError("POP3 server already running")
        listener = socket.create_server((self.host, self.port), family=address_family(self.host))
        self._listener = listener
        self.port = listener.getsockname()[1]
        self._wake_r, self._wake_w = socket.socketpair()
        self._stopping = False
        self._acceptor = threading.Thread(
            target=self._accept_loop, name=f"pop3-accept-{self.port}", daemon=True
        )
        self._acceptor.start()

    def stop(self) -> None:
        """Stop accepting, drop every open session (no UPDATE: deletes are not applied)."""
        if self._acceptor is None:
            return
        with self._lock:
            self._stopping = True
        assert self._wake_w is not None
        self._wake_w.send(b"x")
        self._acceptor.join()
        self._acceptor = None
        for sock in (self._listener, self._wake_r, self._wake_w):
            if sock is not None:
                sock.close()
        self._listener = self._wake_r = self._wake_w = None
        with self._lock:
            for handle in self._sessions.values():
                _shutdown(handle)
            threads = list(self._sessions)
        for thread in threads:
            thread.join()

    def __enter__(self) -> POP3Server:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def _accept_loop(self) -> None:
        assert self._listener is not None and self._wake_r is not None
        with selectors.DefaultSelector() as selector:
            selector.register(self._listener, selectors.EVENT_READ)
            selector.register(self._wake_r, selectors.EVENT_READ)
            while not self._stopping:
                for key, _ in selector.select():
                    if key.fileobj is self._listener:
                        self._accept_one()

    def _accept_one(self) -> None:
        assert self._listener is not None
        try:
            sock, address = self._listener.accept()
        except BlockingIOError:
            return
        except OSError:  # out of descriptors and the like: back off instead of spinning
            log.exception("POP3 accept failed")
            time.sleep(0.1)
            return
        with self._lock:
            if self._stopping:
                sock.close()
                return
            # A duplicate descriptor of the same connection: shutting it down from stop()
            # wakes the session even after STLS has replaced its socket object.
            handle = sock.dup()
            peer = f"{address[0]}:{address[1]}"
            thread = threading.Thread(
                target=self._serve, args=(sock, peer, handle), name=f"pop3-{peer}", daemon=True
            )
            self._sessions[thread] = handle
            thread.start()

    def _serve(self, sock: socket.socket, peer: str, handle: socket.socket) -> None:
        try:
            Session(self, sock, peer).run()
        except Exception:  # a session must never take the server down
            log.exception("POP3 session %s failed", peer)
        finally:
            with self._lock:
                self._sessions.pop(threading.current_thread(), None)
                handle.close()


def address_family(host: str) -> socket.AddressFamily:
    """IPv6 for an IPv6 literal (`::1`), else IPv4: the demo binds loopback literals."""
    return socket.AF_INET6 if ":" in host else socket.AF_INET


def _shutdown(sock: socket.socket) -> None:
    with contextlib.suppress(OSError):
        sock.shutdown(socket.SHUT_RDWR)
