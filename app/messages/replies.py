"""Drafts that answer or pass on a received message: reply, reply-all, forward.

The draft is only a starting point the user edits in the compose form: recipients who cannot
be written as a valid address are left out rather than failing the reply.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Callable, Collection, Iterable

from app.messages.addresses import Address, AddressError, parse_address
from app.messages.build import Draft
from app.messages.headers import Mailbox
from app.messages.htmltext import html_to_text
from app.messages.parse import ParsedMessage
from app.sentences import N_, Sentence

_REPLY_PREFIX = re.compile(r"^(?:\s*(?:re|ответ)\s*(?:\[\d+\]|\(\d+\))?\s*:)+\s*", re.IGNORECASE)
_FORWARD_PREFIX = re.compile(r"^\s*(?:fwd?|пересл)\s*:", re.IGNORECASE)


def reply_draft(original: ParsedMessage, *, reply_all: bool,
                self_addresses: Collection[str], say: Callable[[Sentence], str] = str) -> Draft:
    """A reply to the sender (Reply-To when given), or to everyone with `reply_all`.
    `say` writes the attribution line in the user's language (English by default)."""
    mine = {address.casefold() for address in self_addresses}
    targets = original.reply_to or original.from_
    if targets and all(_is_mine(m, mine) for m in targets):  # replying to one's own sent message
        targets = original.to
    to = _addresses(targets, exclude=mine)
    cc: list[Address] = []
    if reply_all:
        taken = mine | {key for a in to for key in (a.addr_spec.casefold(), a.wire.casefold())}
        cc = _addresses([*original.to, *original.cc], exclude=taken)
    references = [*(original.references or _ids(original.in_reply_to)),
                  *_ids(original.message_id)]
    return Draft(
        to=to,
        cc=cc,
        subject="Re: " + _REPLY_PREFIX.sub("", original.subject),
        body=_quoted_reply(original, say),
        in_reply_to=original.message_id,
        references=references,
    )


def forward_draft(original: ParsedMessage, *, inline: bool,
                  say: Callable[[Sentence], str] = str) -> Draft:
    """A forward: the original quoted in the body (`inline`) or attached as message/rfc822.
    `say` writes the block's heading and labels in the user's language (English by default)."""
    subject = original.subject
    if not _FORWARD_PREFIX.match(subject):
        subject = f"Fwd: {subject}"
    if not inline:
        return Draft(subject=subject, forwarded=original.raw)
    return Draft(subject=subject, body=_forwarded_block(original, say))


def body_text(original: ParsedMessage) -> str:
    """The original's text: the plain part, else its HTML as text."""
    if original.text_body is not None:
        return original.text_body
    if original.html_body is not None:
        return html_to_text(original.html_body)
    return ""


def quote(text: str) -> str:
    """Every line prefixed for quoting (">" sticks to existing quote marks)."""
    lines = text.replace("\r\n", "\n").rstrip("\n").split("\n")
    return "\n".join(">" + line if line.startswith(">") or not line else "> " + line
                     for line in lines)


def _quoted_reply(original: ParsedMessage, say: Callable[[Sentence], str]) -> str:
    return f"\n\n{say(_attribution(original))}\n{quote(body_text(original))}\n"


def _attribution(original: ParsedMessage) -> Sentence:
    sender = original.from_[0] if original.from_ else None
    who = (sender.name or sender.address) if sender else None
    when = original.date or original.date_text or None
    if who and when:
        return Sentence(N_("On %(date)s, %(sender)s wrote:"), date=when, sender=who)
    if who:
        return Sentence(N_("On an unknown date, %(sender)s wrote:"), sender=who)
    if when:
        return Sentence(N_("On %(date)s, someone wrote:"), date=when)
    return Sentence(N_("On an unknown date, someone wrote:"))


def _forwarded_block(original: ParsedMessage, say: Callable[[Sentence], str]) -> str:
    lines = ["", "", say(Sentence(N_("---------- Forwarded message ----------"))),
             say(Sentence(N_("From: %(value)s"), value=_listed(original.from_))),
             say(Sentence(N_("Date: %(value)s"), value=original.date_text)),
             say(Sentence(N_("Subject: %(value)s"), value=original.subject)),
             say(Sentence(N_("To: %(value)s"), value=_listed(original.to)))]
    if original.cc:
        lines.append(say(Sentence(N_("Cc: %(value)s"), value=_listed(original.cc))))
    return "\n".join([*lines, "", body_text(original), ""])


def _listed(mailboxes: Iterable[Mailbox]) -> str:
    return ", ".join(m.display for m in mailboxes)


def _addresses(mailboxes: Iterable[Mailbox], *, exclude: Collection[str]) -> list[Address]:
    seen = set(exclude)
    result = []
    for mailbox in mailboxes:
        address = _to_address(mailbox)
        if address is not None and not _spellings(mailbox, address) & seen:
            seen |= _spellings(mailbox, address)
            result.append(address)
    return result


def _to_address(mailbox: Mailbox) -> Address | None:
    try:
        address = parse_address(mailbox.address)
    except AddressError:
        return None
    return dataclasses.replace(address, display_name=mailbox.name)


def _is_mine(mailbox: Mailbox, mine: Collection[str]) -> bool:
    return bool(_spellings(mailbox, _to_address(mailbox)) & set(mine))


def _spellings(mailbox: Mailbox, address: Address | None) -> set[str]:
    """Every way this mailbox may be written, case-folded, for comparing."""
    spellings = {mailbox.address.casefold()}
    if address is not None:
        spellings |= {address.addr_spec.casefold(), address.wire.casefold()}
    return spellings


def _ids(message_id: str | None) -> list[str]:
    return [message_id] if message_id else []
