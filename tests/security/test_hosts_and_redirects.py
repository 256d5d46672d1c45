"""Where Pochta goes on a user's word (issue 5, item 10).

- `POCHTA_ALLOWED_HOSTS`: a mail server host not on the list is refused before any
  connection, however it is spelled (listeners count every accepted connection);
- `?next=` after login (and after switching the language) stays on the site: absolute URLs,
  `//`, backslashes, control characters, encoded variants and script URLs all fall back.
"""

from __future__ import annotations

import re
import urllib.parse
from collections.abc import Iterator
from pathlib import Path

import pytest
from flask import Flask
from flask.testing import FlaskClient

from app import create_app
from app.demo.server import DemoMailServer
from tests.security.fakes import AcceptRecorder
from tests.security.pages import app_page_problems
from tests.web.conftest import app_config, csrf_token, log_in, login_data, post_form

# -- the allow-list -----------------------------------------------------------------------------


@pytest.fixture
def listed(tmp_path: Path, mail_server: DemoMailServer) -> Iterator[Flask]:
    application = create_app(app_config(tmp_path, mail_server, POCHTA_ALLOWED_HOSTS="localhost"))
    yield application
    application.extensions["pochta.store"].close()


@pytest.fixture
def listeners() -> Iterator[tuple[AcceptRecorder, AcceptRecorder]]:
    with AcceptRecorder() as pop3, AcceptRecorder() as smtp:
        yield pop3, smtp


# Each of these reaches this machine's loopback, and none is the listed "localhost".
UNLISTED = ["127.0.0.1", "127.1", "2130706433", "0x7f000001", "0177.0.0.1", "::ffff:127.0.0.1",
            "[::1]", "localhost.localdomain", "xn--lcalhost-9xf", "lоcalhost"]


@pytest.mark.parametrize("host", UNLISTED)
@pytest.mark.parametrize("which", ["pop3", "smtp", "both"])
def test_an_unlisted_host_is_refused_before_any_connection(
        listed: Flask, mail_server: DemoMailServer,
        listeners: tuple[AcceptRecorder, AcceptRecorder], host: str, which: str) -> None:
    pop3, smtp = listeners
    form = login_data(mail_server, pop3_port=pop3.port, smtp_port=smtp.port,
                      pop3_host=host if which in ("pop3", "both") else "localhost",
                      smtp_host=host if which in ("smtp", "both") else "localhost")
    browser = listed.test_client()
    response = post_form(browser, "/login", form)
    assert response.status_code in (400, 403)
    page = response.get_data(as_text=True)
    if response.status_code == 403:
        assert "may only connect to" in page and "localhost" in page
    assert pop3.settle(0.15) == 0 and smtp.accepted == 0
    assert browser.get("/inbox").status_code == 302


def test_the_listed_host_is_allowed_however_it_is_cased(listed: Flask,
                                                        mail_server: DemoMailServer) -> None:
    """The control: the allow-list does not simply refuse everything."""
    browser = listed.test_client()
    form = login_data(mail_server, pop3_host="LocalHost.", smtp_host="LOCALHOST")
    assert post_form(browser, "/login", form).status_code == 303


# -- redirects after login ----------------------------------------------------------------------

ELSEWHERE = [
    "https://evil.example/", "http://evil.example", "HTTPS://evil.example", "//evil.example",
    "///evil.example", "////evil.example", "\\\\evil.example", "/\\evil.example",
    "\\/evil.example", "/\\/evil.example", "/\t/evil.example", "/\n/evil.example",
    "/\r\n/evil.example", " //evil.example", "\t//evil.example", "\x00//evil.example",
    "\x01//evil.example", "https:evil.example", "https:/evil.example", "http:\\\\evil.example",
    "//evil.example@localhost/", "/%2F/evil.example",
    "javascript:alert(1)", "JaVaScRiPt:alert(1)", " javascript:alert(1)",
    "data:text/html,<script>alert(1)</script>", "vbscript:msgbox(1)",
    "%2F%2Fevil.example", "%5C%5Cevil.example", "%252F%252Fevil.example",
    "/%09/evil.example", "／／evil.example", "\u3000//evil.example", "@evil.example",
    "evil.example", ".evil.example", "http://localhost@evil.example/",
]


def browser_target(location: str, base: str = "http://localhost/login") -> tuple[str, str]:
    """(scheme, host) a browser would go to for a Location header (WHATWG parsing:
    tabs and newlines dropped, leading spaces and controls trimmed, "\\" read as "/")."""
    cleaned = re.sub(r"[\t\n\r]", "", location).strip("".join(map(chr, range(33))))
    cleaned = cleaned.replace("\\", "/")
    joined = urllib.parse.urlsplit(urllib.parse.urljoin(base, cleaned))
    return joined.scheme.lower(), (joined.hostname or "").lower()


def assert_stays(response, target: str) -> None:
    assert response.status_code in (302, 303), (target, response.status_code)
    location = response.headers["Location"]
    assert browser_target(location) == ("http", "localhost"), (target, location)
    assert location.startswith("/") and not location.startswith(("//", "/\\")), location


def test_the_target_check_itself_catches_a_way_out() -> None:
    assert browser_target("/\\evil.example") == ("http", "evil.example")
    assert browser_target("\t//evil.example") == ("http", "evil.example")
    assert browser_target("/inbox") == ("http", "localhost")


def test_login_never_redirects_elsewhere(app: Flask,
                                         mail_server: DemoMailServer) -> None:
    for target in ELSEWHERE:
        browser = app.test_client()
        token = csrf_token(browser, "/login")
        response = browser.post("/login", query_string={"next": target},
                                data={"csrf_token": token, **login_data(mail_server)})
        assert_stays(response, target)


def test_a_logged_in_visit_to_login_never_redirects_elsewhere(logged_in: FlaskClient) -> None:
    for target in ELSEWHERE:
        assert_stays(logged_in.get("/login", query_string={"next": target}), target)


def test_the_language_switch_never_redirects_elsewhere(logged_in: FlaskClient) -> None:
    for target in ELSEWHERE:
        token = csrf_token(logged_in, "/inbox")
        response = logged_in.post("/language", data={"csrf_token": token, "lang": "en",
                                                     "next": target})
        assert_stays(response, target)


def test_a_local_target_is_kept(app: Flask, client: FlaskClient,
                                mail_server: DemoMailServer) -> None:
    """The control: ?next= does work for pages of the site."""
    token = csrf_token(client, "/login")
    response = client.post("/login", query_string={"next": "/compose?reply=x"},
                           data={"csrf_token": token, **login_data(mail_server)})
    assert response.headers["Location"] == "/compose?reply=x"


def test_next_is_escaped_on_the_login_form(client: FlaskClient) -> None:
    page = client.get("/login", query_string={
        "next": '/"><script>alert(1)</script><img src=x onerror=alert(1)>'})
    assert app_page_problems(page.get_data(as_text=True)) == []


def test_login_required_sends_back_only_to_the_page_asked_for(
        app: Flask, client: FlaskClient, mail_server: DemoMailServer) -> None:
    first = client.get("/message/abc", query_string={"next": "//evil.example"})
    assert first.status_code == 302
    login_url = urllib.parse.urlsplit(first.headers["Location"])
    assert login_url.path == "/login"
    (target,) = urllib.parse.parse_qs(login_url.query)["next"]
    assert target.startswith("/message/abc")
    log_in(client, mail_server)
    assert client.get("/inbox").status_code == 200
