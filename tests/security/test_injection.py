"""Header and command injection (issue 5, item 7): no CR, LF or other line break typed into
any field reaches a header or a protocol command line; invalid addresses are form errors.

The SMTP side is the demo server in plaintext mode behind a relay that records every byte
Pochta sent, so the tests read the exact commands the server saw and the exact message it
stored. The POP3 side is a fake server that records every command line.
"""

from __future__ import annotations

import email
import email.policy
import io
import os
import re
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from flask import Flask
from flask.testing import FlaskClient

from app import create_app
from app.cli import main
from app.demo.server import DemoMailServer
from app.mail.security import Security
from tests.security.fakes import FakeMailServer, RecordingRelay
from tests.security.pages import parse
from tests.web.conftest import app_config, csrf_token, login_data, post_form

BOB = "bob@demo.pochta.test"
CAROL = "carol@demo.pochta.test"
LINE_BREAKS = {
    "crlf": "\r\n", "lf": "\n", "cr": "\r", "nul": "\x00", "vt": "\x0b", "ff": "\x0c",
    "nel": "\x85", "line-separator": "\u2028", "paragraph-separator": "\u2029",
    "file-separator": "\x1c",
}
# Every command Pochta may send in a send session, each strictly shaped.
SMTP_COMMAND = re.compile(
    rb"EHLO [!-~]+|AUTH PLAIN [A-Za-z0-9+/=]+|AUTH LOGIN|[A-Za-z0-9+/=]+|"
    rb"MAIL FROM:<[!-;=?-~]*>( [A-Z0-9=]+)*|RCPT TO:<[!-;=?-~]+>( [A-Z0-9=;+]+)*|"
    rb"DATA|QUIT|RSET|NOOP"
)


@dataclass
class Wire:
    app: Flask
    browser: FlaskClient
    server: DemoMailServer
    relay: RecordingRelay

    def sessions(self) -> list[tuple[list[bytes], list[bytes]]]:
        """(command lines, DATA contents) of each SMTP connection so far."""
        out = []
        for sent in self.relay.sent:
            commands, data, inside = [], [], None
            for line in bytes(sent).split(b"\r\n"):
                if inside is not None:
                    if line == b".":
                        data.append(b"\r\n".join(inside) + b"\r\n")
                        inside = None
                    else:
                        inside.append(line[1:] if line.startswith(b"..") else line)
                elif line:
                    commands.append(line)
                    if line == b"DATA":
                        inside = []
            out.append((commands, data))
        return out

    def delivered(self) -> dict[str, list[bytes]]:
        return {user: [m.path.read_bytes() for m in self.server.mailboxes.list(user)]
                for user in self.server.mailboxes.users}


@pytest.fixture
def wire(tmp_path: Path) -> Iterator[Wire]:
    with DemoMailServer(tmp_path / "mailserver",
                        users={"alice": "alice-pw", "bob": "bob-pw", "carol": "carol-pw"},
                        pop3_security=Security.TLS, smtp_security=Security.NONE) as server, \
            RecordingRelay(server.smtp_port) as relay:
        application = create_app(app_config(tmp_path, server))
        try:
            browser = application.test_client()
            response = post_form(browser, "/login", login_data(
                server, smtp_host="127.0.0.1", smtp_port=relay.port, smtp_security="none"))
            assert response.status_code == 303, response.get_data(as_text=True)[:500]
            yield Wire(application, browser, server, relay)
        finally:
            application.extensions["pochta.store"].close()


def compose(wire: Wire, **fields: str) -> tuple[int, str]:
    form = {"to": BOB, "subject": "hello", "body": "hello", **fields}
    response = post_form(wire.browser, "/compose", form)
    return response.status_code, response.get_data(as_text=True)


def invalid_fields(page: str) -> set[str]:
    """The names of the form fields the page marks as invalid."""
    return {e.get("name") or "" for e in parse(page).elements if e.get("aria-invalid") == "true"}


def typed_back(page: str, field: str) -> str:
    (element,) = [e for e in parse(page).elements if e.get("name") == field]
    return element.get("value") or ""


def assert_nothing_sent(wire: Wire, before: int) -> None:
    """No new SMTP session beyond login's check, nothing stored anywhere."""
    assert len(wire.relay.sent) == before
    assert all(not messages for messages in wire.delivered().values())


# -- typed fields: form errors, nothing on the wire ---------------------------------------------

@pytest.mark.parametrize("brk", sorted(LINE_BREAKS))
def test_line_break_in_the_subject_is_a_form_error(wire: Wire, brk: str) -> None:
    before = len(wire.relay.sent)
    subject = f"Hello{LINE_BREAKS[brk]}Bcc: {CAROL}"
    status, page = compose(wire, subject=subject)
    assert status == 400
    assert invalid_fields(page) == {"subject"}
    assert typed_back(page, "subject").replace("\r\n", "\n") == subject.replace("\r\n", "\n") \
        or brk in ("cr", "nul")  # a bare CR or NUL may be normalised in the value attribute
    assert_nothing_sent(wire, before)


ADDRESS_ATTACKS = {
    "rcpt-after-crlf": f"{BOB}\r\nRCPT TO:<{CAROL}>",
    "rcpt-after-bracket": f"{BOB}>\r\nRCPT TO:<{CAROL}",
    "header-in-name": f'"Bob\r\nBcc: {CAROL}" <{BOB}>',
    "header-in-bare-name": f"Bob\nX-Injected: yes <{BOB}>",
    "nul-joined": f"{BOB}\x00{CAROL}",
    "line-separator": f"{BOB}\u2028RCPT TO:<{CAROL}>",
    "esmtp-parameter": f"{BOB}> NOTIFY=NEVER ORCPT=rfc822;{CAROL}",
    "nel-in-quoted-name": f'"Bob\x85Bcc: {CAROL}" <{BOB}>',
    "vt-in-quoted-name": f'"Bob\x0bBcc: {CAROL}" <{BOB}>',
    "line-separator-in-quoted-name": f'"Bob\u2028Bcc: {CAROL}" <{BOB}>',
    "unbalanced": f"<{BOB}",
    "no-at": "bob",
    "two-at": f"bob@{CAROL}",
    "empty-domain-label": "bob@demo..pochta.test",
}


@pytest.mark.parametrize("field", ["to", "cc", "bcc"])
@pytest.mark.parametrize("attack", sorted(ADDRESS_ATTACKS))
def test_bad_address_is_a_form_error(wire: Wire, field: str, attack: str) -> None:
    before = len(wire.relay.sent)
    fields = {"to": BOB} if field != "to" else {}
    status, page = compose(wire, **fields, **{field: ADDRESS_ATTACKS[attack]})
    assert status == 400
    assert field in invalid_fields(page)
    assert_nothing_sent(wire, before)


def multipart_upload(token: str, disposition: bytes, **fields: str) -> tuple[bytes, str]:
    """A compose POST built by hand, as a client other than a browser may send it."""
    chunks = [
        b'--BB\r\nContent-Disposition: form-data; name="%s"\r\n\r\n%s\r\n'
        % (name.encode(), value.encode())
        for name, value in {"csrf_token": token, **fields}.items()
    ]
    chunks.append(b"--BB\r\nContent-Disposition: " + disposition
                  + b"\r\nContent-Type: text/plain\r\n\r\nattached words\r\n")
    return b"".join(chunks) + b"--BB--\r\n", "multipart/form-data; boundary=BB"


@pytest.mark.parametrize("encoded_name", [
    b"x.txt%0D%0AX-Injected%3A%20yes",
    b"x.txt%0AContent-Type%3A%20text%2Fhtml",
    b"x.txt%0DX-Injected%3A%20yes",
    b"x%E2%80%A8X-Injected%3A%20yes.txt",
    b"x%C2%85X-Injected%3A%20yes.txt",
    b"x%00.txt",
])
def test_line_break_in_a_file_name_never_reaches_a_header(wire: Wire,
                                                          encoded_name: bytes) -> None:
    """The name is refused, or sent with its line breaks made harmless: never a header."""
    before = len(wire.relay.sent)
    body, kind = multipart_upload(
        csrf_token(wire.browser, "/compose"),
        b"form-data; name=\"attachments\"; filename*=UTF-8''" + encoded_name,
        to=BOB, subject="file", body="see file",
    )
    response = wire.browser.post("/compose", data=body, content_type=kind)
    if response.status_code == 400:
        assert "see file" in response.get_data(as_text=True)  # the text is kept
        assert_nothing_sent(wire, before)
        return
    assert response.status_code == 303
    _, message = last_session(wire)
    assert not re.search(rb"^(X-Injected|Content-Type: text/html)", message, re.MULTILINE | re.I)
    parsed = email.message_from_bytes(message, policy=email.policy.default)
    (attachment,) = list(parsed.iter_attachments())
    assert attachment.get_content_type() == "text/plain"
    name = attachment.get_filename() or ""
    assert name and name.isprintable(), name
    assert "x-injected" not in header_names(message)


# -- what is accepted goes out with no injected header or command -------------------------------

def last_session(wire: Wire) -> tuple[list[bytes], bytes]:
    commands, data = wire.sessions()[-1]
    (message,) = data
    return commands, message


def header_names(message: bytes) -> list[str]:
    parsed = email.message_from_bytes(message, policy=email.policy.default)
    return [name.lower() for name in parsed]


def test_accepted_look_alikes_add_no_header_or_recipient(wire: Wire) -> None:
    status, _ = compose(
        wire,
        to=f'"Evil, Inc. <{CAROL}>" <{BOB}>, "Bcc: {CAROL}" <{BOB}>',
        subject=f"Re: Bcc: {CAROL}\tX-Injected: yes",
        body=f".\r\nRCPT TO:<{CAROL}>\r\n.\r\nQUIT\r\n",
    )
    assert status == 303
    commands, message = last_session(wire)
    assert all(SMTP_COMMAND.fullmatch(c) for c in commands), commands
    assert [c for c in commands if c.startswith(b"RCPT")] == [f"RCPT TO:<{BOB}>".encode()]
    assert next(c for c in commands if c.startswith(b"MAIL")).startswith(
        b"MAIL FROM:<alice@demo.pochta.test>")
    names = header_names(message)
    assert "bcc" not in names and "x-injected" not in names
    assert names.count("subject") == 1 and names.count("to") == 1
    assert wire.delivered()["carol"] == []
    (stored,) = wire.delivered()["bob"]
    parsed = email.message_from_bytes(stored, policy=email.policy.default)
    assert parsed.get_content().replace("\r\n", "\n").startswith(f".\nRCPT TO:<{CAROL}>")


def test_bcc_reaches_the_recipient_but_no_header(wire: Wire) -> None:
    status, _ = compose(wire, to=BOB, bcc=f"Carol <{CAROL}>")
    assert status == 303
    commands, message = last_session(wire)
    assert sorted(c for c in commands if c.startswith(b"RCPT")) == [
        f"RCPT TO:<{BOB}>".encode(), f"RCPT TO:<{CAROL}>".encode()]
    assert "bcc" not in header_names(message)
    assert CAROL.encode() not in message
    assert len(wire.delivered()["carol"]) == 1


def test_quotes_and_semicolons_in_a_file_name_stay_one_parameter(wire: Wire) -> None:
    name = 'a";filename="evil.html;b.txt'
    body, kind = multipart_upload(
        csrf_token(wire.browser, "/compose"),
        b"form-data; name=\"attachments\"; filename*=UTF-8''"
        + b"a%22%3Bfilename%3D%22evil.html%3Bb.txt",
        to=BOB, subject="file", body="see file",
    )
    assert wire.browser.post("/compose", data=body, content_type=kind).status_code == 303
    _, message = last_session(wire)
    parsed = email.message_from_bytes(message, policy=email.policy.default)
    (attachment,) = list(parsed.iter_attachments())
    assert attachment.get_filename() == name
    assert "x-injected" not in header_names(message)


# -- the login fields reach POP3 and SMTP command lines -----------------------------------------

@pytest.mark.parametrize("field", ["username", "password"])
def test_line_break_in_login_credentials_never_reaches_the_server(
        app: Flask, client: FlaskClient, mail_server: DemoMailServer, field: str) -> None:
    with FakeMailServer() as fake:
        form = login_data(mail_server, "alice", pop3_host="127.0.0.1",
                          pop3_port=fake.pop3_port, pop3_security="none",
                          smtp_host="127.0.0.1", smtp_port=fake.smtp_port,
                          smtp_security="none")
        form[field] = f"{form[field]}\r\nDELE 1\r\nMAIL FROM:<x@evil.example>"
        response = post_form(client, "/login", form)
        assert response.status_code in (400, 403)
        assert client.get("/inbox").status_code == 302
        seen = fake.pop3_lines + fake.smtp_lines
        assert not any(line.startswith((b"DELE", b"MAIL")) for line in seen), seen


def test_line_break_in_the_login_address_is_a_form_error(app: Flask, client: FlaskClient,
                                                         mail_server: DemoMailServer) -> None:
    with FakeMailServer() as fake:
        form = login_data(mail_server, "alice", pop3_host="127.0.0.1",
                          pop3_port=fake.pop3_port, pop3_security="none",
                          smtp_host="127.0.0.1", smtp_port=fake.smtp_port,
                          smtp_security="none")
        form["email"] = f"alice@demo.pochta.test\r\nRCPT TO:<{CAROL}>"
        response = post_form(client, "/login", form)
        assert response.status_code == 400
        assert "email" in invalid_fields(response.get_data(as_text=True))
        assert fake.pop3_connections == 0 and fake.smtp_connections == 0


# -- the same fields through `pochta send` -------------------------------------------------------

def pochta_send(wire: Wire, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture,
                *argv: str) -> tuple[int, str]:
    """`pochta send` in-process through the recording relay: (exit status, stderr)."""
    for name in [n for n in os.environ if n.startswith("POCHTA_")]:
        monkeypatch.delenv(name)
    monkeypatch.setenv("POCHTA_PASSWORD", "alice-pw")
    monkeypatch.setattr(sys, "stdin", io.StringIO("hello\n"))
    status = main(["send", "--from", "alice@demo.pochta.test", "--smtp-host", "127.0.0.1",
                   "--smtp-port", str(wire.relay.port), "--smtp-security", "none", *argv])
    return status, capsys.readouterr().err


@pytest.mark.parametrize("brk", sorted(LINE_BREAKS))
def test_line_break_in_a_command_line_subject_sends_nothing(
        wire: Wire, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture,
        brk: str) -> None:
    before = len(wire.relay.sent)
    status, err = pochta_send(wire, monkeypatch, capsys, "--to", BOB,
                              "--subject", f"Hello{LINE_BREAKS[brk]}Bcc: {CAROL}")
    assert status != 0 and len(err.strip().splitlines()) == 1, err
    assert_nothing_sent(wire, before)


@pytest.mark.parametrize("brk", ["crlf", "lf", "nel", "line-separator", "vt"])
def test_line_break_in_an_attached_file_name_sends_nothing(
        wire: Wire, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture,
        tmp_path: Path, brk: str) -> None:
    """A file on disk may be named anything; its name becomes a MIME parameter."""
    attached = tmp_path / f"x{LINE_BREAKS[brk]}X-Injected: yes.txt"
    attached.write_text("attached words")
    before = len(wire.relay.sent)
    status, err = pochta_send(wire, monkeypatch, capsys, "--to", BOB, "--subject", "file",
                              "--attach", str(attached))
    assert status != 0, err
    assert_nothing_sent(wire, before)
