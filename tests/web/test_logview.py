"""The protocol log page: the user's recent dialogues, redacted."""

from __future__ import annotations

from tests.web.conftest import fetch_and_wait, log_in


def test_log_shows_login_and_fetch_redacted(logged_in, mail_server):
    fetch_and_wait(logged_in)
    html = logged_in.get("/log").get_data(as_text=True)
    assert "Login" in html and "Fetch" in html
    assert "AUTH PLAIN ***" in html
    assert "alice-pw" not in html


def test_log_as_plain_text(logged_in):
    response = logged_in.get("/log?format=text")
    assert response.mimetype == "text/plain"
    text = response.get_data(as_text=True)
    assert text.startswith("# login ")
    assert " C: CAPA" in text


def test_log_is_per_account(client, mail_server, app):
    log_in(client, mail_server)
    other = app.test_client()
    log_in(other, mail_server, "bob")
    text = other.get("/log?format=text").get_data(as_text=True)
    assert text.count("# login") == 1
    assert "AUTH PLAIN ***" in text


def test_server_words_in_the_log_are_escaped(logged_in, mail_server, app):
    from app.store import AccountKey

    key = AccountKey("localhost", mail_server.pop3_port, "alice")
    app.extensions["pochta.store"].save_log(key, "fetch", ["S: +OK <script>alert(1)</script>"],
                                            ok=True)
    html = logged_in.get("/log").get_data(as_text=True)
    assert "<script>alert(1)" not in html and "&lt;script&gt;alert(1)" in html


def test_a_log_is_dated_when_its_operation_started(logged_in, mail_server, app):
    from datetime import datetime

    from app.store import AccountKey

    key = AccountKey("localhost", mail_server.pop3_port, "alice")
    (record,) = app.extensions["pochta.store"].recent_logs(key)
    first_line = datetime.strptime(record.lines[0][:23], "%Y-%m-%d %H:%M:%S.%f").astimezone()
    last_line = datetime.strptime(record.lines[-1][:23], "%Y-%m-%d %H:%M:%S.%f").astimezone()
    assert record.started_at <= first_line < last_line
