"""Response headers that hold for every page: the Content-Security-Policy and friends.

A page of the app may run only the app's own scripts (no inline script at all), may be framed
by nobody, and sends no Referer: a message URL must not leak to the sites its links point
to. The one view that serves mail HTML sets its own, stricter policy, which is kept.
"""

from __future__ import annotations

from flask import Flask, Response, request
from werkzeug.middleware.proxy_fix import ProxyFix

from app.config import Settings

APP_CSP = "; ".join([
    "default-src 'self'",
    "script-src 'self'",
    "style-src 'self'",
    "img-src 'self' data:",
    "font-src 'self'",
    "connect-src 'self'",
    "frame-src 'self'",
    "object-src 'none'",
    "base-uri 'none'",
    "form-action 'self'",
    "frame-ancestors 'none'",
])


def add_security_headers(response: Response) -> Response:
    headers = response.headers
    headers.setdefault("Content-Security-Policy", APP_CSP)
    headers.setdefault("X-Content-Type-Options", "nosniff")
    # same-origin: the app's own form posts carry a Referer (Flask-WTF checks it over HTTPS),
    # links leaving the site carry none, so a message URL never leaks to another site.
    headers.setdefault("Referrer-Policy", "same-origin")
    headers.setdefault("X-Frame-Options", "DENY")
    headers.setdefault("Cross-Origin-Opener-Policy", "same-origin")
    headers.setdefault("Permissions-Policy", "camera=(), microphone=(), geolocation=()")
    if request.endpoint != "static":
        headers.setdefault("Cache-Control", "no-store, private")
    return response


def init_headers(app: Flask, settings: Settings) -> None:
    if settings.trust_proxy:
        # Only behind a proxy the admin vouches for: otherwise anyone could claim HTTPS or
        # another client address in a header.
        n = settings.trust_proxy
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=n, x_proto=n, x_host=n, x_port=n)  # type: ignore[method-assign]
    app.after_request(add_security_headers)
