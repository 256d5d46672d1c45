"""The app's shared objects (store, CSRF protection, translations), reached through the app.

Kept on `app.extensions` rather than module globals, so two apps in one process (tests)
never share a store.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

import pytz
from flask import Flask, current_app, request, session
from flask_babel import Babel
from flask_wtf.csrf import CSRFProtect

from app.config import Settings
from app.store import Store
from app.web.catalogues import compile_stale

LANGUAGES = ("en", "ru")
csrf = CSRFProtect()
babel = Babel()


def select_locale() -> str:
    """The language the user picked, else the browser's best match, else English."""
    chosen = session.get("lang")
    if chosen in LANGUAGES:
        return chosen
    return request.accept_languages.best_match(LANGUAGES) or LANGUAGES[0]


def server_timezone(environ: Mapping[str, str] = os.environ) -> str:
    """The zone dates are shown in: the server's `TZ` when it names a zone
    ("Europe/Moscow", also ":Europe/Moscow"), else UTC."""
    name = environ.get("TZ", "").removeprefix(":")
    try:
        return pytz.timezone(name).zone if name else "UTC"
    except (pytz.UnknownTimeZoneError, ValueError):
        return "UTC"


def _fresh_catalogues(app: Flask) -> None:
    """In a source checkout, compile a catalogue whose .mo is missing or older than its .po
    (a development fallback: the build compiles them, and a wheel carries no .po)."""
    try:
        compile_stale(Path(app.root_path) / "translations")
    except OSError as error:
        app.logger.warning("cannot compile the message catalogues: %s", error)


def init_extensions(app: Flask, settings: Settings) -> None:
    csrf.init_app(app)
    _fresh_catalogues(app)
    app.config.setdefault("BABEL_DEFAULT_TIMEZONE", server_timezone())
    babel.init_app(app, locale_selector=select_locale)
    app.extensions["pochta.store"] = Store(settings.data_dir)


def get_store() -> Store:
    return current_app.extensions["pochta.store"]
