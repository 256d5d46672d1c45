"""One exception tree for both protocols.

Each error carries what the server said (code and text) when there was a reply, so the one
place that talks to people (the web layer, the command line) can quote the server's own
words instead of an opaque "SMTP error".
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from app.mail.replies import Reply


class MailError(Exception):
    """Anything that went wrong talking to a mail server."""

    def __init__(self, message: str, reply: Reply | None = None, command: str | None = None):
        super().__init__(message)
        self.message = message
        self.reply = reply
        self.command = command

    @property
    def code(self) -> int | None:
        """The server's numeric code (SMTP), or None when there was no numeric reply."""
        return self.reply.code if self.reply is not None else None

    @property
    def server_text(self) -> str | None:
        """The server's own words, as sent, for quoting to the user."""
        return self.reply.text if self.reply is not None else None

    def __str__(self) -> str:
        if self.reply is not None and self.reply.text:
            return f"{self.message}: {self.reply.summary()}"
        return self.message


class NetworkError(MailError):
    """The transport failed: no connection, a dropped one, or silence."""


class ConnectFailed(NetworkError):
    """Could not open a connection (refused, unreachable, unknown host)."""


class ConnectionLost(NetworkError):
    """The server closed the connection or it broke in the middle of a session."""


class MailTimeout(NetworkError):
    """The server did not answer within the configured time."""


class TLSFailed(MailError):
    """The TLS handshake failed: an untrusted certificate, a wrong host name, no common
    protocol. Never followed by a plaintext retry."""


class ProtocolViolation(MailError):
    """The server said something the protocol does not allow: a line over the cap, a reply
    that does not parse, data beyond the size limit."""


class StartTLSUnavailable(MailError):
    """The mode is `starttls` but the server does not offer STARTTLS/STLS."""


class AuthFailed(MailError):
    """The server refused the credentials."""


class AuthUnavailable(MailError):
    """No way to authenticate: the server offers no mechanism we can use, or would only
    accept credentials over a plaintext connection the mode did not allow."""


class CommandRefused(MailError):
    """A negative reply to a command (the reply says which and why)."""


class SenderRefused(CommandRefused):
    """MAIL FROM was refused."""


class RecipientsRefused(CommandRefused):
    """Every recipient was refused; `refused` maps each address to the server's reply."""

    def __init__(self, message: str, refused: Mapping[str, Reply]):
        first = next(iter(refused.values()), None)
        super().__init__(message, first, "RCPT")
        self.refused = dict(refused)


class MessageRefused(CommandRefused):
    """DATA or the end of the message data was refused."""


class MessageTooLarge(MailError):
    """A message is over a size limit: the server's SIZE or POCHTA_MAX_MESSAGE_BYTES."""


class ExtensionUnavailable(MailError):
    """The message needs an extension the server lacks (SMTPUTF8 for a UTF-8 address or
    header, 8BITMIME for 8-bit content)."""


class InvalidCommand(MailError):
    """Something that cannot go on a command line (CR, LF, NUL could start another
    command); refused before anything is sent."""


class InvalidAddress(InvalidCommand):
    """An address that cannot go in MAIL FROM or RCPT TO (control characters, angle
    brackets); refused before anything is sent."""
