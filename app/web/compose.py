"""Writing mail: compose, reply, forward, and sending through the account's SMTP server.

`GET /compose` shows an empty form, or one prefilled from a stored message
(`?reply=<id>`, `?reply=<id>&all=1`, `?forward=<id>[&mode=attachment]`). `POST /compose`
keeps every uploaded file server-side first (`compose_stash`), then validates, builds the
message with `app.messages.build_message` and sends it with `mailops.send`.

Outcomes of a POST:

- sent (every recipient, or some): 303 to /inbox with a flash naming who got it, and a
  warning flash naming each refused recipient with the server's words;
- the form has errors, or the message cannot be built or is too large: 400, the form again;
- the mail server failed (connection, login, every recipient refused): 502, the form again
  with the server's words and the protocol log.

Whenever the form comes back, everything typed is in it and the uploaded files are listed
as kept attachments (checkboxes named `keep_attachment`), so nothing has to be chosen again.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime

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
from flask_babel import ngettext
from werkzeug.datastructures import FileStorage

from app.config import Settings
from app.mail.smtp import SendResult
from app.messages import (
    Address,
    AddressError,
    Attachment,
    AttachmentInfo,
    ComposeError,
    Draft,
    OutgoingMessage,
    ParsedMessage,
    build_message,
    forward_draft,
    get_part,
    parse_address_list,
    parse_message,
    reply_draft,
)
from app.messages.addresses import FORBIDDEN_IN_HEADERS
from app.store import Mailbox, MessageSummary
from app.web.accounts import Account, current_account, login_required, password
from app.web.compose_forms import (
    FORWARD_ATTACHMENT,
    FORWARD_INLINE,
    MAX_ID_CHARS,
    ComposeForm,
)
from app.web.compose_stash import AttachmentStash, KeptFile, purge_expired
from app.web.extensions import get_store
from app.web.mailops import MailOperationFailed, send
from app.web.templating import filesize
from app.web.texts import say

bp = Blueprint("compose", __name__)

STASH_DIR = "drafts"
PURGE_EVERY = 15 * 60  # seconds between sweeps of expired kept attachments, per process


class ComposeProblem(Exception):
    """Something stops this send; the message is for the user, the form comes back."""


@dataclass
class Original:
    """The stored message a reply or forward refers to."""

    id: str
    summary: MessageSummary
    parsed: ParsedMessage

    @property
    def raw(self) -> bytes:
        return self.parsed.raw


@dataclass
class Outcome:
    """What the re-rendered form shows besides the fields."""

    error: str | None = None
    log: list[str] = field(default_factory=list)
    refused: list[tuple[str, str]] = field(default_factory=list)


# -- the view ---------------------------------------------------------------------------


@bp.route("/compose", methods=["GET", "POST"])
@login_required
def compose() -> Response | str | tuple[str, int]:
    account = current_account()
    assert account is not None
    mailbox = get_store().mailbox(account.key)
    form = ComposeForm()
    if request.method == "GET":
        original = _prefill(form, account, mailbox)
        return _page(form, [], Outcome(), original)
    return _submit(form, account, mailbox)


def _submit(
    form: ComposeForm, account: Account, mailbox: Mailbox
) -> Response | tuple[str, int]:
    """Keep the files, check the form, build, send; the form again on any failure."""
    stash = _stash(account)
    files, trouble = _files_for(form, stash)
    outcome = Outcome(error=trouble)
    original = _posted_original(form, mailbox)
    if not form.validate_on_submit() or outcome.error:
        return _page(form, files, outcome, original), 400
    if original is None and _original_lost(form):
        outcome.error = _(
            "The message you were answering or forwarding is no longer stored, so this one "
            "cannot refer to it. Check the text and send again to send it as it is."
        )
        return _page(form, files, outcome, None), 400

    settings: Settings = current_app.config["SETTINGS"]
    try:
        outgoing = _prepare(form, account, stash, files, original, settings)
    except ComposeProblem as problem:
        outcome.error = str(problem)
        return _page(form, files, outcome, original), 400
    started = datetime.now(UTC)
    try:
        result, log = send(account, password(), settings, outgoing)
    except MailOperationFailed as failure:
        get_store().save_log(account.key, "send", failure.log, ok=False, started_at=started)
        outcome.error, outcome.log = failure.message, failure.log
        if failure.refused:
            outcome.refused = _refusals(failure.refused, _shown_names(form))
        return _page(form, files, outcome, original), 502
    get_store().save_log(account.key, "send", log, ok=True, started_at=started)
    stash.discard(k.token for k in files)
    _report(result, _shown_names(form))
    return redirect(url_for("inbox.inbox"), 303)


def _page(
    form: ComposeForm, files: Sequence[KeptFile], outcome: Outcome, original: Original | None
) -> str:
    settings: Settings = current_app.config["SETTINGS"]
    account = current_account()
    assert account is not None
    forwarding = bool(form.forward_id.data) and original is not None
    return render_template(
        "compose.html",
        form=form,
        kept=files,
        error=outcome.error,
        log=outcome.log,
        refused=outcome.refused,
        original=original,
        replying=bool(form.reply_to_id.data) and original is not None,
        forwarding=forwarding,
        original_files=_original_files(original) if forwarding else [],
        sender=account.email,
        max_bytes=settings.max_message_bytes,
    )


# -- prefilling: reply, reply all, forward ----------------------------------------------


def _prefill(form: ComposeForm, account: Account, mailbox: Mailbox) -> Original | None:
    """Fill the form from `?reply=` or `?forward=`; 404 for an id not in this mailbox."""
    reply_id = request.args.get("reply")
    forward_id = request.args.get("forward")
    if reply_id:
        original = _original(mailbox, reply_id)
        if original is None:
            abort(404)
        draft = reply_draft(
            original.parsed,
            reply_all=request.args.get("all") in ("1", "true", "yes"),
            self_addresses={account.email},
            say=say,
        )
        form.to.data = _listed(draft.to)
        form.cc.data = _listed(draft.cc)
        form.reply_to_id.data = original.id
    elif forward_id:
        original = _original(mailbox, forward_id)
        if original is None:
            abort(404)
        mode = request.args.get("mode", FORWARD_INLINE)
        mode = mode if mode in (FORWARD_INLINE, FORWARD_ATTACHMENT) else FORWARD_INLINE
        draft = forward_draft(original.parsed, inline=mode == FORWARD_INLINE, say=say)
        form.forward_id.data = original.id
        form.forward_mode.data = mode
    else:
        return None
    form.subject.data = _header_text(draft.subject)
    form.body.data = draft.body
    return original


def _original(mailbox: Mailbox, message_id: str) -> Original | None:
    """A message of this account's mailbox, or None (unknown, or someone else's)."""
    if not message_id or len(message_id) > MAX_ID_CHARS:
        return None
    summary = mailbox.get(message_id)
    raw = mailbox.raw(message_id) if summary is not None else None
    if summary is None or raw is None:
        return None
    return Original(message_id, summary, parse_message(raw))


def _posted_original(form: ComposeForm, mailbox: Mailbox) -> Original | None:
    """The message the posted form answers or forwards, looked up again in this mailbox."""
    message_id = form.reply_to_id.data or form.forward_id.data
    return _original(mailbox, message_id) if message_id else None


def _original_lost(form: ComposeForm) -> bool:
    """The form refers to a message that is not (or no longer) stored: drop the reference,
    so sending again sends the message as typed."""
    if not (form.reply_to_id.data or form.forward_id.data):
        return False
    form.reply_to_id.data = form.forward_id.data = ""
    return True


def _original_files(original: Original | None) -> list[AttachmentInfo]:
    return list(original.parsed.attachments) if original is not None else []


def _listed(addresses: Sequence[Address]) -> str:
    return ", ".join(address.formatted() for address in addresses)


def _header_text(text: str) -> str:
    """An original's subject as a starting point: control characters become spaces."""
    return "".join(" " if c in FORBIDDEN_IN_HEADERS else c for c in text)


# -- attachments: kept between tries ------------------------------------------------------


def _stash(account: Account) -> AttachmentStash:
    root = get_store().data_dir / STASH_DIR
    sweeps = current_app.extensions.setdefault("pochta.compose_sweep", {"at": None})
    now = time.monotonic()
    if sweeps["at"] is None or now - sweeps["at"] >= PURGE_EVERY:
        sweeps["at"] = now
        purge_expired(root)
    return AttachmentStash(root, account.key.hex)


def _files_for(form: ComposeForm, stash: AttachmentStash) -> tuple[list[KeptFile], str | None]:
    """The files this send carries, and what stops sending them, if anything."""
    try:
        files = _attachments(form, stash)
    except OSError:
        files = stash.find(request.form.getlist("keep_attachment"))
        return files, _(
            "Pochta could not keep an attached file on the server, so nothing was sent. "
            "Attach it again, or try later."
        )
    # A ticked kept file that is gone (sent by a double click, expired, not this account's):
    # sending without it would quietly drop an attachment.
    missing = len(set(request.form.getlist("keep_attachment")) - {k.token for k in files})
    if missing:
        return files, ngettext(
            "%(num)s of the files kept for this message is no longer on the server (it was "
            "sent already, or kept too long), so nothing was sent. Attach it again if needed.",
            "%(num)s of the files kept for this message are no longer on the server (they "
            "were sent already, or kept too long), so nothing was sent. Attach them again if "
            "needed.",
            missing,
        )
    return files, None


def _attachments(form: ComposeForm, stash: AttachmentStash) -> list[KeptFile]:
    """The files this send carries: those kept from before that are still ticked, then
    this request's uploads, each written to the stash before anything else can fail."""
    kept = stash.find(request.form.getlist("keep_attachment"))
    ticked = {k.token for k in kept}
    stash.discard(t for t in request.form.getlist("offered_attachment") if t not in ticked)
    for upload in form.attachments.data or []:
        if not isinstance(upload, FileStorage) or not upload.filename:
            continue  # an empty file input still sends a nameless part
        try:
            kept.append(stash.keep(upload.stream, upload.filename, upload.mimetype))
        finally:
            upload.close()
    settings: Settings = current_app.config["SETTINGS"]
    stash.limit(2 * settings.max_upload_bytes, spare=[k.token for k in kept])
    return kept


# -- building ---------------------------------------------------------------------------


def _prepare(
    form: ComposeForm,
    account: Account,
    stash: AttachmentStash,
    files: Sequence[KeptFile],
    original: Original | None,
    settings: Settings,
) -> OutgoingMessage:
    """The message ready for SMTP, or ComposeProblem saying what to change."""
    limit = settings.max_message_bytes
    uploaded = sum(k.size for k in files)
    if uploaded > limit:
        raise ComposeProblem(_too_large(uploaded, limit))
    outgoing = _build(form, account, stash, files, original)
    if outgoing.size > limit:
        raise ComposeProblem(_too_large(outgoing.size, limit))
    return outgoing


def _build(
    form: ComposeForm,
    account: Account,
    stash: AttachmentStash,
    files: Sequence[KeptFile],
    original: Original | None,
) -> OutgoingMessage:
    """Build the message. The attachments stay in their kept files: their bytes are read,
    and encoded, only while the message is written out to the server."""
    try:
        sender = parse_address_list(account.email)[0]
    except (AddressError, IndexError):
        raise ComposeProblem(
            _("Your own address, %(address)s, cannot be used as a sender.",
              address=account.email)
        ) from None
    to, cc, bcc = form.recipients()
    draft = Draft(to=to, cc=cc, bcc=bcc, subject=form.subject.data or "",
                  body=_body_text(form.body.data or ""))
    attachments = []
    for kept in files:
        try:
            attachments.append(Attachment(kept.filename, stash.path(kept), kept.content_type))
        except FileNotFoundError:
            raise ComposeProblem(
                _("The attachment %(name)s is no longer kept on the server. Attach it again.",
                  name=kept.filename)
            ) from None
    if original is not None and form.reply_to_id.data:
        draft = _threaded(draft, original, account)
    elif original is not None and form.forward_id.data:
        draft = _forwarding(draft, original, form.forward_mode.data)
        if form.forward_mode.data != FORWARD_ATTACHMENT and form.forward_attachments.data:
            attachments += _original_attachments(original)
    try:
        return build_message(draft, sender=sender, attachments=attachments)
    except ComposeError as exc:
        raise ComposeProblem(say(exc.sentence)) from None


def _body_text(text: str) -> str:
    """Browsers send a textarea with CRLF line ends; the message builder wants LF."""
    return text.replace("\r\n", "\n").replace("\r", "\n")


def _threaded(draft: Draft, original: Original, account: Account) -> Draft:
    """In-Reply-To and References taken from the original as it is stored."""
    reply = reply_draft(original.parsed, reply_all=False, self_addresses={account.email})
    return Draft(
        to=draft.to, cc=draft.cc, bcc=draft.bcc, subject=draft.subject, body=draft.body,
        in_reply_to=reply.in_reply_to, references=reply.references,
    )


def _forwarding(draft: Draft, original: Original, mode: str | None) -> Draft:
    """The original attached as message/rfc822, or quoted below the text (unless the text
    still holds the quote the form was prefilled with)."""
    if mode == FORWARD_ATTACHMENT:
        return Draft(to=draft.to, cc=draft.cc, bcc=draft.bcc, subject=draft.subject,
                     body=draft.body, forwarded=original.raw)
    quoted = forward_draft(original.parsed, inline=True, say=say).body
    marker = quoted.strip().splitlines()[0]
    body = draft.body if marker in draft.body else draft.body.rstrip("\n") + quoted
    return Draft(to=draft.to, cc=draft.cc, bcc=draft.bcc, subject=draft.subject, body=body)


def _original_attachments(original: Original) -> list[Attachment]:
    files = []
    for info in original.parsed.attachments:
        try:
            part = get_part(original.raw, info.index)
        except (KeyError, ValueError):
            continue
        files.append(Attachment(part.filename, part.data, part.content_type))
    return files


def _too_large(size: int, limit: int) -> str:
    return _(
        "The message would be %(size)s, and the limit is %(limit)s. Remove an attachment "
        "or choose smaller files.", size=filesize(size), limit=filesize(limit),
    )


# -- reporting the result ---------------------------------------------------------------


def _shown_names(form: ComposeForm) -> dict[str, str]:
    """Each recipient's envelope address mapped to how the user wrote it (IDN as Unicode)."""
    names = {}
    for addresses in form.recipients():
        for address in addresses:
            names.setdefault(address.wire, address.addr_spec)
    return names


def _refusals(refused: dict, names: dict[str, str]) -> list[tuple[str, str]]:
    return [(names.get(address, address), reply.summary() if reply is not None else "")
            for address, reply in refused.items()]


def _report(result: SendResult, names: dict[str, str]) -> None:
    accepted = [names.get(address, address) for address in result.accepted]
    flash(_("Message sent to %(recipients)s.", recipients=", ".join(accepted)), "success")
    if result.refused:
        refused = "; ".join(
            f"{address} ({words})" if words else address
            for address, words in _refusals(result.refused, names)
        )
        flash(
            _("Not everyone got it. The server refused: %(recipients)s.", recipients=refused),
            "warning",
        )
