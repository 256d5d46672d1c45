"""Getting new mail: start a background fetch, and report its progress to any worker."""

from __future__ import annotations

from flask import Blueprint, Response, abort, current_app, jsonify, redirect, request, url_for

from app.fetch.jobs import start_fetch
from app.web.accounts import current_account, login_required, password
from app.web.extensions import get_store
from app.web.mailops import fetch_request

bp = Blueprint("fetching", __name__)


def _wants_json() -> bool:
    accepted = request.accept_mimetypes
    return accepted["application/json"] > accepted["text/html"]


@bp.post("/fetch")
@login_required
def start() -> Response | tuple[Response, int]:
    """Start a fetch, or follow the one already running for this account."""
    account = current_account()
    assert account is not None
    job_id, _started = start_fetch(
        get_store(), fetch_request(account, password(), current_app.config["SETTINGS"])
    )
    if _wants_json():
        return jsonify(job=job_id), 202
    return redirect(url_for("inbox.inbox", job=job_id), 303)


@bp.get("/fetch/<job_id>")
@login_required
def progress(job_id: str) -> Response:
    account = current_account()
    assert account is not None
    stale_after = current_app.config["SETTINGS"].fetch_stale_seconds
    job = get_store().get_job(account.key, job_id, stale_after=stale_after)
    if job is None:
        abort(404)
    return jsonify(job.as_json())
