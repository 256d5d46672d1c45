"""Turning a protocol error into a sentence for the user: the one place that does it.

"SMTP error: authentication failed" is the most common complaint about webmail, so every
sentence here says what failed, on which server, what the server itself said, and what to
try next.
"""

from __future__ import annotations

from flask_babel import gettext as _

from app.mail.errors import (
    AuthFailed,
    AuthUnavailable,
    CommandRefused,
    ConnectFailed,
    ConnectionLost,
    ExtensionUnavailable,
    InvalidAddress,
    MailError,
    MailTimeout,
    MessageTooLarge,
    ProtocolViolation,
    RecipientsRefused,
    SenderRefused,
    StartTLSUnavailable,
    TLSFailed,
)


def _quoted(error: MailError) -> str:
    said = error.reply.summary() if error.reply is not None else ""
    return _(" The server said: “%(words)s”.", words=said) if said else ""


def describe(error: MailError, protocol: str, host: str, port: int) -> str:
    """One or two sentences: what went wrong, the server's words, what to try."""
    where = f"{host}:{port}"
    quoted = _quoted(error)
    if isinstance(error, MailTimeout):
        return _(
            "The %(protocol)s server %(where)s did not answer in time. Check the host and "
            "port, or try again later.", protocol=protocol, where=where,
        )
    if isinstance(error, ConnectFailed):
        return _(
            "Cannot connect to the %(protocol)s server %(where)s (%(reason)s). Check the host "
            "name and port.", protocol=protocol, where=where, reason=error.message,
        ) + quoted
    if isinstance(error, ConnectionLost):
        return _(
            "The connection to the %(protocol)s server %(where)s broke (%(reason)s). "
            "Try again; if it keeps happening, check the port and the security setting.",
            protocol=protocol, where=where, reason=error.message,
        )
    if isinstance(error, TLSFailed):
        return _(
            "A secure connection to the %(protocol)s server %(where)s failed: %(reason)s. "
            "The certificate may be untrusted or made out for another host name; check the "
            "host name, or whether this port expects TLS (choose STARTTLS or TLS to match "
            "the port).", protocol=protocol, where=where, reason=error.message,
        ) + quoted
    if isinstance(error, StartTLSUnavailable):
        return _(
            "The %(protocol)s server %(where)s does not offer STARTTLS, so no password was "
            "sent. Choose TLS if the port expects it from the start.",
            protocol=protocol, where=where,
        )
    if isinstance(error, AuthUnavailable):
        return _(
            "The %(protocol)s server %(where)s offers no way to log in on this connection "
            "(%(reason)s). On an unencrypted connection servers usually hide AUTH: choose "
            "STARTTLS or TLS.", protocol=protocol, where=where, reason=error.message,
        )
    if isinstance(error, AuthFailed):
        return _(
            "The %(protocol)s server %(where)s did not accept the user name or password.",
            protocol=protocol, where=where,
        ) + quoted
    if isinstance(error, RecipientsRefused):
        return _("The server refused every recipient.") + quoted
    if isinstance(error, SenderRefused):
        return _("The server refused the sender address.") + quoted
    if isinstance(error, MessageTooLarge):
        return _("The message is too large: %(reason)s.", reason=error.message)
    if isinstance(error, ExtensionUnavailable):
        return _("The server cannot take this message: %(reason)s.", reason=error.message)
    if isinstance(error, InvalidAddress):
        return _("An address cannot be used: %(reason)s.", reason=error.message)
    if isinstance(error, ProtocolViolation):
        return _(
            "The %(protocol)s server %(where)s answered something Pochta cannot accept "
            "(%(reason)s).", protocol=protocol, where=where, reason=error.message,
        )
    if isinstance(error, CommandRefused):
        return _(
            "The %(protocol)s server %(where)s refused the request.",
            protocol=protocol, where=where,
        ) + quoted
    return _(
        "The %(protocol)s server %(where)s: %(reason)s.",
        protocol=protocol, where=where, reason=str(error),
    )
