"""One stored message: reading it, its parts, its raw source and its delivery path; deleting it.

Mail is hostile input. Its text reaches the page only through Jinja's escaping (see
`message_render`); its HTML only through the sanitizer, and then only inside a sandboxed
frame served from `/body` with a policy of its own; its attachments only as downloads that
the browser will not render from the app's origin.
"""

from __future__ import annotations

import base64
import re
from collections.abc import Iterator
from typing import BinaryIO

from flask import (
    Blueprint,
    Response,
    abort,
    current_app,
    flash,
    redirect,
    render_template,
    request,
    url_for,
)
from flask_babel import gettext as _
from markupsafe import Markup

from app.messages import ParsedMessage, analyse_trace, get_part, html_to_text, parse_message
from app.messages import sanitize_html as sanitize
from app.store import Mailbox
from app.web.accounts import current_account, login_required
from app.web.extensions import get_store
from app.web.message_render import (
    MAX_TEXT_CHARS,
    RASTER_IMAGE_TYPES,
    blocked_images_note,
    content_disposition,
    download_type,
    duration,
    header_end,
    render_text,
    verdict_class,
)

bp = Blueprint("message", __name__)

RAW_CHUNK = 256 * 1024
MAX_HEAD_BYTES = 1024 * 1024
_LANGUAGE_TAG = re.compile(r"[A-Za-z]{2,8}(-[A-Za-z0-9]{1,8})*")
MAX_INLINE_IMAGE_BYTES = 8 * 1024 * 1024  # all cid: images of one body together
MAX_QUERY_CHARS = 200

SANDBOX = "sandbox allow-popups allow-popups-to-escape-sandbox"
INERT_DOWNLOAD_CSP = "sandbox; default-src 'none'"


def body_csp(remote_images: bool) -> str:
    """The policy of the sanitized HTML document: nothing runs, nothing is fetched but our
    own images (and remote ones only when the user asked), it may be framed only by us."""
    images = "img-src 'self' data: http: https:" if remote_images else "img-src 'self' data:"
    return "; ".join([
        "default-src 'none'",
        images,
        "style-src 'unsafe-inline'",
        "font-src 'none'",
        "form-action 'none'",
        "frame-ancestors 'self'",
        "base-uri 'none'",
        SANDBOX,
    ])


@bp.context_processor
def _helpers() -> dict[str, object]:
    return {"duration": duration, "verdict_class": verdict_class}


# -- finding the message ------------------------------------------------------------------------


def _mailbox() -> Mailbox:
    account = current_account()
    assert account is not None  # login_required ran first
    return get_store().mailbox(account.key)


def _raw(mailbox: Mailbox, message_id: str) -> bytes:
    """The stored bytes, or 404: an id of another account's mail is simply not here."""
    raw = mailbox.raw(message_id)
    if raw is None:
        abort(404)
    return raw


def _read_head(reader: BinaryIO) -> bytes:
    """The header section of a raw message, read in chunks (never the whole of a big one)."""
    data = b""
    while len(data) < MAX_HEAD_BYTES:
        chunk = reader.read(64 * 1024)
        if not chunk:
            break
        data += chunk
        end = header_end(data)
        if end is not None:
            return data[:end]
    return data[:MAX_HEAD_BYTES]


def _inbox_args(source: dict[str, str] | None = None) -> dict[str, str]:
    """The inbox page and search to go back to, when the link that led here carried them."""
    values = request.args if source is None else source
    args = {}
    page = values.get("page", "")
    if page.isdigit() and 0 < len(page) < 9 and page != "1":
        args["page"] = page
    query = values.get("q", "").strip()[:MAX_QUERY_CHARS]
    if query:
        args["q"] = query
    return args


def _embeddable_cids(parsed: ParsedMessage) -> set[str]:
    """The Content-IDs of the raster images the HTML body may show (never SVG)."""
    return {
        attachment.content_id
        for attachment in parsed.attachments
        if attachment.content_id and attachment.content_type.lower() in RASTER_IMAGE_TYPES
    }


def _cid_data_urls(raw: bytes, parsed: ParsedMessage) -> dict[str, str]:
    """Content-ID -> `data:` URL of the raster images the HTML body may show.

    The body is a sandboxed document of an opaque origin, so its requests carry no session
    cookie (SameSite): a part URL would answer with the login page. The images therefore
    travel inside the document, within a budget, and only raster types (never SVG).
    """
    urls: dict[str, str] = {}
    budget = MAX_INLINE_IMAGE_BYTES
    embeddable = _embeddable_cids(parsed)
    for attachment in parsed.attachments:
        if attachment.content_id not in embeddable or attachment.size > budget:
            continue
        kind = attachment.content_type.lower()
        try:
            data = get_part(raw, attachment.index).data
        except Exception:  # a part the parser cannot give back is simply not shown
            current_app.logger.warning("embedded image %s is unreadable", attachment.index)
            continue
        budget -= len(data)
        urls[attachment.content_id] = f"data:{kind};base64,{base64.b64encode(data).decode()}"
    return urls


def _content_language(parsed: ParsedMessage) -> str | None:
    """The mail's own Content-Language (its first tag), when it names one properly."""
    for name, value in parsed.headers:
        if name.lower() == "content-language":
            tag = value.split(",")[0].strip()
            return tag if _LANGUAGE_TAG.fullmatch(tag) else None
    return None


# -- the message ----------------------------------------------------------------------------------


@bp.get("/message/<message_id>")
@login_required
def show(message_id: str) -> str:
    mailbox = _mailbox()
    summary = mailbox.get(message_id)
    if summary is None:
        abort(404)
    parsed = parse_message(_raw(mailbox, message_id))
    if not summary.seen:
        mailbox.mark_seen(message_id)
    newer, older = mailbox.neighbours(message_id)
    remote_images = request.args.get("images") == "1"
    view = "html" if parsed.html_body and request.args.get("view") != "text" else "text"

    blocked = 0
    truncated = False
    text = None
    shown_inline: set[str] = set()
    if view == "html":
        # Sanitized here only to learn what the body frame will show: how many remote
        # images it holds back, and which embedded images need no attachment row.
        embeddable = _embeddable_cids(parsed)

        def note_embedded(content_id: str) -> str | None:
            if content_id not in embeddable:
                return None
            shown_inline.add(content_id)
            return "data:,"

        cleaned = sanitize(parsed.html_body or "", allow_remote_images=remote_images,
                           cid_url=note_embedded)
        blocked = cleaned.remote_images_blocked
        truncated = cleaned.truncated
    else:
        plain = parsed.text_body
        if plain is None and parsed.html_body:
            plain = html_to_text(parsed.html_body)
        plain = plain or ""
        truncated = len(plain) > MAX_TEXT_CHARS
        text = render_text(plain[:MAX_TEXT_CHARS])

    attachments = [a for a in parsed.attachments if a.content_id not in shown_inline
                   or not a.is_inline]
    return render_template(
        "message.html",
        message_id=message_id,
        message=parsed,
        view=view,
        text=text,
        remote_images=remote_images,
        blocked=blocked,
        blocked_note=blocked_images_note(blocked) if blocked else "",
        truncated=truncated,
        attachments=attachments,
        newer=newer,
        older=older,
        inbox_args=_inbox_args(),
    )


@bp.get("/message/<message_id>/body")
@login_required
def body(message_id: str) -> Response:
    """The sanitized HTML body as a document of its own, for the sandboxed frame."""
    raw_bytes = _raw(_mailbox(), message_id)
    parsed = parse_message(raw_bytes)
    if not parsed.html_body:
        abort(404)
    remote_images = request.args.get("images") == "1"
    cleaned = sanitize(parsed.html_body, allow_remote_images=remote_images,
                       cid_url=_cid_data_urls(raw_bytes, parsed).get)
    document = render_template(
        "message_body.html",
        body=Markup(cleaned.html),  # noqa: S704 - sanitized by nh3
        title=parsed.subject,
        lang=_content_language(parsed),
    )
    response = Response(document, content_type="text/html; charset=utf-8")
    response.headers["Content-Security-Policy"] = body_csp(remote_images)
    response.headers["X-Frame-Options"] = "SAMEORIGIN"
    response.headers["X-Content-Type-Options"] = "nosniff"
    return response


@bp.get("/message/<message_id>/raw")
@login_required
def raw(message_id: str) -> Response:
    """The message byte for byte as downloaded, streamed from the store."""
    reader = _mailbox().open_raw(message_id)
    if reader is None:
        abort(404)
    size = getattr(reader, "size", None)

    def chunks() -> Iterator[bytes]:
        try:
            while chunk := reader.read(RAW_CHUNK):
                yield chunk
        finally:
            reader.close()

    response = Response(chunks(), content_type="text/plain; charset=utf-8",
                        direct_passthrough=True)
    response.call_on_close(reader.close)
    if size is not None:
        response.content_length = size
    kind = "attachment" if request.args.get("download") == "1" else "inline"
    response.headers["Content-Disposition"] = content_disposition(kind, "message.eml")
    response.headers["X-Content-Type-Options"] = "nosniff"
    response.headers["Content-Security-Policy"] = INERT_DOWNLOAD_CSP
    return response


@bp.get("/message/<message_id>/part/<int:n>")
@login_required
def part(message_id: str, n: int) -> Response:
    """One attachment: always a download, never a page of the app's origin."""
    raw_bytes = _raw(_mailbox(), message_id)
    try:
        found = get_part(raw_bytes, n)
    except KeyError:
        abort(404)
    except Exception:  # malformed beyond what the parser absorbs: nothing to download
        current_app.logger.exception("part %s of a message could not be read", n)
        abort(404)
    response = Response(found.data, content_type=download_type(found.content_type.lower()))
    response.headers["Content-Disposition"] = content_disposition("attachment", found.filename)
    response.headers["X-Content-Type-Options"] = "nosniff"
    response.headers["Content-Security-Policy"] = INERT_DOWNLOAD_CSP
    return response


@bp.post("/message/<message_id>/delete")
@login_required
def delete(message_id: str) -> Response:
    if not _mailbox().delete(message_id):
        abort(404)
    flash(_("Message deleted."), "success")
    return redirect(url_for("inbox.inbox", **_inbox_args(request.form)), 303)


@bp.get("/message/<message_id>/headers")
@login_required
def headers(message_id: str) -> str:
    """Every header field, and the delivery path read from the trace fields."""
    reader = _mailbox().open_raw(message_id)
    if reader is None:
        abort(404)
    with reader:
        head = _read_head(reader)
    parsed = parse_message(head)
    return render_template(
        "message_headers.html",
        message_id=message_id,
        message=parsed,
        trace=analyse_trace(head),
        inbox_args=_inbox_args(),
    )
