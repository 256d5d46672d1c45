"""Account isolation (issue 5, item 6): a user sees only their own account's messages, parts,
raw sources, fetch jobs, logs and kept attachments; everything else is 404.

The account is the POP3 server and the user name on it, never the address alone: a server
the attacker runs, accepting any password, must open an empty store, not the victim's.
"""

from __future__ import annotations

import email
import email.policy
import io
import re
from dataclasses import dataclass

import pytest
from flask import Flask
from flask.testing import FlaskClient

from app.demo.server import DemoMailServer
from tests.security.conftest import inbox_messages, only_message
from tests.security.fakes import FakeMailServer
from tests.web.conftest import csrf_token, log_in, login_data, post_form

SECRET = "alices-secret-7f3a"
ATTACHED_SECRET = "alices-attached-secret-91bc"


@dataclass
class Victim:
    message_id: str
    job_id: str
    kept_token: str


def victim_message() -> bytes:
    return (
        "From: Dana <dana@example.org>\r\nTo: alice@demo.pochta.test\r\n"
        f"Subject: {SECRET}\r\nMessage-ID: <{SECRET}@example.org>\r\nMIME-Version: 1.0\r\n"
        'Content-Type: multipart/mixed; boundary="b"\r\n\r\n'
        f"--b\r\nContent-Type: text/html\r\n\r\n<p>{SECRET}</p>\r\n"
        "--b\r\nContent-Type: text/plain\r\n"
        f'Content-Disposition: attachment; filename="s.txt"\r\n\r\n{SECRET}\r\n--b--\r\n'
    ).encode()


@pytest.fixture
def victim(app: Flask, mail_server: DemoMailServer) -> Victim:
    """Alice, in her own browser: a stored message, a fetch job, a kept attachment."""
    alice = app.test_client()
    log_in(alice, mail_server)
    message_id = only_message(alice, mail_server, victim_message())
    started = alice.post("/fetch", data={"csrf_token": csrf_token(alice, "/inbox")},
                         headers={"Accept": "application/json"})
    assert started.status_code == 202
    job_id = started.get_json()["job"]
    assert alice.get(f"/fetch/{job_id}").status_code == 200
    # A send that fails on a bad address keeps the uploaded file server-side for a retry.
    upload = (io.BytesIO(ATTACHED_SECRET.encode()), "s.txt")
    page = post_form(alice, "/compose", {"to": "not an address", "subject": "x", "body": "x",
                                         "attachments": [upload]})
    assert page.status_code == 400
    (token,) = re.findall(r'name="keep_attachment" value="([^"]+)"', page.get_data(as_text=True))
    return Victim(message_id, job_id, token)


@pytest.fixture
def bob(app: Flask, mail_server: DemoMailServer) -> FlaskClient:
    browser = app.test_client()
    log_in(browser, mail_server, "bob")
    return browser


def decoded(data: bytes) -> bytes:
    """A message with every part decoded (base64, quoted-printable), nested ones too."""
    pieces = [data]
    for part in email.message_from_bytes(data, policy=email.policy.default).walk():
        payload = part.get_payload(decode=True)
        if isinstance(payload, bytes):
            pieces.append(payload)
            if part.get_content_type() == "message/rfc822":
                pieces.append(decoded(payload))
    return b"\n".join(pieces)


def delivered_with(server: DemoMailServer, text: str) -> list[str]:
    """Who got a message holding `text` in any part, besides alice's copy of her original."""
    found = []
    for user in server.mailboxes.users:
        for stored in server.mailboxes.list(user):
            data = stored.path.read_bytes()
            if text.encode() in decoded(data) and data != victim_message():
                found.append(user)
    return found


def search_hits(browser: FlaskClient, query: str) -> int:
    page = browser.get("/inbox", query_string={"q": query}).get_data(as_text=True)
    return page.count('<td class="subject">')


MESSAGE_ROUTES = ("", "/body", "/raw", "/raw?download=1", "/headers", "/part/0", "/part/1",
                  "/part/2", "?view=text", "?images=1")


def test_another_accounts_message_is_not_found_anywhere(victim: Victim, bob: FlaskClient) -> None:
    for route in MESSAGE_ROUTES:
        response = bob.get(f"/message/{victim.message_id}{route}")
        assert response.status_code == 404, route
        assert SECRET not in response.get_data(as_text=True)
    for prefill in ("reply", "forward"):
        response = bob.get(f"/compose?{prefill}={victim.message_id}")
        assert response.status_code == 404, prefill


def test_another_accounts_message_cannot_be_deleted(victim: Victim, bob: FlaskClient,
                                                    app: Flask,
                                                    mail_server: DemoMailServer) -> None:
    response = bob.post(f"/message/{victim.message_id}/delete",
                        data={"csrf_token": csrf_token(bob, "/inbox")})
    assert response.status_code == 404
    alice = app.test_client()
    log_in(alice, mail_server)
    assert [mid for mid, _ in inbox_messages(alice)] == [victim.message_id]
    assert search_hits(alice, SECRET) == 1


def test_another_accounts_fetch_job_is_not_found(victim: Victim, bob: FlaskClient) -> None:
    assert bob.get(f"/fetch/{victim.job_id}").status_code == 404
    inbox = bob.get(f"/inbox?job={victim.job_id}").get_data(as_text=True)
    assert "fetch-status" not in inbox


def test_another_accounts_log_and_search_show_nothing(victim: Victim, bob: FlaskClient) -> None:
    log = bob.get("/log").get_data(as_text=True)
    assert log.count("log-record") == 1  # bob's own login, not alice's login and fetches
    assert bob.get("/log?format=text").get_data(as_text=True).count("# fetch") == 0
    assert search_hits(bob, SECRET) == 0
    assert inbox_messages(bob) == []


@pytest.mark.parametrize("field", ["forward_id", "reply_to_id"])
def test_compose_cannot_carry_another_accounts_message(victim: Victim, bob: FlaskClient,
                                                       mail_server: DemoMailServer,
                                                       field: str) -> None:
    form = {"to": mail_server.address("bob"), "subject": "hi", "body": "hello",
            field: victim.message_id, "forward_mode": "attachment",
            "forward_attachments": "y"}
    response = post_form(bob, "/compose", form)
    assert response.status_code in (303, 400)
    assert SECRET not in response.get_data(as_text=True)
    assert not delivered_with(mail_server, SECRET)


def test_another_accounts_kept_attachment_cannot_be_sent(victim: Victim, bob: FlaskClient,
                                                         mail_server: DemoMailServer) -> None:
    form = {"to": mail_server.address("bob"), "subject": "hi", "body": "hello",
            "keep_attachment": victim.kept_token, "offered_attachment": victim.kept_token}
    post_form(bob, "/compose", form)
    assert not delivered_with(mail_server, ATTACHED_SECRET)


# -- the account key: server + user name, never the address alone -------------------------------

@pytest.mark.parametrize(("host", "username"), [
    ("localhost", "alice"),
    ("localhost", "alice@demo.pochta.test"),
    ("127.0.0.1", "alice"),
])
def test_a_server_accepting_any_password_opens_an_empty_store(
        victim: Victim, app: Flask, mail_server: DemoMailServer, host: str,
        username: str) -> None:
    with FakeMailServer() as fake:
        mallory = app.test_client()
        form = login_data(mail_server, "alice", password="guessed-nothing", username=username,
                          pop3_host=host, pop3_port=fake.pop3_port, pop3_security="none",
                          smtp_host=host, smtp_port=fake.smtp_port, smtp_security="none")
        assert form["email"] == mail_server.address("alice")
        response = post_form(mallory, "/login", form)
        assert response.status_code == 303  # the fake server let mallory in as "alice"

        assert inbox_messages(mallory) == []
        assert search_hits(mallory, SECRET) == 0
        for route in MESSAGE_ROUTES:
            assert mallory.get(f"/message/{victim.message_id}{route}").status_code == 404
        assert mallory.get(f"/fetch/{victim.job_id}").status_code == 404
        assert mallory.get("/log").get_data(as_text=True).count("log-record") == 1

        state = mallory.post("/fetch", data={"csrf_token": csrf_token(mallory, "/inbox")},
                             headers={"Accept": "application/json"})
        assert state.status_code == 202
        assert inbox_messages(mallory) == []


def test_the_real_account_still_sees_its_mail(victim: Victim, app: Flask,
                                              mail_server: DemoMailServer) -> None:
    """The control for the test above: the same login on the real server finds the mail."""
    alice = app.test_client()
    log_in(alice, mail_server)
    assert [mid for mid, _ in inbox_messages(alice)] == [victim.message_id]
    assert search_hits(alice, SECRET) == 1
