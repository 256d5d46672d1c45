"""Fixtures for the attacks: the web app's own (tests/web/conftest.py), plus helpers to put
hostile mail in a mailbox, fetch it through the app, and find it again in the inbox.
"""

from __future__ import annotations

import html
import re

from flask import Flask
from flask.testing import FlaskClient
from werkzeug.routing import Rule

from app.demo.server import DemoMailServer
from tests.web.conftest import (  # noqa: F401 - fixtures and helpers used by the modules here
    app,
    app_config,
    client,
    csrf_token,
    fetch_and_wait,
    log_in,
    logged_in,
    login_data,
    mail_server,
    post_form,
)

_INBOX_ROW = re.compile(
    r'<td class="subject">\s*<a href="/message/([^"?/]+)[^"]*">(.*?)</a>', re.DOTALL
)


def inbox_messages(browser: FlaskClient) -> list[tuple[str, str]]:
    """(message id, subject as shown) of every message in the inbox, newest first."""
    found: list[tuple[str, str]] = []
    page = 1
    while True:
        response = browser.get(f"/inbox?page={page}")
        assert response.status_code == 200, response.status_code
        rows = _INBOX_ROW.findall(response.get_data(as_text=True))
        fresh = [(mid, html.unescape(subject)) for mid, subject in rows if
                 (mid, html.unescape(subject)) not in found]
        if not fresh:
            return found
        found += fresh
        page += 1


def deliver_and_fetch(browser: FlaskClient, server: DemoMailServer, *raws: bytes,
                      user: str = "alice") -> list[tuple[str, str]]:
    """Put `raws` in the user's maildrop, fetch through the app; the inbox afterwards."""
    for raw in raws:
        server.mailboxes.deliver(user, raw)
    state = fetch_and_wait(browser, timeout=60)
    assert state["state"] == "done", state
    return inbox_messages(browser)


def only_message(browser: FlaskClient, server: DemoMailServer, raw: bytes) -> str:
    """Deliver and fetch one message into an empty mailbox; its id."""
    messages = deliver_and_fetch(browser, server, raw)
    assert len(messages) == 1, messages
    return messages[0][0]


def concrete_url(flask_app: Flask, rule: Rule, message_id: str) -> str:
    """The rule with real values: a stored message of the victim, part 1, any other text."""
    values = {}
    for name in rule.arguments:
        converter = rule._converters[name]  # the only way to know the type
        if name == "message_id":
            values[name] = message_id
        elif type(converter).__name__ in ("IntegerConverter", "FloatConverter"):
            values[name] = 1
        else:
            values[name] = "x"
    with flask_app.test_request_context():
        return flask_app.url_map.bind("localhost").build(rule.endpoint, values)
