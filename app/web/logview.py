"""The protocol log page: the redacted dialogue of the user's recent logins, fetches, sends."""

from __future__ import annotations

from flask import Blueprint, Response, render_template, request

from app.web.accounts import current_account, login_required
from app.web.extensions import get_store

bp = Blueprint("logview", __name__)


@bp.get("/log")
@login_required
def log() -> Response | str:
    account = current_account()
    assert account is not None
    records = get_store().recent_logs(account.key, limit=10)
    if request.args.get("format") == "text":
        text = "\n\n".join(
            "\n".join([f"# {r.operation} {r.started_at.isoformat()} {'ok' if r.ok else 'failed'}",
                       *r.lines])
            for r in records
        )
        return Response(text + "\n", mimetype="text/plain")
    return render_template("log.html", records=records)
