"""Behind a reverse proxy: X-Forwarded-* count only with POCHTA_TRUST_PROXY.

Without it a client could claim HTTPS, another host, or another address (and so dodge the
login rate limit, which counts failures per request.remote_addr). With POCHTA_TRUST_PROXY=1
the one proxy's headers are honoured and the session cookie is marked Secure.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from flask import Flask, jsonify, request

from app import create_app

SOCKET_PEER = "192.0.2.10"  # the address the connection really comes from (the proxy's)
CLIENT = "203.0.113.7"
FORWARDED = {
    "X-Forwarded-For": CLIENT,
    "X-Forwarded-Proto": "https",
    "X-Forwarded-Host": "pochta.lab.example",
}


@pytest.fixture
def make_app(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Callable[..., Flask]]:
    """The app as the environment configures it, plus a test-only route that shows what a
    view sees of the request. Only the given POCHTA_* variables are set."""
    for name in [n for n in os.environ if n.startswith("POCHTA_")]:
        monkeypatch.delenv(name)
    monkeypatch.setenv("POCHTA_DATA_DIR", str(tmp_path / "data"))
    made: list[Flask] = []

    def make(**env: str) -> Flask:
        for name, value in env.items():
            monkeypatch.setenv(name, value)
        application = create_app({"TESTING": True})

        @application.get("/_test/request")
        def seen():
            return jsonify(scheme=request.scheme, remote_addr=request.remote_addr,
                           host=request.host, url_root=request.url_root)

        made.append(application)
        return application

    yield make
    for application in made:
        application.extensions["pochta.store"].close()


def _seen(application: Flask, headers: dict[str, str]) -> dict[str, str]:
    client = application.test_client()
    response = client.get(
        "/_test/request", headers=headers, environ_base={"REMOTE_ADDR": SOCKET_PEER}
    )
    return response.get_json()


def _session_cookie(application: Flask, headers: dict[str, str]) -> str:
    response = application.test_client().get(
        "/login", headers=headers, environ_base={"REMOTE_ADDR": SOCKET_PEER}
    )
    [cookie] = [c for c in response.headers.getlist("Set-Cookie") if c.startswith("session=")]
    return cookie


def test_forwarded_headers_are_ignored_without_trust_proxy(make_app):
    seen = _seen(make_app(), FORWARDED)
    assert seen["scheme"] == "http"
    assert seen["remote_addr"] == SOCKET_PEER
    assert seen["host"] == "localhost"


def test_forwarded_proto_does_not_make_the_cookie_secure_without_trust_proxy(make_app):
    cookie = _session_cookie(make_app(), FORWARDED)
    assert "Secure" not in cookie
    assert "HttpOnly" in cookie


def test_trust_proxy_honours_the_forwarded_scheme_address_and_host(make_app):
    seen = _seen(make_app(POCHTA_TRUST_PROXY="1"), FORWARDED)
    assert seen["scheme"] == "https"
    assert seen["remote_addr"] == CLIENT
    assert seen["host"] == "pochta.lab.example"
    assert seen["url_root"] == "https://pochta.lab.example/"


def test_trust_proxy_marks_the_session_cookie_secure(make_app):
    cookie = _session_cookie(make_app(POCHTA_TRUST_PROXY="1"), FORWARDED)
    assert "Secure" in cookie


def test_one_trusted_proxy_takes_only_the_address_it_added(make_app):
    # A client sends its own X-Forwarded-For; a proxy that appends its peer's address after
    # it leaves the forged value first, and only the last (the proxy's own) counts.
    seen = _seen(make_app(POCHTA_TRUST_PROXY="1"), {"X-Forwarded-For": f"10.9.9.9, {CLIENT}"})
    assert seen["remote_addr"] == CLIENT


def test_secure_cookies_can_be_turned_off_behind_a_plain_http_proxy(make_app):
    cookie = _session_cookie(
        make_app(POCHTA_TRUST_PROXY="1", POCHTA_SECURE_COOKIES="0"), FORWARDED
    )
    assert "Secure" not in cookie
