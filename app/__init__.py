"""Pochta: a web mail client on its own SMTP and POP3 clients."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from flask import Flask


def create_app(config: Mapping[str, Any] | None = None) -> Flask:
    """Build the app from the POCHTA_* environment, with `config` overriding it (tests)."""
    app = Flask(__name__)
    if config:
        app.config.update(config)

    @app.get("/healthz")
    def healthz() -> tuple[str, int, dict[str, str]]:
        return "ok", 200, {"Content-Type": "text/plain; charset=utf-8"}

    return app
