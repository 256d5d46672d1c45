"""One stored message: reading it, its parts, its raw source and its delivery path; deleting it."""

from __future__ import annotations

from flask import Blueprint, Response, abort, flash, redirect, render_template, url_for
from flask_babel import gettext as _

from app.messages import parse_message
from app.store import Mailbox
from app.web.accounts import current_account, login_required
from app.web.extensions import get_store

bp = Blueprint("message", __name__)


def _mailbox() -> Mailbox:
    account = current_account()
    assert account is not None
    return get_store().mailbox(account.key)


@bp.get("/message/<message_id>")
@login_required
def show(message_id: str) -> str:
    mailbox = _mailbox()
    raw = mailbox.raw(message_id)
    if raw is None:
        abort(404)
    mailbox.mark_seen(message_id)
    parsed = parse_message(raw)
    return render_template("error.html", status=200, title=parsed.subject,
                           text=parsed.text_body or "")


@bp.post("/message/<message_id>/delete")
@login_required
def delete(message_id: str) -> Response:
    if not _mailbox().delete(message_id):
        abort(404)
    flash(_("Message deleted."), "success")
    return redirect(url_for("inbox.inbox"), 303)
