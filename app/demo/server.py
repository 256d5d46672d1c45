"""One object that runs the whole demo mail service: SMTP + POP3 on loopback over shared
mailboxes, with its own CA so Pochta can verify TLS for real.

`pochta demo` starts one for a newcomer; the test suite starts one per test as a fast,
rootless peer. Everything lives under one directory: `tls/` (CA and server certificate,
reused across restarts) and `mailboxes/` (one maildrop per user).
"""

from __future__ import annotations

import datetime as dt
import ssl
from collections.abc import Mapping
from pathlib import Path

from cryptography import x509

from app.demo.certs import CertFiles, make_certificates
from app.demo.mailboxes import Mailboxes
from app.demo.pop3server import POP3Server
from app.demo.smtpserver import SMTPServer
from app.mail.security import Security

DEMO_DOMAIN = "demo.pochta.test"
DEMO_USERS: Mapping[str, str] = {"alice": "alice-demo", "bob": "bob-demo"}
CERT_NAMES = ("localhost", "127.0.0.1")


def _still_valid(files: CertFiles, margin: dt.timedelta = dt.timedelta(days=1)) -> bool:
    """All three files exist and the server certificate is good for a while yet."""
    if not all(p.is_file() for p in (files.ca_cert, files.server_cert, files.server_key)):
        return False
    try:
        cert = x509.load_pem_x509_certificate(files.server_cert.read_bytes())
    except ValueError:
        return False
    return cert.not_valid_after_utc > dt.datetime.now(dt.UTC) + margin


def ensure_certificates(directory: Path) -> CertFiles:
    """Reuse the CA and certificate in `directory` when still valid, else make new ones."""
    files = CertFiles(directory / "ca.pem", directory / "server.pem", directory / "server.key")
    if _still_valid(files):
        return files
    return make_certificates(directory, CERT_NAMES)


def server_tls_context(files: CertFiles) -> ssl.SSLContext:
    """The servers' side: our certificate chain, TLS 1.2 or newer, no client certificates."""
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.load_cert_chain(files.server_cert, files.server_key)
    return context


class DemoMailServer:
    """SMTP and POP3 for `users` at `domain` on `host`; ports 0 are chosen free at start().

    `allow_plaintext_auth=None` lets each protocol decide: plaintext AUTH/USER only when its
    mode is `Security.NONE` (in STARTTLS mode the client must upgrade first).
    """

    def __init__(
        self,
        directory: Path,
        *,
        host: str = "127.0.0.1",
        smtp_port: int = 0,
        pop3_port: int = 0,
        users: Mapping[str, str] | None = None,
        pop3_security: Security = Security.TLS,
        smtp_security: Security = Security.STARTTLS,
        domain: str = DEMO_DOMAIN,
        allow_plaintext_auth: bool | None = None,
        max_message_bytes: int = 40 * 1024 * 1024,
        idle_timeout: float = 600.0,
    ) -> None:
        self.directory = Path(directory)
        self.host = host
        self.domain = domain
        self.users: dict[str, str] = dict(DEMO_USERS if users is None else users)
        self.pop3_security = pop3_security
        self.smtp_security = smtp_security
        self.allow_plaintext_auth = allow_plaintext_auth
        self.max_message_bytes = max_message_bytes
        self.idle_timeout = idle_timeout
        self.certificates = ensure_certificates(self.directory / "tls")
        self.mailboxes = Mailboxes(self.directory / "mailboxes", self.users, domain=domain)
        self._wanted_ports = (smtp_port, pop3_port)
        self._smtp: SMTPServer | None = None
        self._pop3: POP3Server | None = None
        self.smtp_port = smtp_port
        self.pop3_port = pop3_port

    @property
    def ca_file(self) -> Path:
        """The PEM file a client must trust (Pochta's POCHTA_CA_FILE)."""
        return self.certificates.ca_cert

    @property
    def running(self) -> bool:
        return self._smtp is not None

    def address(self, user: str) -> str:
        return self.mailboxes.address_of(user)

    def start(self) -> None:
        if self.running:
            raise RuntimeError("the demo mail server is already running")
        context = server_tls_context(self.certificates)
        smtp_port, pop3_port = self._wanted_ports
        smtp = SMTPServer(
            self.mailboxes,
            host=self.host,
            port=smtp_port,
            security=self.smtp_security,
            tls_context=context,
            allow_plaintext_auth=self.allow_plaintext_auth,
            hostname=self.domain,
            max_message_bytes=self.max_message_bytes,
            idle_timeout=self.idle_timeout,
        )
        pop3 = POP3Server(
            self.mailboxes,
            host=self.host,
            port=pop3_port,
            security=self.pop3_security,
            tls_context=context,
            allow_plaintext_auth=self.allow_plaintext_auth,
            idle_timeout=self.idle_timeout,
            hostname=self.domain,
        )
        smtp.start()
        try:
            pop3.start()
        except BaseException:
            smtp.stop()
            raise
        self._smtp, self._pop3 = smtp, pop3
        self.smtp_port, self.pop3_port = smtp.port, pop3.port

    def stop(self) -> None:
        """Stop both servers; open sessions are dropped (POP3 deletes are not applied)."""
        smtp, pop3 = self._smtp, self._pop3
        self._smtp = self._pop3 = None
        try:
            if pop3 is not None:
                pop3.stop()
        finally:
            if smtp is not None:
                smtp.stop()

    def __enter__(self) -> DemoMailServer:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()
