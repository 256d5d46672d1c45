"""The front door, the health check, the language switch and the headers on every page."""

from __future__ import annotations

from tests.web.conftest import csrf_token


def test_healthz(client):
    response = client.get("/healthz")
    assert response.status_code == 200 and response.get_data() == b"ok"


def test_root_redirects_to_login_then_inbox(client, logged_in):
    assert client.get("/").headers["Location"].endswith("/inbox")


def test_root_without_login_goes_to_login(app):
    assert app.test_client().get("/").headers["Location"].endswith("/login")


def test_pages_carry_a_strict_content_security_policy(client):
    response = client.get("/login")
    csp = response.headers["Content-Security-Policy"]
    assert "script-src 'self'" in csp and "unsafe-inline" not in csp
    assert "frame-ancestors 'none'" in csp
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    assert response.headers["Referrer-Policy"] == "same-origin"
    assert "<script>" not in response.get_data(as_text=True)


def test_language_follows_the_browser_and_can_be_switched(client):
    html = client.get("/login", headers={"Accept-Language": "ru,en;q=0.5"}).get_data(as_text=True)
    assert '<html lang="ru">' in html
    token = csrf_token(client)
    response = client.post("/language", data={"csrf_token": token, "lang": "en",
                                              "next": "/login"})
    assert response.status_code == 303 and response.headers["Location"] == "/login"
    html = client.get("/login", headers={"Accept-Language": "ru"}).get_data(as_text=True)
    assert '<html lang="en">' in html


def test_language_switch_refuses_unknown_languages_and_foreign_redirects(client):
    token = csrf_token(client)
    assert client.post("/language", data={"csrf_token": token, "lang": "xx"}).status_code == 400
    response = client.post("/language", data={"csrf_token": token, "lang": "ru",
                                              "next": "https://evil.example/"})
    assert response.headers["Location"] == "/"


def test_unknown_page_is_a_friendly_404(client):
    response = client.get("/no/such/page")
    assert response.status_code == 404
    assert "Not found" in response.get_data(as_text=True)
