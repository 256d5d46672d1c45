"""The whole web app, through Flask's test client, against the real Postfix and Dovecot.

Each test logs in with the settings a user would type into the login form, sends through
POST /compose (multipart, CSRF token from the page), lets Postfix deliver into a Maildir,
fetches over POP3 through POST /fetch and its JSON progress, and reads the result back
through the pages a browser would load. What arrives is checked against the Maildir files
themselves.
"""

from __future__ import annotations

import base64
import email.policy
import io
import re
import time
import urllib.parse
from collections.abc import Iterator
from dataclasses import dataclass
from email.message import EmailMessage
from email.parser import BytesParser
from html import unescape
from pathlib import Path

import pytest
from flask import Flask
from flask.testing import FlaskClient
from werkzeug.datastructures import FileStorage, MultiDict
from werkzeug.test import encode_multipart

from app import create_app
from app.demo.server import DemoMailServer
from app.mail.security import Security
from tests.support.realservers import RealServers
from tests.web.conftest import csrf_token, post_form

pytestmark = pytest.mark.realservers

ALICE = "alice@pochta.test"
BOB = "bob@pochta.test"
IVAN = "ivan@pochta.test"

SUBJECT = "Отчёт по лабораторной работе №3 — SMTP и POP3"
BODY = "Привет, Боб!\n\nОтчёт и данные во вложениях.\n\nАлиса\n"
PDF_NAME = "Отчёт «лаба 3».pdf"
PDF_DATA = b"%PDF-1.4\n" + bytes(range(256)) * 40 + b"\n%%EOF\n"
CSV_NAME = "measurements.csv"
CSV_DATA = "время;задержка\r\n10:00;12 мс\r\n10:01;15 мс\r\n".encode()

MESSAGE_LINK = re.compile(r'<a href="/message/([^/"?]+)"[^>]*>([^<]*)</a>')


# -- the app and its users ----------------------------------------------------------------


@pytest.fixture
def servers(real_servers: RealServers) -> RealServers:
    for user in real_servers.users:
        real_servers.clear(user)
    return real_servers


def app_config(servers: RealServers, data_dir: Path) -> dict[str, object]:
    """The login form's defaults point at the real servers, as POCHTA_* would in production."""
    return {
        "TESTING": True,
        "POCHTA_DATA_DIR": str(data_dir),
        "POCHTA_CA_FILE": str(servers.ca_file),
        "POCHTA_SMTP_HOST": "localhost",
        "POCHTA_SMTP_PORT": str(servers.smtp_starttls_port),
        "POCHTA_SMTP_SECURITY": "starttls",
        "POCHTA_POP3_HOST": "localhost",
        "POCHTA_POP3_PORT": str(servers.pop3_tls_port),
        "POCHTA_POP3_SECURITY": "tls",
        "POCHTA_MAIL_TIMEOUT": "10",
        "POCHTA_ALLOWED_HOSTS": "",
    }


@pytest.fixture
def app(servers: RealServers, tmp_path: Path) -> Iterator[Flask]:
    application = create_app(app_config(servers, tmp_path / "data"))
    yield application
    application.extensions["pochta.store"].close()


def smtp_port(servers: RealServers, security: str) -> int:
    return {
        "starttls": servers.smtp_starttls_port,
        "tls": servers.smtp_tls_port,
        "none": servers.smtp_plain_port,
    }[security]


def pop3_port(servers: RealServers, security: str) -> int:
    return {
        "starttls": servers.pop3_starttls_port,
        "tls": servers.pop3_tls_port,
        "none": servers.pop3_plain_port,
    }[security]


def login_data(
    servers: RealServers,
    user: str,
    *,
    smtp: str = "starttls",
    pop3: str = "tls",
    keep_on_server: bool = True,
    password: str | None = None,
) -> dict[str, object]:
    """The login form as a browser posts it: a ticked checkbox sends "y" before the hidden
    "0" that backs it; an unticked one sends only the "0"."""
    return {
        "email": user,
        "password": servers.users[user] if password is None else password,
        "username": "",
        "smtp_host": "localhost",
        "smtp_port": str(smtp_port(servers, smtp)),
        "smtp_security": smtp,
        "pop3_host": "localhost",
        "pop3_port": str(pop3_port(servers, pop3)),
        "pop3_security": pop3,
        "keep_on_server": ["y", "0"] if keep_on_server else ["0"],
    }


def log_in(app: Flask, servers: RealServers, user: str, **settings: object) -> FlaskClient:
    """A new browser that logged in as `user`; its session now exists."""
    client = app.test_client()
    response = post_form(client, "/login", login_data(servers, user, **settings))
    assert response.status_code == 303, page_text(response)[:3000]
    assert response.headers["Location"].endswith("/inbox")
    return client


def page_text(response) -> str:
    return unescape(response.get_data(as_text=True))


def field_value(html: str, name: str) -> str:
    tag = re.search(rf'<input[^>]*name="{name}"[^>]*>', html)
    assert tag, f"no input {name}"
    value = re.search(r'value="([^"]*)"', tag.group(0))
    return unescape(value.group(1)) if value else ""


def textarea(html: str, name: str) -> str:
    match = re.search(rf'<textarea[^>]*name="{name}"[^>]*>\r?\n?(.*?)</textarea>', html, re.S)
    assert match, f"no textarea {name}"
    return unescape(match.group(1))


def error_text(response) -> str:
    match = re.search(r'<div class="alert error" role="alert">\s*<p>(.*?)</p>',
                      response.get_data(as_text=True), re.S)
    assert match, "no error on the page"
    return unescape(match.group(1))


# -- the browser's side: forms, fetch, pages ---------------------------------------------


def compose(client: FlaskClient, fields: dict[str, str],
            files: tuple[tuple[str, bytes, str], ...] = (), *, page: str = "/compose"):
    """POST /compose as a browser does: multipart, with the token of the page's form."""
    form = MultiDict({"csrf_token": csrf_token(client, page)})
    for name, value in fields.items():
        form.add(name, value)
    for name, content, kind in files:
        form.add("attachments", FileStorage(io.BytesIO(content), name, "attachments", kind))
    boundary, body = encode_multipart(form)
    return client.post("/compose", data=body,
                       content_type=f"multipart/form-data; boundary={boundary}")


def fetch(client: FlaskClient, timeout: float = 20.0) -> dict:
    """Press "Get mail" through the JSON API and poll the job until it ends."""
    response = client.post("/fetch", data={"csrf_token": csrf_token(client, "/inbox")},
                           headers={"Accept": "application/json"})
    assert response.status_code == 202, page_text(response)[:2000]
    job = response.get_json()["job"]
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        progress = client.get(f"/fetch/{job}")
        assert progress.status_code == 200
        state = progress.get_json()
        if state["state"] != "running":
            return state
        time.sleep(0.05)
    raise AssertionError(f"fetch job {job} still running after {timeout} s")


def progress(state: dict) -> tuple:
    """A finished job's (state, done, total, new, error)."""
    return tuple(state[key] for key in ("state", "done", "total", "new", "error"))


def inbox(client: FlaskClient) -> list[tuple[str, str]]:
    """(message id, subject) of each row of the first inbox page, newest first."""
    response = client.get("/inbox")
    assert response.status_code == 200
    return [(mid, unescape(subject).strip())
            for mid, subject in MESSAGE_LINK.findall(response.get_data(as_text=True))]


def only_message_id(client: FlaskClient, subject: str) -> str:
    rows = inbox(client)
    assert [s for _, s in rows] == [subject], rows
    return rows[0][0]


# -- the server's side: Maildir files ------------------------------------------------------


def maildir_files(servers: RealServers, user: str) -> list[bytes]:
    """The messages in a Maildir as stored there (LF line ends), oldest first by name."""
    maildir = servers.maildir(user)
    paths = sorted([*(maildir / "new").iterdir(), *(maildir / "cur").iterdir()],
                   key=lambda p: p.name)
    return [path.read_bytes() for path in paths]


def only_maildir_file(servers: RealServers, user: str) -> bytes:
    files = maildir_files(servers, user)
    assert len(files) == 1, f"{user} holds {len(files)} messages"
    return files[0]


def parsed(raw: bytes) -> EmailMessage:
    return BytesParser(policy=email.policy.default).parsebytes(raw)  # type: ignore[return-value]


def as_pop3_sends_it(maildir_file: bytes) -> bytes:
    """Dovecot keeps LF line ends on disk and sends CRLF over POP3."""
    return maildir_file.replace(b"\n", b"\r\n")


def as_submitted(maildir_file: bytes) -> bytes:
    """The message as Pochta handed it to Postfix: without the trace fields Postfix put on
    top (Return-Path, X-Original-To, Delivered-To, Received), Pochta's first being From."""
    wire = as_pop3_sends_it(maildir_file)
    return wire[wire.index(b"\r\nFrom: ") + 2:]


def disposition_filename(header: str) -> str:
    """The file name an RFC 6266 client takes: filename* (UTF-8) before filename."""
    star = re.search(r"filename\*=UTF-8''([^;\s]+)", header, re.I)
    if star:
        return urllib.parse.unquote(star.group(1), encoding="utf-8", errors="strict")
    plain = re.search(r'filename="([^"]*)"', header)
    assert plain, header
    return plain.group(1)


# -- logging in --------------------------------------------------------------------------


def test_login_page_is_prefilled_with_the_real_servers(app, servers):
    html = app.test_client().get("/login").get_data(as_text=True)
    assert field_value(html, "smtp_host") == field_value(html, "pop3_host") == "localhost"
    assert field_value(html, "smtp_port") == str(servers.smtp_starttls_port)
    assert field_value(html, "pop3_port") == str(servers.pop3_tls_port)


def test_login_with_starttls_smtp_and_implicit_tls_pop3(app, servers):
    client = log_in(app, servers, ALICE)
    assert client.get("/").headers["Location"].endswith("/inbox")
    response = client.get("/inbox")
    assert response.status_code == 200
    assert "No messages here yet." in page_text(response)
    log = client.get("/log?format=text").get_data(as_text=True)
    assert "S: +OK Logged in." in log and "S: 235 2.7.0 Authentication successful" in log
    assert "C: STARTTLS" in log and "C: STLS" not in log


def test_utf8_password_logs_in_sends_and_fetches(app, servers):
    # The password kept in the session is used again, as UTF-8, by every later operation.
    assert not servers.users[IVAN].isascii()
    client = log_in(app, servers, IVAN)
    assert client.get("/inbox").status_code == 200
    response = compose(client, {"to": IVAN, "subject": "Себе", "body": "Заметка."})
    assert response.status_code == 303, page_text(response)[:3000]
    servers.wait_for_count(IVAN, 1)
    assert progress(fetch(client)) == ("done", 1, 1, 1, None)
    assert [subject for _, subject in inbox(client)] == ["Себе"]
    log = client.get("/log?format=text").get_data(as_text=True)
    assert servers.users[IVAN] not in log
    assert log.count("C: AUTH PLAIN ***") == 4  # login: POP3 and SMTP; send; fetch


def test_login_with_pop3_over_stls_and_smtp_over_implicit_tls(app, servers):
    client = log_in(app, servers, ALICE, smtp="tls", pop3="starttls")
    assert client.get("/inbox").status_code == 200
    log = client.get("/log?format=text").get_data(as_text=True)
    assert "C: STLS" in log
    assert "C: STARTTLS" not in log


def test_login_on_the_plain_ports_without_security(app, servers):
    client = log_in(app, servers, BOB, smtp="none", pop3="none")
    assert client.get("/inbox").status_code == 200
    log = client.get("/log?format=text").get_data(as_text=True)
    assert "C: STLS" not in log and "C: STARTTLS" not in log
    assert servers.users[BOB] not in log


def test_wrong_password_shows_dovecots_words_and_opens_no_session(app, servers):
    client = app.test_client()
    response = post_form(client, "/login", login_data(servers, ALICE, password="not-it"))
    assert response.status_code == 403
    error = error_text(response)
    assert f"POP3 server localhost:{servers.pop3_tls_port}" in error
    assert "[AUTH] Authentication failed." in error  # Dovecot's own words
    assert "not-it" not in page_text(response)
    assert client.get("/inbox").headers["Location"].startswith("/login")


def test_smtp_refusal_at_login_shows_postfixs_words(app, servers, tmp_path):
    # POP3 elsewhere takes the user name "alice"; Postfix (asking Dovecot) knows no such user.
    pop3 = DemoMailServer(tmp_path / "pop3", users={"alice": servers.users[ALICE]},
                          pop3_security=Security.NONE, smtp_security=Security.NONE)
    with pop3:
        data = login_data(servers, ALICE)
        data.update(username="alice", pop3_port=str(pop3.pop3_port), pop3_security="none")
        client = app.test_client()
        response = post_form(client, "/login", data)
    assert response.status_code == 403
    error = error_text(response)
    assert f"SMTP server localhost:{servers.smtp_starttls_port}" in error
    assert "did not accept the user name or password" in error
    assert "“535 5.7.8 Error: authentication failed" in error  # Postfix's own words
    html = page_text(response)
    assert "C: AUTH PLAIN ***" in html
    assert servers.users[ALICE] not in html
    assert client.get("/inbox").headers["Location"].startswith("/login")


def test_smtp_without_starttls_on_the_submission_port_is_refused_before_any_password(
    app, servers
):
    # Postfix offers AUTH only after STARTTLS there; Pochta says so and sends no password.
    client = app.test_client()
    data = login_data(servers, ALICE, smtp="none")
    data["smtp_port"] = str(servers.smtp_starttls_port)
    response = post_form(client, "/login", data)
    assert response.status_code == 403
    error = error_text(response)
    assert f"SMTP server localhost:{servers.smtp_starttls_port} offers no way to log in" in error
    assert "250-STARTTLS" in page_text(response)  # Postfix's EHLO reply, in the log shown
    assert "C: AUTH" not in page_text(response).split("(none)", 1)[1]


# -- sending, fetching, reading ------------------------------------------------------------


@dataclass(frozen=True)
class Sent:
    """A message alice sent to bob through the compose form, as Postfix delivered it."""

    alice: FlaskClient
    delivered: bytes  # the Maildir file

    @property
    def message_id(self) -> str:
        return str(parsed(self.delivered)["Message-ID"])


def send_to_bob(app: Flask, servers: RealServers) -> Sent:
    alice = log_in(app, servers, ALICE)
    response = compose(
        alice,
        {"to": f"Боб <{BOB}>", "cc": "", "bcc": "", "subject": SUBJECT, "body": BODY},
        ((PDF_NAME, PDF_DATA, "application/pdf"), (CSV_NAME, CSV_DATA, "text/csv")),
    )
    assert response.status_code == 303, page_text(response)[:3000]
    assert response.headers["Location"].endswith("/inbox")
    assert f"Message sent to {BOB}." in page_text(alice.get("/inbox"))
    servers.wait_for_count(BOB, 1)
    return Sent(alice, only_maildir_file(servers, BOB))


@pytest.fixture
def sent(app: Flask, servers: RealServers) -> Sent:
    return send_to_bob(app, servers)


def test_compose_delivers_attachments_and_a_cyrillic_subject_through_postfix(sent):
    message = parsed(sent.delivered)
    assert message["Subject"] == SUBJECT
    assert message["From"].addresses[0].addr_spec == ALICE
    assert message["To"].addresses[0].addr_spec == BOB
    assert message["To"].addresses[0].display_name == "Боб"
    assert "Bcc" not in message
    # Text travels in its canonical form, CRLF line ends (RFC 2046 4.1.1).
    text = message.get_body(("plain",)).get_content()
    assert text.replace("\r\n", "\n") == BODY
    files = {part.get_filename(): (part.get_content_type(), part.get_payload(decode=True))
             for part in message.iter_attachments()}
    assert files == {PDF_NAME: ("application/pdf", PDF_DATA), CSV_NAME: ("text/csv", CSV_DATA)}
    assert re.fullmatch(r"<[^<>@\s]+@[^<>@\s]+>", sent.message_id)


def test_bob_fetches_reads_and_downloads_it(app, servers, sent):
    bob = log_in(app, servers, BOB)
    assert progress(fetch(bob)) == ("done", 1, 1, 1, None)
    message_id = only_message_id(bob, SUBJECT)

    view = bob.get(f"/message/{message_id}")
    assert view.status_code == 200
    html = page_text(view)
    assert f"<h1 id=\"message-subject\">{SUBJECT}</h1>" in html
    assert ALICE in html and BOB in html
    assert "Отчёт и данные во вложениях." in html
    links = dict((name, int(n)) for n, name in re.findall(
        r'href="/message/[^/"]+/part/(\d+)" download><span[^>]*>[^<]*</span>([^<]+)</a>', html))
    assert set(links) == {PDF_NAME, CSV_NAME}

    raw = bob.get(f"/message/{message_id}/raw")
    assert raw.status_code == 200
    assert raw.mimetype == "text/plain"
    assert raw.get_data() == as_pop3_sends_it(sent.delivered)

    for name, data, kind in ((PDF_NAME, PDF_DATA, "application/pdf"),
                             (CSV_NAME, CSV_DATA, "text/csv")):
        download = bob.get(f"/message/{message_id}/part/{links[name]}")
        assert download.status_code == 200, name
        assert download.get_data() == data, name
        disposition = download.headers["Content-Disposition"]
        assert disposition.startswith("attachment;"), disposition
        assert disposition_filename(disposition) == name
        assert re.search(r'filename="[\x20-\x7e]+"', disposition), disposition  # ASCII fallback
        assert download.mimetype in (kind, "application/octet-stream")


def test_reply_from_bob_arrives_at_alice_threaded_to_the_original(app, servers, sent):
    bob = log_in(app, servers, BOB)
    fetch(bob)
    original = only_message_id(bob, SUBJECT)

    prefilled = bob.get(f"/compose?reply={original}")
    assert prefilled.status_code == 200
    html = prefilled.get_data(as_text=True)
    assert field_value(html, "to") == ALICE
    assert field_value(html, "subject") == f"Re: {SUBJECT}"
    assert field_value(html, "reply_to_id") == original
    quoted = textarea(html, "body")
    assert "> Отчёт и данные во вложениях." in quoted

    response = compose(bob, {
        "to": field_value(html, "to"),
        "subject": field_value(html, "subject"),
        "body": "Спасибо, получил оба файла.\r\n\r\n" + quoted,
        "reply_to_id": original,
    }, page=f"/compose?reply={original}")
    assert response.status_code == 303, page_text(response)[:3000]
    servers.wait_for_count(ALICE, 1)

    reply = parsed(only_maildir_file(servers, ALICE))
    assert reply["Subject"] == f"Re: {SUBJECT}"
    assert reply["From"].addresses[0].addr_spec == BOB
    assert reply["In-Reply-To"] == sent.message_id
    assert reply["References"] == sent.message_id
    assert reply["Message-ID"] != sent.message_id
    assert "Спасибо, получил оба файла." in reply.get_body(("plain",)).get_content()

    # And alice reads it in Pochta.
    assert progress(fetch(sent.alice)) == ("done", 1, 1, 1, None)
    answer = only_message_id(sent.alice, f"Re: {SUBJECT}")
    assert "Спасибо, получил оба файла." in page_text(sent.alice.get(f"/message/{answer}"))


def test_delete_removes_it_from_the_store_for_good(app, servers, sent):
    bob = log_in(app, servers, BOB)
    fetch(bob)
    message_id = only_message_id(bob, SUBJECT)
    page = f"/message/{message_id}"

    assert bob.post(f"{page}/delete").status_code == 400  # no CSRF token
    assert bob.get(page).status_code == 200
    response = post_form(bob, f"{page}/delete", {}, page=page)
    assert response.status_code == 303
    assert response.headers["Location"].endswith("/inbox")
    assert "Message deleted." in page_text(bob.get("/inbox"))

    for url in (page, f"{page}/raw", f"{page}/part/1", f"{page}/headers"):
        assert bob.get(url).status_code == 404, url
    assert post_form(bob, f"{page}/delete", {}, page="/inbox").status_code == 404
    assert inbox(bob) == []
    # Kept on the server, yet not downloaded again: the deleted UIDL is remembered.
    assert servers.count(BOB) == 1
    assert progress(fetch(bob)) == ("done", 0, 0, 0, None)
    assert inbox(bob) == []


def test_download_then_delete_empties_the_mailbox_on_the_server(app, servers, sent):
    bob = log_in(app, servers, BOB, keep_on_server=False)
    assert progress(fetch(bob)) == ("done", 1, 1, 1, None)
    assert servers.count(BOB) == 0
    message_id = only_message_id(bob, SUBJECT)
    assert bob.get(f"/message/{message_id}/raw").get_data() == as_pop3_sends_it(sent.delivered)

    assert progress(fetch(bob)) == ("done", 0, 0, 0, None)
    assert only_message_id(bob, SUBJECT) == message_id
    fetches = bob.get("/log?format=text").get_data(as_text=True).split("# fetch ")[1:]
    assert len(fetches) == 2
    latest, first = fetches
    assert "C: DELE 1" in first and first.index("C: RETR 1") < first.index("C: DELE 1")
    assert "S: +OK 0 messages" in latest and "DELE" not in latest


def test_keep_on_server_leaves_it_there_and_fetches_nothing_twice(app, servers, sent):
    bob = log_in(app, servers, BOB, keep_on_server=True)
    assert progress(fetch(bob)) == ("done", 1, 1, 1, None)
    assert progress(fetch(bob)) == ("done", 0, 0, 0, None)
    assert servers.count(BOB) == 1
    assert only_maildir_file(servers, BOB) == sent.delivered
    assert len(inbox(bob)) == 1
    assert "DELE" not in bob.get("/log?format=text").get_data(as_text=True)

    # Only what is new comes next time.
    servers.deliver(BOB, b"From: carol@pochta.test\r\nTo: bob@pochta.test\r\n"
                         b"Subject: =?utf-8?b?0JXRidGRINC+0LTQvdC+?=\r\n"
                         b"Message-ID: <later.1@pochta.test>\r\n\r\nSecond.\r\n")
    assert progress(fetch(bob)) == ("done", 1, 1, 1, None)
    assert [subject for _, subject in inbox(bob)] == ["Ещё одно", SUBJECT]
    assert servers.count(BOB) == 2


def auth_plain_payload(user: str, password: str) -> str:
    return base64.b64encode(f"\0{user}\0{password}".encode()).decode()


def assert_redacted(text: str, servers: RealServers) -> None:
    for user, password in servers.users.items():
        assert password not in text
        assert auth_plain_payload(user, password) not in text
        assert base64.b64encode(password.encode()).decode() not in text


def test_log_shows_login_fetch_and_send_redacted(app, servers, sent):
    submitted = as_submitted(sent.delivered)
    sends = sent.alice.get("/log?format=text")
    assert sends.mimetype == "text/plain"
    text = sends.get_data(as_text=True)
    assert_redacted(text, servers)
    records = text.split("\n# ")
    assert [r.lstrip("# ").split()[0] for r in records] == ["send", "login"]
    send, login = records
    assert send.splitlines()[0].endswith(" ok")
    assert "C: AUTH PLAIN ***" in send
    assert f"C: MAIL FROM:<{ALICE}> SIZE={len(submitted)}" in send
    assert f"C: RCPT TO:<{BOB}>" in send
    assert f"C: <message data, {len(submitted)} bytes>" in send
    assert "Отчёт" not in send and "JVBERi0" not in send  # no subject, no attachment bytes
    assert login.count("C: AUTH PLAIN ***") == 2  # Dovecot, then Postfix
    assert "S: +OK Logged in." in login and "S: 235 2.7.0 Authentication successful" in login

    bob = log_in(app, servers, BOB)
    fetch(bob)
    fetched = bob.get("/log?format=text").get_data(as_text=True)
    assert_redacted(fetched, servers)
    fetch_record = fetched.split("\n# ")[0]
    assert fetch_record.startswith("# fetch ")
    size = len(as_pop3_sends_it(sent.delivered))
    assert f"S: +OK {size} octets" in fetch_record
    assert f"S: <message data, {size} bytes>" in fetch_record
    assert "C: AUTH PLAIN ***" in fetch_record
    assert "Отчёт" not in fetch_record

    html = bob.get("/log").get_data(as_text=True)
    assert_redacted(html, servers)
    assert "AUTH PLAIN ***" in html and "&lt;message data, " in html
    assert "Login" in html and "Fetch" in html


def test_get_mail_button_redirects_to_the_inbox_with_its_progress(app, servers, sent):
    bob = log_in(app, servers, BOB)
    response = post_form(bob, "/fetch", {}, page="/inbox")  # a browser form: no JSON wanted
    assert response.status_code == 303
    location = urllib.parse.urlsplit(response.headers["Location"])
    assert location.path == "/inbox"
    job = urllib.parse.parse_qs(location.query)["job"][0]
    deadline = time.monotonic() + 20
    while bob.get(f"/fetch/{job}").get_json()["state"] == "running":
        assert time.monotonic() < deadline, "fetch still running"
        time.sleep(0.05)
    html = page_text(bob.get(f"/inbox?job={job}"))
    assert "Done: 1 new message." in html
    assert SUBJECT in html
