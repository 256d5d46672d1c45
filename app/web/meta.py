"""The routes that are not about mail: the front door, the health check, the language."""

from __future__ import annotations

from flask import Blueprint, Response, abort, redirect, request, session, url_for

from app.web.accounts import current_account
from app.web.extensions import LANGUAGES
from app.web.safety import local_target

bp = Blueprint("meta", __name__)


@bp.get("/")
def index() -> Response:
    target = "inbox.inbox" if current_account() is not None else "auth.login"
    return redirect(url_for(target))


@bp.get("/healthz")
def healthz() -> tuple[str, int, dict[str, str]]:
    return "ok", 200, {"Content-Type": "text/plain; charset=utf-8"}


@bp.post("/language")
def language() -> Response:
    """Switch the interface language and remember it for the session."""
    chosen = request.form.get("lang", "")
    if chosen not in LANGUAGES:
        abort(400)
    session["lang"] = chosen
    return redirect(local_target(request.form.get("next"), url_for("meta.index")), 303)
