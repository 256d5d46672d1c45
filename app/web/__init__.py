"""The browser side: blueprints by area, and the steps that wire them into the app.

Views know the store, the message helpers and the protocol clients' public methods, never
sockets; every user-facing sentence about a protocol error comes from `mailerrors`.
"""

from __future__ import annotations

from flask import Flask

from app.config import Settings


def register(app: Flask, settings: Settings) -> None:
    from app.web import (
        auth,
        compose,
        errors,
        extensions,
        fetching,
        headers,
        inbox,
        logview,
        message,
        meta,
        templating,
    )

    extensions.init_extensions(app, settings)
    templating.init_templating(app)
    headers.init_headers(app, settings)
    errors.init_error_pages(app)
    for blueprint in (
        meta.bp,
        auth.bp,
        inbox.bp,
        fetching.bp,
        message.bp,
        compose.bp,
        logview.bp,
    ):
        app.register_blueprint(blueprint)
