"""The app's shared objects (store, CSRF protection, translations), reached through the app.

Kept on `app.extensions` rather than module globals, so two apps in one process (tests)
never share a store.
"""

from __future__ import annotations

from flask import Flask, current_app, request, session
from flask_babel import Babel
from flask_wtf.csrf import CSRFProtect

from app.config import Settings
from app.store import Store

LANGUAGES = ("en", "ru")
csrf = CSRFProtect()
babel = Babel()


def select_locale() -> str:
    """The language the user picked, else the browser's best match, else English."""
    chosen = session.get("lang")
    if chosen in LANGUAGES:
        return chosen
    return request.accept_languages.best_match(LANGUAGES) or LANGUAGES[0]


def init_extensions(app: Flask, settings: Settings) -> None:
    csrf.init_app(app)
    babel.init_app(app, locale_selector=select_locale)
    app.extensions["pochta.store"] = Store(settings.data_dir)


def get_store() -> Store:
    return current_app.extensions["pochta.store"]
