"""Pochta: a web mail client on its own SMTP and POP3 clients.

`create_app()` is the WSGI entry (gunicorn runs `app:create_app()`). It is a list of small
steps, each registering one concern, so the whole app can be read from here downward.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from flask import Flask

from app.config import Settings, load_settings
from app.secret import load_or_create_secret_key

PACKAGE_DIR = Path(__file__).resolve().parent


def _asset_dir(name: str) -> Path:
    """templates/ and static/ sit beside the package in a checkout and inside it once
    installed from the wheel (mapped there at build time)."""
    inside = PACKAGE_DIR / name
    return inside if inside.is_dir() else PACKAGE_DIR.parent / name


def _settings(config: Mapping[str, Any]) -> Settings:
    if isinstance(config.get("SETTINGS"), Settings):
        return config["SETTINGS"]
    overrides = {k: str(v) for k, v in config.items() if k.startswith("POCHTA_")}
    return load_settings({**os.environ, **overrides})


def create_app(config: Mapping[str, Any] | None = None) -> Flask:
    """Build the app from the POCHTA_* environment; `config` overrides it (tests pass
    POCHTA_* keys or a ready `SETTINGS`, plus any Flask settings such as TESTING)."""
    config = dict(config or {})
    settings = _settings(config)
    app = Flask(
        __name__,
        template_folder=str(_asset_dir("templates")),
        static_folder=str(_asset_dir("static")),
    )
    app.config.update(
        SECRET_KEY=settings.secret_key or load_or_create_secret_key(settings.data_dir),
        MAX_CONTENT_LENGTH=settings.max_upload_bytes,
        SESSION_COOKIE_HTTPONLY=True,
        SESSION_COOKIE_SAMESITE="Lax",
        SESSION_COOKIE_SECURE=settings.secure_cookies,
        WTF_CSRF_TIME_LIMIT=None,
        TEMPLATES_AUTO_RELOAD=False,
    )
    app.config.update({k: v for k, v in config.items() if not k.startswith("POCHTA_")})
    app.config["SETTINGS"] = settings

    from app.web import register

    register(app, settings)
    return app
