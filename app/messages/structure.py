"""The MIME tree of a stored message, walked once in a fixed order with bounded work.

`parse_message`, `get_part` and `index_fields` all see a message through `load` and
`walk_parts`, so part number n means the same part everywhere. Parts are numbered in
depth-first order, containers included (the message itself is 0). Nesting deeper than
MAX_DEPTH is reported as one opaque part and not opened; walking stops after MAX_PARTS.
A message the parser cannot take apart at all (deep enough to exhaust the parser's own
recursion) is re-read with its body as one text part.
"""

from __future__ import annotations

import email.policy
import functools
import mimetypes
from collections.abc import Callable
from dataclasses import dataclass
from email.message import Message
from email.parser import BytesParser
from typing import TypeVar

from app.messages.charsets import decode_bytes
from app.messages.headers import decode_text, first_message_id, unfold
from app.sentences import N_, Sentence

T = TypeVar("T")

MAX_DEPTH = 50
MAX_PARTS = 1000


class RawHeaders(email.policy.Compat32):
    """compat32, except that header values come back exactly as read: raw 8-bit text stays
    a (surrogate-escaped) str for `charsets.repair_8bit`, instead of a Header object whose
    str() has already replaced it with question marks."""

    def header_fetch_parse(self, name: str, value: str) -> str:
        return value


POLICY = RawHeaders()
_PARSER = BytesParser(policy=POLICY)


@dataclass(frozen=True)
class PartNode:
    """One part of the tree as walked: its number, depth and whether it is opaque."""

    index: int
    part: Message
    depth: int
    opaque: bool = False  # a container too deep to open


@dataclass(frozen=True)
class Loaded:
    """A parsed message, its parts in walk order, and notes for the reader on what was not
    shown."""

    message: Message
    nodes: list[PartNode]
    notes: list[str]


def _load_single_part(raw: bytes) -> Message | None:
    """Most mail is one text part. For it, the parser reads the header section alone and the
    body becomes the payload as it is (exactly what the full parser would make of it, without
    iterating over every body line). None when the message is anything else, or its header
    section is not clean enough to be sure."""
    ends = [i + len(sep) for sep in (b"\r\n\r\n", b"\n\n") if (i := raw.find(sep)) >= 0]
    if not ends:
        return None
    end = min(ends)
    message = _PARSER.parsebytes(raw[:end], headersonly=True)
    if message.get_payload() or message.defects:
        return None
    if message.get_content_maintype() in ("multipart", "message"):
        return None
    message.set_payload(raw[end:].decode("ascii", "surrogateescape"))
    return message


def load(raw: bytes) -> Loaded:
    """Parse `raw` (never raises) and walk its parts."""
    notes: list[str] = []
    try:
        message = _load_single_part(raw) or _PARSER.parsebytes(raw)
    except Exception:  # RecursionError from deep nesting, or anything else the parser trips on
        return _as_one_part(raw)
    nodes, truncated = walk_parts(message)
    if any(node.opaque for node in nodes):
        notes.append(Sentence(N_("Parts nested deeper than %(depth)s levels are not opened."),
                              depth=MAX_DEPTH))
    if truncated:
        notes.append(Sentence(N_("Only the first %(count)s parts are listed."), count=MAX_PARTS))
    return Loaded(message, nodes, notes)


def _as_one_part(raw: bytes) -> Loaded:
    try:
        message = _PARSER.parsebytes(raw, headersonly=True)
    except Exception:  # not even the headers: the whole thing is the body
        message = Message(policy=POLICY)
        message.set_payload(raw.decode("ascii", "surrogateescape"))
    notes: list[str] = [Sentence(N_(
        "The message structure could not be taken apart; its body is shown as raw text."))]
    return Loaded(message, [PartNode(0, message, 0)], notes)


def walk_parts(message: Message) -> tuple[list[PartNode], bool]:
    """Every part in depth-first order, bounded; True as second value when cut short."""
    nodes: list[PartNode] = []
    stack: list[tuple[Message, int]] = [(message, 0)]
    while stack:
        if len(nodes) >= MAX_PARTS:
            return nodes, True
        part, depth = stack.pop()
        container = is_container(part)
        opaque = container and depth >= MAX_DEPTH
        nodes.append(PartNode(len(nodes), part, depth, opaque))
        if container and not opaque:
            children = part.get_payload()
            stack.extend((child, depth + 1) for child in reversed(children)
                         if isinstance(child, Message))
    return nodes, False


def _per_part(function: Callable[[Message], T]) -> Callable[[Message], T]:
    """Work a property of a part out once: the library parses the header again on every
    call, and indexing asks each part several things (type, charset, name) more than once.
    The answer is kept on the part itself, which nothing changes after parsing."""
    key = f"_pochta_{function.__name__}"

    @functools.wraps(function)
    def once(part: Message) -> T:
        answers = part.__dict__
        if key not in answers:
            answers[key] = function(part)
        return answers[key]  # type: ignore[no-any-return]

    return once


@_per_part
def is_container(part: Message) -> bool:
    """A multipart with parsed subparts (a message/rfc822 is a leaf: an attachment)."""
    return part.get_content_maintype() == "multipart" and isinstance(part.get_payload(), list)


@_per_part
def content_type(part: Message) -> str:
    """The MIME type; a multipart whose boundary never parsed is read as plain text."""
    ctype = part.get_content_type()
    if ctype.startswith("multipart/") and not is_container(part):
        return "text/plain"
    return ctype


@_per_part
def disposition(part: Message) -> str | None:
    try:
        return part.get_content_disposition()
    except Exception:  # a mangled header: treat as unspecified
        return None


@_per_part
def charset(part: Message) -> str | None:
    try:
        return part.get_content_charset()
    except Exception:  # a mangled header: let the fallbacks decide
        return None


@_per_part
def filename(part: Message) -> str | None:
    """The decoded file name (RFC 2231 or RFC 2047), without any directory, or None."""
    if not _may_have_filename(part):
        return None
    try:
        raw = part.get_filename()
    except Exception:  # a mangled parameter list
        return None
    if not raw:
        return None
    name = decode_text(raw, hint=charset(part))
    name = name.replace("\\", "/").rsplit("/", 1)[-1].strip()
    return name or None


def _may_have_filename(part: Message) -> bool:
    """Whether `get_filename` can find anything: it reads the `filename` parameter of
    Content-Disposition, else the `name` of Content-Type, and both spell "name" (also in
    RFC 2231's `filename*0*`). Most text parts have neither, and asking the library parses
    both parameter lists, a noticeable part of indexing each fetched message."""
    for header in ("content-disposition", "content-type"):
        value = part.get(header)
        if value is not None and "name" in str(value).lower():
            return True
    return False


@_per_part
def content_id(part: Message) -> str | None:
    """The Content-ID without angle brackets, or None."""
    value = part.get("Content-ID")
    if value is None:
        return None
    cid = first_message_id(value)
    return unfold(cid.strip("<>")) if cid else None


def is_inline(part: Message) -> bool:
    """A resource the HTML body shows by Content-ID (an embedded image), rather than a file
    attached for the reader."""
    return content_id(part) is not None and disposition(part) != "attachment"


def is_body_candidate(part: Message) -> bool:
    """A text part meant to be read as the message, not saved as a file."""
    return (content_type(part) in ("text/plain", "text/html")
            and disposition(part) != "attachment"
            and filename(part) is None)


def part_bytes(node: PartNode) -> bytes:
    """The decoded content of a part (a message/rfc822 or opaque part as its own bytes)."""
    part = node.part
    try:
        if node.opaque or part.is_multipart():
            inner = part if node.opaque else part.get_payload(0)
            return inner.as_bytes(policy=email.policy.compat32)
        data = part.get_payload(decode=True)
    except Exception:  # broken encodings or an unprintable inner message
        data = None
    if isinstance(data, bytes):
        return data
    payload = part.get_payload()
    return payload.encode("utf-8", "surrogateescape") if isinstance(payload, str) else b""


def part_text(node: PartNode, *, limit: int | None = None) -> str:
    """A text part's content as str, in whatever charset it declares (bounded by `limit`
    bytes when given)."""
    data = part_bytes(node)
    truncated = limit is not None and len(data) > limit
    if truncated:
        data = data[:limit]
    return decode_bytes(data, charset(node.part), truncated=truncated)


def suggested_filename(part: Message, index: int) -> str:
    """The part's own name, or one made up from its number and type."""
    name = filename(part)
    if name:
        return name
    ctype = content_type(part)
    if ctype == "message/rfc822":
        subject = _inner_subject(part)
        if subject:
            return f"{subject[:80]}.eml"
        return f"part-{index}.eml"
    extension = mimetypes.guess_extension(ctype) or ".bin"
    return f"part-{index}{extension}"


def _inner_subject(part: Message) -> str:
    try:
        inner = part.get_payload(0)
    except Exception:  # an empty message/rfc822
        return ""
    subject = decode_text(inner.get("Subject")) if isinstance(inner, Message) else ""
    return subject.replace("/", "_").replace("\\", "_").strip()
