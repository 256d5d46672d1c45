"""Writing mail: compose, reply, forward, and sending through the account's SMTP server."""

from __future__ import annotations

from flask import Blueprint, render_template

from app.web.accounts import login_required

bp = Blueprint("compose", __name__)


@bp.route("/compose", methods=["GET", "POST"])
@login_required
def compose() -> str:
    return render_template("error.html", status=200, title="Compose", text="Coming soon.")
