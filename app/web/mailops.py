"""The mail operations a request performs: check a login, send a message, prepare a fetch.

This is where the web app meets the protocol clients: it builds them from the account and
the settings (TLS trust, timeouts, limits), keeps the redacted dialogue for the log page,
and turns a protocol error into a `MailOperationFailed` carrying the user's sentence.
"""

from __future__ import annotations

import ssl
from dataclasses import dataclass, field

from flask import current_app
from flask_babel import force_locale, get_locale

from app.config import Settings
from app.fetch.jobs import FetchRequest
from app.mail.errors import AuthFailed, MailError, RecipientsRefused
from app.mail.pop3 import POP3Client
from app.mail.replies import SMTPReply
from app.mail.security import make_tls_context
from app.mail.smtp import SendResult, SMTPClient
from app.mail.transcript import Transcript
from app.messages import OutgoingMessage
from app.web.accounts import Account, Server
from app.web.mailerrors import describe
from app.web.texts import say


@dataclass
class MailOperationFailed(Exception):
    """A mail operation failed; `message` is for the user, `log` the redacted dialogue,
    `refused` what the server said to each recipient when it refused them all, and
    `credentials_refused` whether it was the password the server turned down."""

    message: str
    log: list[str] = field(default_factory=list)
    refused: dict[str, SMTPReply] = field(default_factory=dict)
    credentials_refused: bool = False

    def __str__(self) -> str:
        return self.message


def tls_context(settings: Settings) -> ssl.SSLContext:
    """One verifying context per app (building one reads the CA bundle from disk)."""
    contexts = current_app.extensions.setdefault("pochta.tls", {})
    key = str(settings.ca_file)
    if key not in contexts:
        contexts[key] = make_tls_context(settings.ca_file)
    return contexts[key]


# A web request waits for these, so each session has a budget on top of the per-read timeout
# (a hostile server could otherwise answer every line just in time, forever).
LOGIN_TIME_LIMIT = 2
SEND_TIME_LIMIT = 5


def pop3_client(
    account: Account,
    settings: Settings,
    transcript: Transcript,
    *,
    context: ssl.SSLContext | None = None,
    limit: float | None = None,
) -> POP3Client:
    return POP3Client(
        account.pop3.host,
        account.pop3.port,
        security=account.pop3.security,
        tls_context=context or tls_context(settings),
        timeout=settings.mail_timeout,
        transcript=transcript,
        max_message_bytes=settings.max_message_bytes,
        time_limit=limit,
    )


def smtp_client(
    account: Account, settings: Settings, transcript: Transcript, *, limit: float | None = None
) -> SMTPClient:
    return SMTPClient(
        account.smtp.host,
        account.smtp.port,
        security=account.smtp.security,
        tls_context=tls_context(settings),
        timeout=settings.mail_timeout,
        transcript=transcript,
        time_limit=limit,
    )


def _failure(
    error: MailError, protocol: str, server: Server, lines: list[str]
) -> MailOperationFailed:
    return MailOperationFailed(
        describe(error, protocol, server.host, server.port),
        lines,
        credentials_refused=isinstance(error, AuthFailed),
    )


def check_login(account: Account, password: str, settings: Settings) -> list[str]:
    """Log in to POP3 and AUTH to SMTP (then QUIT both); the combined log on success."""
    pop3_log = Transcript("pochta.pop3")
    smtp_log = Transcript("pochta.smtp")
    limit = LOGIN_TIME_LIMIT * settings.mail_timeout
    try:
        with pop3_client(account, settings, pop3_log, limit=limit) as pop:
            pop.login(account.username, password)
    except MailError as exc:
        raise _failure(exc, "POP3", account.pop3, pop3_log.lines()) from exc
    try:
        with smtp_client(account, settings, smtp_log, limit=limit) as smtp:
            smtp.login(account.username, password)
    except MailError as exc:
        raise _failure(exc, "SMTP", account.smtp, pop3_log.lines() + smtp_log.lines()) from exc
    return pop3_log.lines() + smtp_log.lines()


def send(
    account: Account, password: str, settings: Settings, message: OutgoingMessage
) -> tuple[SendResult, list[str]]:
    """Send one message; the per-recipient result and the log."""
    transcript = Transcript("pochta.smtp")
    limit = SEND_TIME_LIMIT * settings.mail_timeout
    try:
        with smtp_client(account, settings, transcript, limit=limit) as smtp:
            smtp.login(account.username, password)
            result = smtp.send(
                message.envelope_from,
                message.envelope_recipients,
                message,  # written out as it goes: attachments are never in memory whole
                smtputf8=message.needs_smtputf8,
            )
    except MailError as exc:
        failure = _failure(exc, "SMTP", account.smtp, transcript.lines())
        if isinstance(exc, RecipientsRefused):
            failure.refused = exc.refused
        raise failure from exc
    return result, transcript.lines()


def fetch_request(account: Account, password: str, settings: Settings) -> FetchRequest:
    """What a background fetch needs, prepared now (the thread has no app context)."""
    context = tls_context(settings)

    def connect(transcript: Transcript) -> POP3Client:
        # No time limit: a fetch runs in the background, its progress in view.
        client = pop3_client(account, settings, transcript, context=context)
        client.connect()
        try:
            client.login(account.username, password)
        except BaseException:
            client.close()
            raise
        return client

    app = current_app._get_current_object()  # type: ignore[attr-defined]
    locale = str(get_locale() or "en")

    def describe_error(error: MailError) -> str:
        """In the user's language, although the job's thread has no request."""
        with app.app_context(), force_locale(locale):
            return describe(error, "POP3", account.pop3.host, account.pop3.port)

    def say_in_locale(text: str) -> str:
        """The job's own sentences, likewise; English if even that fails."""
        try:
            with app.app_context(), force_locale(locale):
                return say(text)
        except Exception:
            return str(text)

    return FetchRequest(
        account=account.key,
        connect=connect,
        delete=not account.keep_on_server,
        max_message_bytes=settings.max_message_bytes,
        describe=describe_error,
        say=say_in_locale,
        stale_after=settings.fetch_stale_seconds,
    )
