"""The inbox: stored messages newest first, a page at a time, with search and fetch progress."""

from __future__ import annotations

from flask import Blueprint, current_app, render_template, request, session, url_for
from flask_babel import get_locale

from app.store import MAX_PER_PAGE
from app.web.accounts import current_account, login_required
from app.web.extensions import get_store
from app.web.pagecache import page_cache

bp = Blueprint("inbox", __name__)

PER_PAGE = 50
_ID = "MESSAGE-ID"
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
    number = _page_number()
    job_id = request.args.get("job", "")
    # A running fetch or a flashed message belong to this one showing; any other inbox
    # page is the same until the mailbox changes.
    key = None
    if not job_id and "_flashes" not in session:
        key = (session.get("sid"), str(get_locale()), number, query, mailbox.version())
        cached = page_cache().get(key)
        if cached is not None:
            return cached
    page = mailbox.page(number, min(PER_PAGE, MAX_PER_PAGE), query or None)
    stale_after = current_app.config["SETTINGS"].fetch_stale_seconds
    job = store.get_job(account.key, job_id, stale_after=stale_after) if job_id else None
    # Message links differ only in the id (URL-safe by construction): build one, split it.
    link = url_for(
        "message.show", message_id=_ID, page=page.page if page.page > 1 else None,
        q=query or None,
    )
    link_prefix, link_suffix = link.split(_ID, 1)
    html = render_template(
        "inbox.html",
        link_prefix=link_prefix,
        link_suffix=link_suffix,
        page=page,
        query=query,
        job=job,
        unread=mailbox.unread_count(),
    )
    if key is not None:
        page_cache().put(key, html)
    return html
