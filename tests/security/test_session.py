"""Sessions (issue 5, item 8): the password sealed in the cookie, cookie flags, a fresh
session at login, logout and idle timeout enforced server-side (an old cookie copy is
useless, in every worker), and cookies that were tampered with or signed elsewhere refused.
"""

from __future__ import annotations

import dataclasses
import itertools
import json
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from flask import Flask
from flask.sessions import SecureCookieSessionInterface
from flask.testing import FlaskClient

from app import create_app
from app.config import load_settings
from app.demo.server import DemoMailServer
from tests.security.conftest import concrete_url, inbox_messages, only_message
from tests.web.conftest import app_config, csrf_token, log_in, login_data

CAROL_PASSWORD = "пароль-Ü"


def cookie(client: FlaskClient) -> str:
    found = client.get_cookie("session")
    assert found is not None
    return found.value


def replay(app: Flask, value: str) -> FlaskClient:
    """A new browser holding a copy of a cookie."""
    browser = app.test_client()
    browser.set_cookie("session", value)
    return browser


def logged_in_as(browser: FlaskClient) -> bool:
    response = browser.get("/inbox")
    assert response.status_code in (200, 302)
    return response.status_code == 200


def contents(app: Flask, value: str) -> dict:
    serializer = SecureCookieSessionInterface().get_signing_serializer(app)
    assert serializer is not None
    return serializer.loads(value)


def signed(secret_key: str, data: dict) -> str:
    other = Flask("forger")
    other.secret_key = secret_key
    serializer = SecureCookieSessionInterface().get_signing_serializer(other)
    assert serializer is not None
    return serializer.dumps(data)


@pytest.fixture
def second_worker(tmp_path: Path, app: Flask, mail_server: DemoMailServer) -> Iterator[Flask]:
    """Another app on the same data dir: what a second gunicorn worker holds."""
    other = create_app(app_config(tmp_path, mail_server))
    yield other
    other.extensions["pochta.store"].close()


# -- the password -------------------------------------------------------------------------------

def test_the_password_is_not_readable_in_the_cookie_or_the_store(
        app: Flask, client: FlaskClient, mail_server: DemoMailServer, tmp_path: Path) -> None:
    log_in(client, mail_server, "carol")
    value = cookie(client)
    data = contents(app, value)
    flat = json.dumps(data, ensure_ascii=False)
    assert CAROL_PASSWORD not in flat and CAROL_PASSWORD not in value
    assert CAROL_PASSWORD.encode().hex() not in flat
    assert data["secret"].startswith("gAAAAA")  # a Fernet token, not an encoding of it
    assert logged_in_as(client)
    stored = [p for p in (tmp_path / "data").rglob("*") if p.is_file()]
    assert stored
    for path in stored:
        assert CAROL_PASSWORD.encode() not in path.read_bytes(), path
    assert CAROL_PASSWORD not in client.get("/log?format=text").get_data(as_text=True)


def test_the_generated_secret_key_is_private(app: Flask, tmp_path: Path) -> None:
    """The key that seals every password is readable by its owner only."""
    key_file = tmp_path / "data" / "secret_key"
    assert key_file.is_file()
    assert key_file.stat().st_mode & 0o077 == 0
    assert key_file.parent.stat().st_mode & 0o077 == 0


# -- cookie flags -------------------------------------------------------------------------------

def cookie_flags(set_cookie: str) -> set[str]:
    return {part.strip().lower() for part in set_cookie.split(";")[1:]}


def login_cookie(client: FlaskClient, server: DemoMailServer, *, https: bool,
                 headers: dict[str, str] | None = None) -> str:
    base = "https://localhost" if https else "http://localhost"
    extra = {**(headers or {}), **({"Referer": f"{base}/login"} if https else {})}
    page = client.get("/login", base_url=base, headers=extra).get_data(as_text=True)
    token = page.split('name="csrf_token"', 1)[1].split('value="', 1)[1].split('"', 1)[0]
    response = client.post("/login", data={"csrf_token": token, **login_data(server)},
                           base_url=base, headers=extra)
    assert response.status_code == 303, response.get_data(as_text=True)[:500]
    (set_cookie,) = [c for c in response.headers.getlist("Set-Cookie")
                     if c.startswith("session=")]
    return set_cookie


def test_cookie_is_httponly_and_samesite_lax(app: Flask, client: FlaskClient,
                                             mail_server: DemoMailServer) -> None:
    flags = cookie_flags(login_cookie(client, mail_server, https=False))
    assert "httponly" in flags
    assert "samesite=lax" in flags
    assert "secure" not in flags  # plain HTTP in development: a Secure cookie would not return


@pytest.mark.parametrize("setting", [
    {"POCHTA_SECURE_COOKIES": "1"},
    {"POCHTA_TRUST_PROXY": "1"},
])
def test_cookie_is_secure_behind_tls(tmp_path: Path, mail_server: DemoMailServer,
                                     setting: dict[str, str]) -> None:
    application = create_app(app_config(tmp_path, mail_server, **setting))
    try:
        proxy = {"X-Forwarded-Proto": "https"} if "POCHTA_TRUST_PROXY" in setting else {}
        flags = cookie_flags(login_cookie(application.test_client(), mail_server, https=True,
                                          headers=proxy))
        assert {"secure", "httponly", "samesite=lax"} <= flags
    finally:
        application.extensions["pochta.store"].close()


def test_forwarded_proto_is_not_believed_without_a_trusted_proxy(
        app: Flask, client: FlaskClient, mail_server: DemoMailServer) -> None:
    page = client.get("/login", headers={"X-Forwarded-Proto": "https"})
    assert "secure" not in cookie_flags(page.headers["Set-Cookie"])


# -- a new session at login ---------------------------------------------------------------------

def test_login_starts_a_new_session(app: Flask, client: FlaskClient,
                                    mail_server: DemoMailServer) -> None:
    before_token = csrf_token(client, "/login")
    before = cookie(client)
    log_in(client, mail_server)
    after = contents(app, cookie(client))
    assert "sid" in after and "sid" not in contents(app, before)
    # What was planted before login (a fixated cookie, its CSRF token) is worth nothing now.
    assert not logged_in_as(replay(app, before))
    assert client.post("/logout", data={"csrf_token": before_token}).status_code == 400
    assert logged_in_as(client)

    again = app.test_client()
    log_in(again, mail_server)
    assert contents(app, cookie(again))["sid"] != after["sid"]


# -- logout and idle timeout: enforced on the server --------------------------------------------

# Routes that serve anyone; every other one needs a live session.
PUBLIC = {"/", "/login", "/healthz", "/language", "/static/<path:filename>"}


def test_logout_makes_every_copy_of_the_cookie_useless(
        app: Flask, client: FlaskClient, mail_server: DemoMailServer,
        second_worker: Flask) -> None:
    log_in(client, mail_server)
    message_id = only_message(client, mail_server, b"Subject: mine\r\n\r\nhello\r\n")
    copied = cookie(client)
    token = csrf_token(client, "/inbox")
    assert logged_in_as(replay(app, copied)) and logged_in_as(replay(second_worker, copied))
    assert client.post("/logout", data={"csrf_token": token}).status_code == 303

    rules = [r for r in app.url_map.iter_rules() if r.rule not in PUBLIC]
    assert len(rules) >= 10
    for worker in (app, second_worker):
        for rule in rules:
            url = concrete_url(app, rule, message_id)
            thief = replay(worker, copied)  # afresh: a response may change the thief's cookie
            if "GET" in (rule.methods or ()):
                response = thief.get(url)
                assert response.status_code == 302, (rule.rule, response.status_code)
                assert response.headers["Location"].startswith("/login"), rule.rule
            if "POST" in (rule.methods or ()):
                response = replay(worker, copied).post(url, data={"csrf_token": token},
                                      headers={"Accept": "application/json"})
                allowed = (302, 303, 400) if rule.rule == "/logout" else (302, 400)
                assert response.status_code in allowed, (rule.rule, response.status_code)
    # Nothing was done with it: the message is still there for its owner.
    owner = app.test_client()
    log_in(owner, mail_server)
    assert [mid for mid, _ in inbox_messages(owner)] == [message_id]


def idle_app(tmp_path: Path, server: DemoMailServer) -> Flask:
    env = {k: str(v) for k, v in app_config(tmp_path, server).items() if k.startswith("POCHTA_")}
    settings = dataclasses.replace(load_settings(env), session_idle_seconds=1)
    return create_app({"SETTINGS": settings, "TESTING": True})


def test_an_idle_session_expires_in_every_worker(tmp_path: Path,
                                                 mail_server: DemoMailServer) -> None:
    first, second = idle_app(tmp_path, mail_server), idle_app(tmp_path, mail_server)
    try:
        browser = first.test_client()
        log_in(browser, mail_server)
        copied = cookie(browser)
        # In use, it lives well past the idle limit, whichever worker answers.
        for worker in itertools.islice(itertools.cycle((first, second)), 5):
            assert logged_in_as(replay(worker, copied))
            time.sleep(0.4)
        time.sleep(2.0)
        assert not logged_in_as(replay(second, copied))
        assert not logged_in_as(replay(first, copied))
    finally:
        for application in (first, second):
            application.extensions["pochta.store"].close()


# -- forged and tampered cookies ----------------------------------------------------------------

def test_a_tampered_cookie_is_refused(app: Flask, client: FlaskClient,
                                      mail_server: DemoMailServer) -> None:
    log_in(client, mail_server)
    value = cookie(client)
    payload, _, signature = value.rpartition(".")
    for tampered in (
        payload[:-3] + ("A" if payload[-3] != "A" else "B") + payload[-2:] + "." + signature,
        payload + "." + signature[:-2] + ("AA" if signature[-2:] != "AA" else "BB"),
        payload + ".",
        payload,
    ):
        assert not logged_in_as(replay(app, tampered)), tampered


def test_a_cookie_signed_with_another_key_is_refused(app: Flask, client: FlaskClient,
                                                     mail_server: DemoMailServer,
                                                     tmp_path: Path) -> None:
    log_in(client, mail_server)
    data = contents(app, cookie(client))
    assert logged_in_as(replay(app, signed(app.secret_key, data)))  # the forger works...
    assert not logged_in_as(replay(app, signed("not the key", data)))  # ...but needs the key

    elsewhere = create_app(app_config(tmp_path / "other", mail_server))
    try:
        assert elsewhere.secret_key != app.secret_key
        other = elsewhere.test_client()
        log_in(other, mail_server)
        assert not logged_in_as(replay(app, cookie(other)))
    finally:
        elsewhere.extensions["pochta.store"].close()


def test_a_session_id_needs_its_own_account(app: Flask, mail_server: DemoMailServer) -> None:
    """Even with the key, alice's session id does not open bob's account."""
    alice, bob = app.test_client(), app.test_client()
    log_in(alice, mail_server)
    log_in(bob, mail_server, "bob")
    swapped = {**contents(app, cookie(bob)), "sid": contents(app, cookie(alice))["sid"]}
    assert not logged_in_as(replay(app, signed(app.secret_key, swapped)))
