"""Building outgoing mail with `email.message.EmailMessage`, ready for an SMTP DATA command.

Everything MIME is the library's: RFC 2047 for non-ASCII subjects and names, RFC 2231 for
file names, quoted-printable or base64 bodies (the policy is 7-bit clean, so no body line can
exceed 998 octets and no server needs 8BITMIME), CRLF line endings. Pochta adds the checks:
text that would end up in a header may not contain line breaks or other control characters,
Bcc is used for the envelope only, and the finished bytes are verified before they leave.

Attachments do not go through the library's encoder, which holds several line-by-line copies
of a file while it encodes and writes it (five times a 20 MB file at peak). The library lays
out each attachment's part, with all its headers, around a small random stand-in body; the
file's own base64 takes the stand-in's place, encoded chunk by chunk, only when the message
is written out (`OutgoingMessage.write_to`), so a big file is never in memory whole.
"""

from __future__ import annotations

import base64
import email.policy
import email.utils
import io
import mimetypes
import re
import secrets
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from email.headerregistry import Address as HeaderAddress
from email.message import EmailMessage
from email.parser import BytesParser
from pathlib import Path
from typing import BinaryIO

from app.messages.addresses import FORBIDDEN_IN_HEADERS, Address
from app.sentences import N_, Sentence

MAX_LINE_OCTETS = 998
MAX_REFERENCES = 20

_POLICY = email.policy.SMTP.clone(cte_type="7bit", refold_source="none")
_POLICY_UTF8 = _POLICY.clone(utf8=True)
_MSGID = re.compile(r"<[!-;=?-~]+@[!-;=?-~]+>")
_TOKEN = re.compile(r"[!#$%&'*+.^_`|~0-9A-Za-z-]+")
_LONG_LINE = re.compile(rb"[^\r\n]{%d}" % (MAX_LINE_OCTETS + 1))
_STAND_IN_BYTES = 48  # encodes to one 64-character base64 line, unique by chance alone
_BASE64_CHUNK = 57 * 1024  # whole base64 lines of 76 characters (57 bytes each)


class ComposeError(ValueError):
    """The draft cannot be sent as it is; the message says what to change.

    `sentence` is the message with its template, for the web layer to translate.
    """

    def __init__(self, template: str, **params: object) -> None:
        self.sentence = Sentence(template, **params)
        super().__init__(self.sentence)


@dataclass(frozen=True)
class Attachment:
    """A file to send: its bytes, or the path of a file holding them (read only while the
    message is written out). `content_type` ("type/subtype") is guessed from the name when
    None."""

    filename: str
    data: bytes | Path = field(repr=False)
    content_type: str | None = None

    @property
    def size(self) -> int:
        return self.data.stat().st_size if isinstance(self.data, Path) else len(self.data)

    def open(self) -> BinaryIO:
        return self.data.open("rb") if isinstance(self.data, Path) else io.BytesIO(self.data)


@dataclass(frozen=True)
class Draft:
    """What the user wrote: recipients, subject, body, and how it relates to other mail."""

    to: list[Address] = field(default_factory=list)
    cc: list[Address] = field(default_factory=list)
    bcc: list[Address] = field(default_factory=list)
    subject: str = ""
    body: str = ""
    in_reply_to: str | None = None
    references: list[str] = field(default_factory=list)
    forwarded: bytes | None = field(default=None, repr=False)  # attached as message/rfc822


@dataclass(frozen=True)
class _Slot:
    """Where an attachment's base64 goes: the library encodes the random `token` as the
    part's body, one line (`stand_in`), which the file's own base64 replaces."""

    token: bytes
    attachment: Attachment

    @property
    def stand_in(self) -> bytes:
        return base64.b64encode(self.token) + b"\r\n"

    @property
    def encoded_size(self) -> int:
        size = self.attachment.size
        lines = -(-size // 57)
        return 4 * -(-size // 3) + 2 * lines

    def encoded(self) -> Iterator[bytes]:
        with self.attachment.open() as source:
            while chunk := source.read(_BASE64_CHUNK):
                yield base64.encodebytes(chunk).replace(b"\n", b"\r\n")


@dataclass(frozen=True)
class OutgoingMessage:
    """A message ready for SMTP: envelope and data (CRLF line endings, unstuffed).

    The data is the library's serialization (`skeleton`) with each attachment's base64 put
    in place of its stand-in as it is written out: `chunks()`, `write_to()`, or `data` for
    all of it in memory at once (small messages, tests).
    """

    envelope_from: str
    envelope_recipients: list[str]
    skeleton: bytes = field(repr=False)
    needs_smtputf8: bool
    message_id: str
    slots: tuple[_Slot, ...] = field(default=(), repr=False)

    @property
    def size(self) -> int:
        stand_ins = sum(len(slot.stand_in) for slot in self.slots)
        return len(self.skeleton) - stand_ins + sum(slot.encoded_size for slot in self.slots)

    def chunks(self) -> Iterator[bytes]:
        position = 0
        for slot in self.slots:
            start = self.skeleton.index(slot.stand_in, position)
            yield self.skeleton[position:start]
            yield from slot.encoded()
            position = start + len(slot.stand_in)
        yield self.skeleton[position:]

    def write_to(self, target: BinaryIO) -> None:
        for chunk in self.chunks():
            target.write(chunk)

    @property
    def data(self) -> bytes:
        return b"".join(self.chunks())


def build_message(
    draft: Draft,
    *,
    sender: Address,
    attachments: Sequence[Attachment] = (),
    hostname_for_message_id: str = "",
) -> OutgoingMessage:
    """Build the message; ComposeError when something in the draft cannot be sent."""
    recipients = [*draft.to, *draft.cc, *draft.bcc]
    if not recipients:
        raise ComposeError(N_("Add at least one recipient."))
    for address in (sender, *recipients):
        _check_header_text(address.display_name, N_(
            "A name in the address fields may not contain line breaks or control characters."))
    _check_header_text(draft.subject, N_(
        "The subject may not contain line breaks or control characters."))
    utf8 = any(address.needs_smtputf8 for address in (sender, *recipients))
    message_id = email.utils.make_msgid(domain=_msgid_domain(hostname_for_message_id, sender))
    slots = tuple(
        _Slot(secrets.token_bytes(_STAND_IN_BYTES), attachment) for attachment in attachments
    )
    try:
        data = _build(draft, sender, slots, message_id, utf8, rfc822=True)
    except ComposeError:
        raise
    except Exception as error:  # most likely a forwarded original that cannot be re-encoded
        if draft.forwarded is None:
            raise ComposeError(N_("The message could not be built: %(reason)s"),
                               reason=error) from error
        try:
            data = _build(draft, sender, slots, message_id, utf8, rfc822=False)
        except Exception as second:
            raise ComposeError(N_("The message could not be built: %(reason)s"),
                               reason=second) from second
    return OutgoingMessage(
        envelope_from=sender.wire,
        envelope_recipients=_unique([address.wire for address in recipients]),
        skeleton=data,
        needs_smtputf8=utf8,
        message_id=message_id,
        slots=slots,
    )


def _build(draft: Draft, sender: Address, slots: Sequence[_Slot],
           message_id: str, utf8: bool, *, rfc822: bool) -> bytes:
    """The skeleton: the library's whole message, with stand-ins for attachment bodies."""
    message = _compose(draft, sender, slots, message_id, utf8, rfc822=rfc822)
    data = _serialize(message, utf8)
    for slot in slots:
        if data.count(slot.stand_in) != 1:
            raise ValueError("an attachment's place in the message is not unique")
    return data


def _compose(draft: Draft, sender: Address, slots: Sequence[_Slot],
             message_id: str, utf8: bool, *, rfc822: bool) -> EmailMessage:
    message = EmailMessage(policy=_POLICY_UTF8 if utf8 else _POLICY)
    message["From"] = _header_address(sender, utf8)
    message["To"] = [_header_address(a, utf8) for a in draft.to] or "undisclosed-recipients:;"
    if draft.cc:
        message["Cc"] = [_header_address(a, utf8) for a in draft.cc]
    message["Subject"] = draft.subject
    message["Date"] = email.utils.localtime()
    message["Message-ID"] = message_id
    _set_threading(message, draft)
    message.set_content(draft.body.replace("\x00", ""))
    for slot in slots:
        _attach(message, slot)
    if draft.forwarded is not None:
        _attach_original(message, draft.forwarded, rfc822=rfc822)
    if message.is_multipart():
        message.set_boundary(f"=_pochta_{secrets.token_hex(16)}")
    return message


def _serialize(message: EmailMessage, utf8: bool) -> bytes:
    data = message.as_bytes()
    if _LONG_LINE.search(data):
        raise ValueError(f"a line is longer than {MAX_LINE_OCTETS} octets")
    if not utf8 and not data.isascii():
        raise ValueError("8-bit data in a 7-bit message")
    return data


def _header_address(address: Address, utf8: bool) -> HeaderAddress:
    domain = address.domain if utf8 else address.wire.rsplit("@", 1)[1]
    try:
        return HeaderAddress(address.display_name, address.local_part, domain)
    except ValueError as error:
        raise ComposeError(N_("“%(address)s” cannot be used: %(reason)s"),
                           address=address.formatted(), reason=error) from None


def _set_threading(message: EmailMessage, draft: Draft) -> None:
    if draft.in_reply_to and _MSGID.fullmatch(draft.in_reply_to):
        message["In-Reply-To"] = draft.in_reply_to
    references = [r for r in draft.references if _MSGID.fullmatch(r)]
    if len(references) > MAX_REFERENCES:
        references = references[:1] + references[-(MAX_REFERENCES - 1):]
    if references:
        message["References"] = " ".join(references)


def _attach(message: EmailMessage, slot: _Slot) -> None:
    """The attachment's part as the library makes it (headers, base64), around the slot's
    stand-in bytes."""
    name = _clean_filename(slot.attachment.filename)
    maintype, subtype = _content_type(slot.attachment.content_type, name)
    message.add_attachment(slot.token, maintype=maintype, subtype=subtype, filename=name)


def _attach_original(message: EmailMessage, raw: bytes, *, rfc822: bool) -> None:
    if not rfc822:
        message.add_attachment(raw, maintype="application", subtype="octet-stream",
                               filename="forwarded-message.eml")
        return
    original = BytesParser(policy=message.policy).parsebytes(raw)
    seven_bit = raw.isascii() and not _LONG_LINE.search(raw)
    message.add_attachment(original, cte="7bit" if seven_bit else "8bit",
                           filename="forwarded-message.eml")


def _clean_filename(filename: str) -> str:
    _check_header_text(filename, N_(
        "An attachment's file name may not contain line breaks or control characters."))
    name = filename.replace("\\", "/").rsplit("/", 1)[-1].strip()
    return name or "attachment"


def _content_type(declared: str | None, filename: str) -> tuple[str, str]:
    if declared is not None:
        maintype, _, subtype = declared.strip().partition("/")
        if not (_TOKEN.fullmatch(maintype) and _TOKEN.fullmatch(subtype)):
            raise ComposeError(N_("“%(type)s” is not a valid content type."), type=declared)
    else:
        guessed = mimetypes.guess_type(filename, strict=False)[0] or "application/octet-stream"
        maintype, _, subtype = guessed.partition("/")
    if maintype.lower() in ("multipart", "message"):
        return "application", "octet-stream"
    return maintype.lower(), subtype.lower()


def _check_header_text(text: str, problem: str) -> None:
    if any(char in FORBIDDEN_IN_HEADERS for char in text):
        raise ComposeError(problem)


def _msgid_domain(hostname: str, sender: Address) -> str:
    candidate = hostname.strip() or sender.wire.rsplit("@", 1)[1]
    try:
        domain = candidate.encode("idna").decode("ascii")
    except UnicodeError:
        return "localhost"
    return domain if _TOKEN.fullmatch(domain.replace(".", "")) else "localhost"


def _unique(addresses: list[str]) -> list[str]:
    seen: set[str] = set()
    unique = []
    for address in addresses:
        local, _, domain = address.rpartition("@")
        key = f"{local}@{domain.lower()}"
        if key not in seen:
            seen.add(key)
            unique.append(address)
    return unique
