"""The web app under the Flask test client, against the demo mail server on loopback.

Every test gets its own data dir and its own mail server (TLS with the server's own CA, which
the app trusts through POCHTA_CA_FILE, exactly as in production), so tests never share mail.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from flask import Flask
from flask.testing import FlaskClient

from app import create_app
from app.demo.server import DemoMailServer
from app.mail.security import Security

CSRF_FIELD = re.compile(r'name="csrf_token"[^>]*value="([^"]+)"')


@pytest.fixture
def mail_server(tmp_path: Path) -> Iterator[DemoMailServer]:
    with DemoMailServer(
        tmp_path / "mailserver",
        users={"alice": "alice-pw", "bob": "bob-pw", "carol": "пароль-Ü"},
        pop3_security=Security.TLS,
        smtp_security=Security.STARTTLS,
    ) as server:
        yield server


def app_config(tmp_path: Path, server: DemoMailServer, **extra: object) -> dict[str, object]:
    return {
        "TESTING": True,
        "POCHTA_DATA_DIR": str(tmp_path / "data"),
        "POCHTA_CA_FILE": str(server.ca_file),
        "POCHTA_SMTP_HOST": "localhost",
        "POCHTA_SMTP_PORT": str(server.smtp_port),
        "POCHTA_SMTP_SECURITY": "starttls",
        "POCHTA_POP3_HOST": "localhost",
        "POCHTA_POP3_PORT": str(server.pop3_port),
        "POCHTA_POP3_SECURITY": "tls",
        "POCHTA_MAIL_TIMEOUT": "5",
        **extra,
    }


@pytest.fixture
def app(tmp_path: Path, mail_server: DemoMailServer) -> Iterator[Flask]:
    application = create_app(app_config(tmp_path, mail_server))
    yield application
    application.extensions["pochta.store"].close()


@pytest.fixture
def client(app: Flask) -> FlaskClient:
    return app.test_client()


def csrf_token(client: FlaskClient, page: str = "/login") -> str:
    """The CSRF token a form on `page` carries (the session cookie comes along)."""
    html = client.get(page).get_data(as_text=True)
    match = CSRF_FIELD.search(html)
    assert match, f"no csrf_token on {page}"
    return match.group(1)


def post_form(client: FlaskClient, url: str, data: dict, *, page: str | None = None, **kw):
    """POST like a browser: with the CSRF token from the page that shows the form."""
    token = csrf_token(client, page or url)
    return client.post(url, data={"csrf_token": token, **data}, **kw)


def login_data(server: DemoMailServer, user: str = "alice", **overrides: object) -> dict:
    data = {
        "email": server.address(user),
        "password": server.users[user],
        "username": user,
        "pop3_host": "localhost",
        "pop3_port": server.pop3_port,
        "pop3_security": "tls",
        "smtp_host": "localhost",
        "smtp_port": server.smtp_port,
        "smtp_security": "starttls",
        "keep_on_server": "y",
    }
    data.update(overrides)
    return data


def log_in(client: FlaskClient, server: DemoMailServer, user: str = "alice", **overrides):
    response = post_form(client, "/login", login_data(server, user, **overrides))
    assert response.status_code == 303, response.get_data(as_text=True)[:2000]
    return response


@pytest.fixture
def logged_in(client: FlaskClient, mail_server: DemoMailServer) -> FlaskClient:
    log_in(client, mail_server)
    return client


def fetch_and_wait(client: FlaskClient, timeout: float = 10.0) -> dict:
    """Start a fetch through the UI's JSON API and wait for it to end; the final job state."""
    import time

    token = csrf_token(client, "/inbox")
    response = client.post("/fetch", data={"csrf_token": token},
                           headers={"Accept": "application/json"})
    assert response.status_code == 202, response.get_data(as_text=True)
    job = response.get_json()["job"]
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        state = client.get(f"/fetch/{job}").get_json()
        if state["state"] != "running":
            return state
        time.sleep(0.05)
    raise AssertionError(f"fetch job {job} still running after {timeout} s")
