"""Reading a stored message for display: decoded headers, the bodies, the attachments.

The HTML body is returned as sent (unsanitized); `sanitize.sanitize_html` makes it safe to
show. Nothing here raises on malformed mail: a message that cannot be taken apart is shown
as its headers and its raw body.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from email.message import Message

from app.messages import structure
from app.messages.charsets import decode_bytes
from app.messages.headers import (
    Mailbox,
    decode_mailboxes,
    decode_text,
    first_message_id,
    message_ids,
    parse_date,
)
from app.messages.structure import PartNode
from app.sentences import N_, Sentence

MAX_LISTED_HEADERS = 500


@dataclass(frozen=True)
class AttachmentInfo:
    """A part offered for download; `index` is the n in /message/<id>/part/<n>."""

    index: int
    filename: str | None
    content_type: str
    size: int
    content_id: str | None = None
    is_inline: bool = False

    @property
    def display_name(self) -> str:
        return self.filename or f"part-{self.index}"


@dataclass(frozen=True)
class PartData:
    """One part's decoded content, for a download."""

    filename: str
    content_type: str
    data: bytes


@dataclass(frozen=True)
class ParsedMessage:
    """A stored message decoded for display (and for replying to or forwarding it)."""

    subject: str
    from_: list[Mailbox]
    to: list[Mailbox]
    cc: list[Mailbox]
    reply_to: list[Mailbox]
    date: dt.datetime | None
    date_text: str
    message_id: str | None
    in_reply_to: str | None
    references: list[str]
    text_body: str | None
    html_body: str | None
    attachments: list[AttachmentInfo]
    headers: list[tuple[str, str]] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    raw: bytes = field(default=b"", repr=False)

    def part_for_cid(self, cid: str) -> int | None:
        """The part number of the attachment with this Content-ID (for `cid:` images)."""
        wanted = cid.strip().strip("<>")
        for attachment in self.attachments:
            if attachment.content_id == wanted:
                return attachment.index
        return None


def parse_message(raw: bytes) -> ParsedMessage:
    """Decode `raw` for display. Never raises."""
    try:
        loaded = structure.load(raw)
        return _parsed(loaded, raw)
    except Exception:  # the last line of defence: show the bytes as text
        return _unparseable(raw)


def get_part(raw: bytes, n: int) -> PartData:
    """The decoded content of part `n`; KeyError when there is no such downloadable part."""
    loaded = structure.load(raw)
    if not 0 <= n < len(loaded.nodes):
        raise KeyError(n)
    node = loaded.nodes[n]
    if structure.is_container(node.part) and not node.opaque:
        raise KeyError(n)
    return PartData(
        filename=structure.suggested_filename(node.part, n),
        content_type=_node_type(node),
        data=structure.part_bytes(node),
    )


def _parsed(loaded: structure.Loaded, raw: bytes) -> ParsedMessage:
    message = loaded.message
    hint = structure.charset(message)
    texts: list[str] = []
    htmls: list[str] = []
    attachments: list[AttachmentInfo] = []
    for node in loaded.nodes:
        if structure.is_container(node.part) and not node.opaque:
            continue
        if not node.opaque and structure.is_body_candidate(node.part):
            body = structure.part_text(node).replace("\r\n", "\n")
            (htmls if structure.content_type(node.part) == "text/html" else texts).append(body)
        else:
            attachments.append(_attachment(node))
    return ParsedMessage(
        subject=decode_text(message.get("Subject"), hint=hint),
        from_=decode_mailboxes(message.get("From"), hint=hint),
        to=decode_mailboxes(message.get("To"), hint=hint),
        cc=decode_mailboxes(message.get("Cc"), hint=hint),
        reply_to=decode_mailboxes(message.get("Reply-To"), hint=hint),
        date=parse_date(message.get("Date")),
        date_text=decode_text(message.get("Date")),
        message_id=first_message_id(message.get("Message-ID")),
        in_reply_to=first_message_id(message.get("In-Reply-To")),
        references=message_ids(message.get("References")),
        text_body="\n\n".join(texts) if texts else None,
        html_body="\n".join(htmls) if htmls else None,
        attachments=attachments,
        headers=_headers(message, hint),
        notes=loaded.notes,
        raw=raw,
    )


def _attachment(node: PartNode) -> AttachmentInfo:
    part = node.part
    return AttachmentInfo(
        index=node.index,
        filename=structure.filename(part),
        content_type=_node_type(node),
        size=len(structure.part_bytes(node)),
        content_id=structure.content_id(part),
        is_inline=structure.is_inline(part),
    )


def _node_type(node: PartNode) -> str:
    return "application/octet-stream" if node.opaque else structure.content_type(node.part)


def _headers(message: Message, hint: str | None) -> list[tuple[str, str]]:
    return [(decode_text(name), decode_text(value, hint=hint))
            for name, value in message.items()[:MAX_LISTED_HEADERS]]


def _unparseable(raw: bytes) -> ParsedMessage:
    return ParsedMessage(
        subject="", from_=[], to=[], cc=[], reply_to=[], date=None, date_text="",
        message_id=None, in_reply_to=None, references=[],
        text_body=decode_bytes(raw, None), html_body=None, attachments=[],
        notes=[Sentence(N_("The message could not be read; it is shown as raw text."))],
        raw=raw,
    )
