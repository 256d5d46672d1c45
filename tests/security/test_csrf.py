"""Cross-site requests (issue 5, item 5): every state-changing request needs the CSRF token of
the session it comes with, and none of them happens through GET.

The routes are enumerated from `app.url_map`, so a POST route added later without
protection fails here without anyone remembering to add it to a list.
"""

from __future__ import annotations

import re

import pytest
from flask import Flask
from flask.testing import FlaskClient
from werkzeug.routing import Rule

from app import create_app
from app.demo.server import DemoMailServer
from app.web.extensions import csrf
from tests.security.conftest import concrete_url, inbox_messages, only_message
from tests.web.conftest import app_config, csrf_token, log_in, login_data, post_form

# Routes known to change state; the enumeration must find at least these.
# Of all the routes that take a POST, only these may answer GET, and only with their form.
FORM_PAGES = {"/login", "/compose"}
KNOWN_POST_ROUTES = {"/login", "/logout", "/fetch", "/message/<message_id>/delete", "/compose",
                     "/language"}


def post_rules(app: Flask) -> list[Rule]:
    return sorted((r for r in app.url_map.iter_rules() if "POST" in (r.methods or ())),
                  key=lambda r: r.rule)


def form_for(rule: Rule, server: DemoMailServer) -> dict[str, object]:
    """What a forged form would carry: enough that, accepted, it would change something."""
    if rule.rule == "/login":
        return login_data(server, "bob")
    if rule.rule == "/compose":
        return {"to": server.address("bob"), "subject": "forged", "body": "forged"}
    if rule.rule == "/language":
        return {"lang": "ru", "next": "/inbox"}
    return {}


def unprotected(app: Flask, client: FlaskClient, server: DemoMailServer,
                message_id: str, other_token: str) -> list[str]:
    """Every POST rule that does not refuse a forged POST with 400, or that answers GET
    (405 expected) without being one of the form pages."""
    problems = []
    for rule in post_rules(app):
        url = concrete_url(app, rule, message_id)
        data = form_for(rule, server)
        forged = {
            "no token": dict(data),
            "empty token": {**data, "csrf_token": ""},
            "garbage token": {**data, "csrf_token": "IjAwMDAi.AAAAAA.garbage"},
            "another session's token": {**data, "csrf_token": other_token},
        }
        for what, form in forged.items():
            status = client.post(url, data=form).status_code
            if status != 400:
                problems.append(f"POST {rule.rule} with {what}: {status}")
        status = client.post(url, data=data, headers={"X-CSRFToken": other_token}).status_code
        if status != 400:
            problems.append(f"POST {rule.rule} with another session's token in a header: {status}")
        if rule.rule not in FORM_PAGES:
            status = client.get(url, query_string=data).status_code
            if status != 405:
                problems.append(f"GET {rule.rule}: {status}")
    return problems


@pytest.fixture
def victim(app: Flask, client: FlaskClient, mail_server: DemoMailServer) -> str:
    """Alice, logged in, with one stored message; its id."""
    log_in(client, mail_server)
    return only_message(client, mail_server, b"Subject: keep me\r\n\r\nhello\r\n")


def attacker_token(app: Flask) -> str:
    """A valid token, of the attacker's own session."""
    return csrf_token(app.test_client(), "/login")


def test_every_post_route_refuses_a_forged_request(app: Flask, client: FlaskClient,
                                                   mail_server: DemoMailServer,
                                                   victim: str) -> None:
    assert {r.rule for r in post_rules(app)} >= KNOWN_POST_ROUTES
    assert unprotected(app, client, mail_server, victim, attacker_token(app)) == []


def test_refused_requests_changed_nothing(app: Flask, client: FlaskClient,
                                          mail_server: DemoMailServer, victim: str) -> None:
    logged = client.get("/log").get_data(as_text=True).count("log-record")
    unprotected(app, client, mail_server, victim, attacker_token(app))
    assert [mid for mid, _ in inbox_messages(client)] == [victim]  # not deleted, still in
    assert mail_server.mailboxes.count("bob") == 0  # nothing sent
    # No fetch, send or login ran (each would have left a log record), and alice is
    # still the one logged in.
    page = client.get("/log").get_data(as_text=True)
    assert page.count("log-record") == logged
    assert mail_server.address("alice") in page
    assert '<html lang="en">' in page  # the language was not switched either


def test_a_valid_token_is_what_makes_the_difference(app: Flask, client: FlaskClient,
                                                    mail_server: DemoMailServer,
                                                    victim: str) -> None:
    """The control: the same requests with the session's own token do act."""
    response = post_form(client, f"/message/{victim}/delete", {}, page=f"/message/{victim}")
    assert response.status_code == 303
    assert inbox_messages(client) == []


def test_the_check_finds_a_route_added_without_protection(
        tmp_path, mail_server: DemoMailServer) -> None:
    application = create_app(app_config(tmp_path, mail_server))
    try:
        @application.post("/added-later")
        @csrf.exempt
        def added_later() -> str:
            return "changed"

        client = application.test_client()
        log_in(client, mail_server)
        problems = unprotected(application, client, mail_server, "none",
                               attacker_token(application))
        assert problems and all("/added-later" in p for p in problems)
    finally:
        application.extensions["pochta.store"].close()


def test_state_changing_forms_do_nothing_through_get(app: Flask, client: FlaskClient,
                                                     mail_server: DemoMailServer,
                                                     victim: str) -> None:
    token = csrf_token(client, "/compose")
    sent = client.get("/compose", query_string={
        "to": mail_server.address("bob"), "subject": "via GET", "body": "x", "csrf_token": token})
    assert sent.status_code == 200
    assert mail_server.mailboxes.count("bob") == 0

    stranger = app.test_client()
    logged = stranger.get("/login", query_string={**login_data(mail_server, "bob"),
                                                  "csrf_token": csrf_token(stranger)})
    assert logged.status_code == 200
    assert stranger.get("/inbox").status_code == 302  # still not logged in


def test_json_fetch_without_a_token_is_refused_as_json(app: Flask, client: FlaskClient,
                                                       mail_server: DemoMailServer,
                                                       victim: str) -> None:
    response = client.post("/fetch", headers={"Accept": "application/json"})
    assert response.status_code == 400
    assert response.is_json and "error" in response.get_json()


def test_login_form_token_is_not_accepted_by_another_browser(app: Flask,
                                                             mail_server: DemoMailServer) -> None:
    """Login CSRF: an attacker cannot make a victim's browser log in to the attacker's
    account with a token minted in the attacker's own session."""
    victim_browser = app.test_client()
    victim_browser.get("/login")
    forged = victim_browser.post("/login", data={"csrf_token": attacker_token(app),
                                                 **login_data(mail_server, "bob")})
    assert forged.status_code == 400
    assert victim_browser.get("/inbox").status_code == 302


# -- behind TLS ---------------------------------------------------------------------------------

TLS = {"X-Forwarded-Proto": "https"}
CSRF_FIELD = re.compile(r'name="csrf_token"[^>]*value="([^"]+)"')


@pytest.fixture
def tls_app(tmp_path, mail_server: DemoMailServer):
    application = create_app(app_config(tmp_path, mail_server, POCHTA_TRUST_PROXY="1"))
    yield application
    application.extensions["pochta.store"].close()


def tls_token(client: FlaskClient) -> str:
    page = client.get("/login", headers=TLS, base_url="https://localhost")
    match = CSRF_FIELD.search(page.get_data(as_text=True))
    assert match
    return match.group(1)


def test_behind_tls_a_cross_site_referer_is_refused(tls_app: Flask,
                                                    mail_server: DemoMailServer) -> None:
    client = tls_app.test_client()
    token = tls_token(client)
    response = client.post("/login", data={"csrf_token": token, **login_data(mail_server)},
                           headers={**TLS, "Referer": "https://evil.example/login"},
                           base_url="https://localhost")
    assert response.status_code == 400


def test_behind_tls_the_pages_let_browsers_send_the_referer_the_check_needs(
        tls_app: Flask, mail_server: DemoMailServer) -> None:
    """Over HTTPS Flask-WTF wants a same-origin Referer on every POST: the pages' policy must
    let the browser send one to the app (and to nobody else)."""
    client = tls_app.test_client()
    page = client.get("/login", headers=TLS, base_url="https://localhost")
    assert page.headers["Referrer-Policy"] == "same-origin"
    assert '<meta name="referrer" content="same-origin">' in page.get_data(as_text=True)
    token = tls_token(client)
    response = client.post("/login", data={"csrf_token": token, **login_data(mail_server)},
                           headers={**TLS, "Referer": "https://localhost/login"},
                           base_url="https://localhost")
    assert response.status_code == 303
