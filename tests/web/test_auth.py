"""Logging in and out: credentials checked with both servers, clear errors, no stray session."""

from __future__ import annotations

import re

from app import create_app
from app.store import AccountKey
from tests.web.conftest import app_config, csrf_token, log_in, login_data, post_form


def test_login_page_is_prefilled_from_the_pochta_defaults(client, mail_server):
    html = client.get("/login").get_data(as_text=True)
    assert f'value="{mail_server.pop3_port}"' in html
    assert f'value="{mail_server.smtp_port}"' in html
    assert re.search(r'<option selected value="tls">|<option value="tls" selected', html)


def test_successful_login_redirects_to_inbox_and_logs_the_dialogue(client, mail_server, app):
    response = log_in(client, mail_server)
    assert response.headers["Location"].endswith("/inbox")
    assert client.get("/inbox").status_code == 200
    store = app.extensions["pochta.store"]
    (record,) = store.recent_logs(AccountKey("localhost", mail_server.pop3_port, "alice"))
    text = "\n".join(record.lines)
    assert record.operation == "login" and record.ok
    assert "AUTH PLAIN ***" in text and "alice-pw" not in text
    assert "STARTTLS" in text  # the SMTP side was checked too


def test_wrong_password_shows_the_form_with_the_servers_words_and_no_session(client, mail_server):
    response = post_form(client, "/login", login_data(mail_server, password="wrong"))
    html = response.get_data(as_text=True)
    assert response.status_code == 403
    assert "did not accept the user name or password" in html
    assert "[AUTH]" in html  # the server's own words, quoted
    assert client.get("/inbox").status_code == 302


def test_utf8_password_works(client, mail_server):
    log_in(client, mail_server, "carol")
    assert client.get("/inbox").status_code == 200


def test_unreachable_server_is_named_in_the_error(client, mail_server):
    response = post_form(client, "/login", login_data(mail_server, pop3_port=1))
    html = response.get_data(as_text=True)
    assert response.status_code == 403
    assert "Cannot connect to the POP3 server localhost:1" in html


def test_untrusted_certificate_is_explained(tmp_path, mail_server):
    app = create_app({**app_config(tmp_path, mail_server), "POCHTA_CA_FILE": ""})
    client = app.test_client()
    response = post_form(client, "/login", login_data(mail_server))
    html = response.get_data(as_text=True)
    assert response.status_code == 403
    assert "certificate" in html and "not trusted" in html
    app.extensions["pochta.store"].close()


def test_plaintext_smtp_without_auth_says_choose_starttls(client, mail_server):
    response = post_form(client, "/login", login_data(mail_server, smtp_security="none"))
    html = response.get_data(as_text=True)
    assert response.status_code == 403
    assert "choose STARTTLS" in html


def test_invalid_form_is_a_400_with_field_errors(client, mail_server):
    response = post_form(client, "/login", login_data(mail_server, email="not an address",
                                                     smtp_port="99999", pop3_host="bad host!"))
    html = response.get_data(as_text=True)
    assert response.status_code == 400
    assert html.count('class="error-text"') >= 3


def test_login_without_csrf_token_is_refused(client, mail_server):
    response = client.post("/login", data=login_data(mail_server))
    assert response.status_code == 400


def test_omitted_keep_on_server_defaults_to_keeping_mail(client, mail_server):
    data = login_data(mail_server)
    del data["keep_on_server"]
    log_in(client, mail_server, **{})  # the helper posts it; now post without it
    client.post("/logout", data={"csrf_token": csrf_token(client, "/inbox")})
    response = post_form(client, "/login", data)
    assert response.status_code == 303
    with client.session_transaction() as session:
        assert session["keep"] is True


def test_unchecked_keep_on_server_means_download_then_delete(client, mail_server):
    post_form(client, "/login", login_data(mail_server, keep_on_server="0"))
    with client.session_transaction() as session:
        assert session["keep"] is False


def test_the_cookie_never_holds_the_password_readably(client, mail_server):
    log_in(client, mail_server)
    cookie = client.get_cookie("session").value
    import base64
    import zlib

    payload = cookie.lstrip(".").split(".")[0]
    raw = base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4))
    if cookie.startswith("."):
        raw = zlib.decompress(raw)
    assert b"alice-pw" not in raw
    assert b"secret" in raw  # the sealed password is there, encrypted


def test_logout_revokes_the_old_cookie(client, mail_server, app):
    log_in(client, mail_server)
    stolen = client.get_cookie("session").value
    client.post("/logout", data={"csrf_token": csrf_token(client, "/inbox")})
    assert client.get("/inbox").status_code == 302
    thief = app.test_client()
    thief.set_cookie("session", stolen)
    assert thief.get("/inbox").status_code == 302


def test_login_gives_a_new_session_id(client, mail_server):
    log_in(client, mail_server)
    with client.session_transaction() as session:
        first = session["sid"]
    response = post_form(client, "/login", login_data(mail_server), page="/inbox")
    assert response.status_code == 303
    with client.session_transaction() as session:
        assert session["sid"] != first


def test_next_parameter_stays_on_the_site(app, mail_server):
    data = login_data(mail_server)
    for target, expected in [("/log", "/log"), ("https://evil.example/", "/inbox"),
                             ("//evil.example/x", "/inbox"), ("/\\evil.example", "/inbox")]:
        client = app.test_client()
        token = csrf_token(client)
        response = client.post("/login", data={"csrf_token": token, "next": target, **data})
        assert response.status_code == 303
        assert response.headers["Location"] == expected, target


def test_host_outside_the_allow_list_is_refused_before_connecting(tmp_path, mail_server):
    app = create_app({**app_config(tmp_path, mail_server), "POCHTA_ALLOWED_HOSTS": "mail.lab.test"})
    client = app.test_client()
    before = mail_server.mailboxes.count("alice")
    response = post_form(client, "/login", login_data(mail_server))
    assert response.status_code == 403
    assert "may only connect to: mail.lab.test" in response.get_data(as_text=True)
    assert mail_server.mailboxes.count("alice") == before
    app.extensions["pochta.store"].close()


def test_repeated_failures_are_limited_per_account(client, mail_server):
    data = login_data(mail_server, password="wrong")
    token = csrf_token(client)
    codes = [client.post("/login", data={"csrf_token": token, **data}).status_code
             for _ in range(10)]
    assert codes[:8] == [403] * 8
    assert codes[8:] == [429, 429]
    assert "Too many attempts" in client.post(
        "/login", data={"csrf_token": token, **data}).get_data(as_text=True)


def test_an_unreachable_server_does_not_count_as_a_failed_login(client, mail_server):
    token = csrf_token(client)
    for _ in range(12):
        response = client.post("/login", data={"csrf_token": token,
                                                **login_data(mail_server, pop3_port=1)})
        assert response.status_code == 403
    assert post_form(client, "/login", login_data(mail_server)).status_code == 303
