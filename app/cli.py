"""The `pochta` command: serve the web app, run the demo, and send or fetch mail from a shell.

`send` and `fetch` are the lab's two console clients rebuilt on the protocol core: settings
from options or the POCHTA_* variables, the password from POCHTA_PASSWORD or a prompt, the
redacted protocol log on stderr with --transcript, and exit status 0 only on full success.
"""

from __future__ import annotations

import argparse
import contextlib
import getpass
import logging
import mimetypes
import os
import sys
from collections.abc import Iterator, Sequence
from pathlib import Path

from app.config import ConfigError, Settings, load_settings
from app.fetch.emldir import EmlDirectory
from app.fetch.policy import fetch_new
from app.mail.errors import MailError
from app.mail.pop3 import POP3Client
from app.mail.security import Security, make_tls_context
from app.mail.smtp import SMTPClient
from app.messages import (
    AddressError,
    Attachment,
    ComposeError,
    Draft,
    build_message,
    parse_address_list,
)


class CommandError(Exception):
    """A failure to report as one line on stderr and a non-zero exit status."""


# -- shared helpers ---------------------------------------------------------------------


def _password() -> str:
    password = os.environ.get("POCHTA_PASSWORD")
    if password is not None:
        return password
    if not sys.stdin.isatty():
        raise CommandError("no password: set POCHTA_PASSWORD (stdin is not a terminal)")
    return getpass.getpass("Password: ")


@contextlib.contextmanager
def _transcript_to_stderr(enabled: bool) -> Iterator[None]:
    """Print the protocol log to stderr as it happens (the clients log it, redacted), for
    this command only."""
    if not enabled:
        yield
        return
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(
        logging.Formatter("%(asctime)s.%(msecs)03d %(message)s", "%Y-%m-%d %H:%M:%S")
    )
    logger = logging.getLogger("pochta")
    level = logger.level
    logger.addHandler(handler)
    logger.setLevel(logging.DEBUG)
    try:
        yield
    finally:
        logger.removeHandler(handler)
        logger.setLevel(level)


def _server(host: str | None, default_host: str, what: str) -> str:
    chosen = (host or default_host).strip()
    if not chosen:
        raise CommandError(f"no {what} server: use --{what.lower()}-host or POCHTA_{what}_HOST")
    return chosen


def _check_allowed(settings: Settings, host: str) -> None:
    if not settings.host_allowed(host):
        raise CommandError(f"{host} is not in POCHTA_ALLOWED_HOSTS")


# -- pochta send --------------------------------------------------------------------------


def _addresses(values: Sequence[str], what: str) -> list:
    found = []
    for value in values:
        try:
            found += parse_address_list(value)
        except AddressError as exc:
            raise CommandError(f"{what}: {exc}") from None
    return found


def _attachments(paths: Sequence[str]) -> list[Attachment]:
    files = []
    for name in paths:
        path = Path(name)
        try:  # read only while the message goes out, but found readable now
            with path.open("rb"):
                pass
        except OSError as exc:
            raise CommandError(f"cannot read the attachment {name}: {exc.strerror}") from None
        files.append(Attachment(path.name, path, mimetypes.guess_type(path.name)[0]))
    return files


def run_send(args: argparse.Namespace, settings: Settings) -> int:
    senders = _addresses([args.sender], "--from")
    if len(senders) != 1:
        raise CommandError("--from needs exactly one address")
    sender = senders[0]
    draft = Draft(
        to=_addresses(args.to, "--to"),
        cc=_addresses(args.cc, "--cc"),
        bcc=_addresses(args.bcc, "--bcc"),
        subject=args.subject,
        body=sys.stdin.read(),
    )
    host = _server(args.smtp_host, settings.smtp.host, "SMTP")
    _check_allowed(settings, host)
    try:
        message = build_message(
            draft, sender=sender, attachments=_attachments(args.attach),
            hostname_for_message_id=sender.domain,
        )
    except ComposeError as exc:
        raise CommandError(str(exc)) from None
    user = args.user or sender.addr_spec
    password = _password()
    client = SMTPClient(
        host,
        args.smtp_port or settings.smtp.port,
        security=args.smtp_security or settings.smtp.security,
        tls_context=make_tls_context(settings.ca_file),
    )
    with client:
        client.login(user, password)
        result = client.send(
            message.envelope_from, message.envelope_recipients, message,
            smtputf8=message.needs_smtputf8,
        )
    for address, reply in result.accepted.items():
        print(f"accepted  {address}  ({reply.summary()})")
    for address, reply in result.refused.items():
        print(f"refused   {address}  ({reply.summary()})")
    if result.refused:
        raise CommandError(f"{len(result.refused)} of {len(message.envelope_recipients)} "
                           "recipients were refused")
    return 0


# -- pochta fetch -------------------------------------------------------------------------


def run_fetch(args: argparse.Namespace, settings: Settings) -> int:
    host = _server(args.pop3_host, settings.pop3.host, "POP3")
    _check_allowed(settings, host)
    destination = EmlDirectory(Path(args.dest))
    password = _password()
    client = POP3Client(
        host,
        args.pop3_port or settings.pop3.port,
        security=args.pop3_security or settings.pop3.security,
        tls_context=make_tls_context(settings.ca_file),
        max_message_bytes=settings.max_message_bytes,
    )
    with client:
        client.login(args.user, password)
        report = fetch_new(
            client, destination, delete=args.delete,
            max_message_bytes=settings.max_message_bytes,
        )
    print(f"{report.new} new message{'s' if report.new != 1 else ''} saved in {args.dest}")
    if report.deleted:
        print(f"{report.deleted} deleted from the server")
    for failure in report.failures:
        print(f"failed: {failure}", file=sys.stderr)
    if report.failures:
        raise CommandError(f"{len(report.failures)} problem(s) while fetching")
    return 0


# -- pochta serve / pochta demo ----------------------------------------------------------


def run_serve(args: argparse.Namespace, settings: Settings) -> int:
    from app.serving import exec_gunicorn

    exec_gunicorn(f"{args.host}:{args.port}")
    return 0  # not reached: gunicorn took over the process


def run_demo(args: argparse.Namespace, settings: Settings) -> int:
    from app.demo.command import DemoOptions
    from app.demo.command import run_demo as run

    return run(DemoOptions(
        host=args.host, port=args.port, data_dir=Path(args.data_dir),
        smtp_port=args.smtp_port, pop3_port=args.pop3_port,
    ))


# -- the parser ---------------------------------------------------------------------------


def _security(value: str) -> Security:
    try:
        return Security(value.lower())
    except ValueError:
        raise argparse.ArgumentTypeError("choose tls, starttls or none") from None


def _port(value: str) -> int:
    if not value.isdigit() or not 0 < int(value) < 65536:
        raise argparse.ArgumentTypeError("a TCP port is a number from 1 to 65535")
    return int(value)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="pochta", description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    serve = commands.add_parser("serve", help="run the web app under gunicorn")
    serve.add_argument("--host", default="127.0.0.1", metavar="H")
    serve.add_argument("--port", type=_port, default=8000, metavar="P")
    serve.set_defaults(run=run_serve)

    demo = commands.add_parser("demo", help="run the web app with a local demo mail server")
    demo.add_argument("--host", default="127.0.0.1", metavar="H")
    demo.add_argument("--port", type=_port, default=8000, metavar="P")
    demo.add_argument("--data-dir", default="pochta-demo", metavar="DIR",
                      help="where the demo keeps its mail and store (default: ./pochta-demo)")
    demo.add_argument("--smtp-port", type=_port, default=2525, metavar="P")
    demo.add_argument("--pop3-port", type=_port, default=1995, metavar="P")
    demo.set_defaults(run=run_demo)

    send = commands.add_parser("send", help="send a message (body from stdin)")
    send.add_argument("--from", dest="sender", required=True, metavar="ADDR")
    send.add_argument("--to", action="append", required=True, metavar="ADDR")
    send.add_argument("--cc", action="append", default=[], metavar="ADDR")
    send.add_argument("--bcc", action="append", default=[], metavar="ADDR")
    send.add_argument("--subject", default="", metavar="TEXT")
    send.add_argument("--attach", action="append", default=[], metavar="FILE")
    send.add_argument("--user", metavar="NAME", help="login name (default: the --from address)")
    send.add_argument("--smtp-host", metavar="H")
    send.add_argument("--smtp-port", type=_port, metavar="P")
    send.add_argument("--smtp-security", type=_security, metavar="tls|starttls|none")
    send.add_argument("--transcript", action="store_true", help="protocol log on stderr")
    send.set_defaults(run=run_send)

    fetch = commands.add_parser("fetch", help="save new messages as .eml files")
    fetch.add_argument("--user", required=True, metavar="NAME")
    fetch.add_argument("--dest", required=True, metavar="DIR")
    fetch.add_argument("--delete", action="store_true", help="delete from the server once saved")
    fetch.add_argument("--pop3-host", metavar="H")
    fetch.add_argument("--pop3-port", type=_port, metavar="P")
    fetch.add_argument("--pop3-security", type=_security, metavar="tls|starttls|none")
    fetch.add_argument("--transcript", action="store_true", help="protocol log on stderr")
    fetch.set_defaults(run=run_fetch)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        settings = load_settings()
        with _transcript_to_stderr(getattr(args, "transcript", False)):
            return args.run(args, settings)
    except (CommandError, ConfigError) as exc:
        print(f"pochta {args.command}: {exc}", file=sys.stderr)
    except MailError as exc:
        print(f"pochta {args.command}: {type(exc).__name__}: {exc}", file=sys.stderr)
    except KeyboardInterrupt:
        print(f"pochta {args.command}: interrupted", file=sys.stderr)
        return 130
    return 1


if __name__ == "__main__":
    sys.exit(main())
