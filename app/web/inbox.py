"""The inbox: stored messages newest first, a page at a time, with search and fetch progress."""

from __future__ import annotations

from flask import Blueprint, current_app, render_template, request

from app.store import MAX_PER_PAGE
from app.web.accounts import current_account, login_required
from app.web.extensions import get_store

bp = Blueprint("inbox", __name__)

PER_PAGE = 50
MAX_QUERY_CHARS = 200


def _page_number() -> int:
    raw = request.args.get("page", "1")
    return max(1, int(raw)) if raw.isdigit() and len(raw) < 9 else 1


@bp.get("/inbox")
@login_required
def inbox() -> str:
    account = current_account()
    assert account is not None
    store = get_store()
    mailbox = store.mailbox(account.key)
    query = request.args.get("q", "").strip()[:MAX_QUERY_CHARS]
    page = mailbox.page(_page_number(), min(PER_PAGE, MAX_PER_PAGE), query or None)
    job_id = request.args.get("job", "")
    stale_after = current_app.config["SETTINGS"].fetch_stale_seconds
    job = store.get_job(account.key, job_id, stale_after=stale_after) if job_id else None
    return render_template(
        "inbox.html",
        page=page,
        query=query,
        job=job,
        unread=mailbox.unread_count(),
    )
