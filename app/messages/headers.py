"""Decoding header values from stored mail into display text, mailboxes, dates and ids.

Values come from the `compat32` parser as raw strings (fast, and it never interprets them).
Encoded-words (RFC 2047) are decoded by `email.header.decode_header`, or by the `default`
policy's header parser when that one refuses; raw 8-bit text is repaired in `charsets`.
Nothing here raises on hostile input: the worst case is the raw text, unfolded.
"""

from __future__ import annotations

import datetime as dt
import email.header
import email.policy
import email.utils
import functools
import re
from dataclasses import dataclass

from app.messages.charsets import decode_bytes, repair_8bit

MAX_HEADER_CHARS = 16 * 1024
MAX_MAILBOXES = 500

_MSGID = re.compile(r"<[^<>\s]+>")
# Control characters (C0, DEL, C1) are dropped from display text; tabs and Unicode line
# separators become spaces, so decoded text can never carry a line break onwards.
_CONTROLS: dict[int, str | None] = dict.fromkeys([*range(32), *range(127, 160)])
_CONTROLS.update({9: " ", 0x2028: " ", 0x2029: " "})


@dataclass(frozen=True)
class Mailbox:
    """One decoded mailbox from a received header: what the sender wrote, for display."""

    name: str
    address: str

    @property
    def display(self) -> str:
        if self.name and self.address:
            return f"{self.name} <{self.address}>"
        return self.name or self.address


def unfold(value: str) -> str:
    """Header text on one line, without control characters (tabs become spaces)."""
    return value.translate(_CONTROLS)


def decode_text(value: object, *, hint: str | None = None) -> str:
    """An unstructured header value (Subject, a display name) as display text."""
    if value is None:
        return ""
    text = repair_8bit(str(value)[:MAX_HEADER_CHARS], hint)
    text = text.replace("\r\n", "").replace("\n", "").replace("\r", "")
    if "=?" not in text:
        return unfold(text)
    return unfold(_decode_encoded_words(text))


def _decode_encoded_words(text: str) -> str:
    if text.isascii():
        try:
            chunks = email.header.decode_header(text)
        except Exception:  # malformed encoded-words: the lenient parser below copes
            chunks = None
        if chunks is not None:
            return "".join(_chunk_text(chunk, charset) for chunk, charset in chunks)
    try:
        return str(email.policy.default.header_factory("x-pochta-text", text))
    except Exception:  # the header parser has known crashes on hostile input
        return text


def _chunk_text(chunk: bytes | str, charset: str | None) -> str:
    if isinstance(chunk, str):
        return chunk
    if charset is None:
        return chunk.decode("ascii", "replace")
    return decode_bytes(chunk, charset)


def decode_mailboxes(value: object, *, hint: str | None = None) -> list[Mailbox]:
    """An address header (From, To, Cc, Reply-To) as decoded mailboxes; garbage is dropped."""
    if value is None:
        return []
    return list(_mailboxes(str(value)[:MAX_HEADER_CHARS], hint))


# Address parsing is the slowest part of indexing a message, and a mailbox sees the same
# senders and recipients over and over: the decoded result is kept for each header value.
@functools.lru_cache(maxsize=4096)
def _mailboxes(value: str, hint: str | None) -> tuple[Mailbox, ...]:
    text = repair_8bit(value, hint)
    text = text.replace("\r\n", " ").replace("\n", " ").replace("\r", " ")
    try:
        pairs = email.utils.getaddresses([text])
    except Exception:  # never let one bad header hide the message
        return (Mailbox(decode_text(text), ""),)
    mailboxes = []
    for name, address in pairs[:MAX_MAILBOXES]:
        mailbox = Mailbox(decode_text(name), unfold(address).strip())
        if mailbox.name or mailbox.address:
            mailboxes.append(mailbox)
    return tuple(mailboxes)


def parse_date(value: object) -> dt.datetime | None:
    """A Date (or Received) timestamp as an aware datetime; None for anything unreadable.
    A zone of -0000 ("unknown") is read as UTC."""
    if value is None:
        return None
    text = unfold(str(value)[:200]).strip()
    try:
        parsed = email.utils.parsedate_to_datetime(text)
    except (TypeError, ValueError, IndexError, OverflowError):
        return None
    if parsed is None:
        return None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=dt.UTC)
    return parsed


def message_ids(value: object) -> list[str]:
    """The msg-ids (`<...>`) in Message-ID, In-Reply-To or References, in order."""
    if value is None:
        return []
    return _MSGID.findall(str(value)[:MAX_HEADER_CHARS])


def first_message_id(value: object) -> str | None:
    """The one msg-id a Message-ID or In-Reply-To names; a bare token when there are no
    angle brackets; None when empty."""
    ids = message_ids(value)
    if ids:
        return ids[0]
    if value is None:
        return None
    token = unfold(str(value)[:1000]).strip()
    return token.split()[0] if token else None
