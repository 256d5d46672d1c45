"""The web app's fetch destination: a user's mailbox in the store, indexed for the inbox.

Each batch is indexed (decoded headers, body text for search) and handed to the store in one
transaction, which is durable when `add_messages` returns; only then may the policy send DELE.
A big message is indexed from its beginning only and streamed into the store from its spool,
so a 40 MB message never sits in memory whole.

With an `IndexHelper`, `prepare` only reads the batch and hands its heads to the helper
process; `deliver` (in the delivery thread) collects the fields and writes. So the helper
indexes batch N+1 while the store writes batch N and the client downloads batch N+2.
"""

from __future__ import annotations

import errno
import shutil
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from app.fetch.indexing import Indexed, IndexHelper, index_here
from app.fetch.policy import SPOOL_IN_MEMORY, Downloaded
from app.messages import IndexFields, index_fields
from app.store import Mailbox, NewMessage

INDEX_HEAD_BYTES = 64 * 1024
SPACE_FACTOR = 4
SPACE_RESERVE = 8 * 1024 * 1024


def _raw_and_head(item: Downloaded) -> tuple[bytes | BinaryIO, bytes]:
    """What the store keeps (the bytes, or the spool of a big message) and what the index
    reads: the headers and the first of the text (its body text is capped far below this),
    not every line of a big attachment, which the parser would read through."""
    item.spool.seek(0)
    if item.size <= SPOOL_IN_MEMORY:
        raw = item.spool.read()
        return raw, raw[:INDEX_HEAD_BYTES] if len(raw) > INDEX_HEAD_BYTES else raw
    head = item.spool.read(INDEX_HEAD_BYTES)
    item.spool.seek(0)
    return item.spool, head


def _stored(item: Downloaded, raw: bytes | BinaryIO, fields: IndexFields) -> NewMessage:
    return NewMessage(
        uid=item.uid,
        raw=raw,
        size=item.size,
        subject=fields.subject,
        from_name=fields.from_name,
        from_addr=fields.from_addr,
        to=fields.to,
        cc=fields.cc,
        date=fields.date,
        message_id=fields.message_id or "",
        has_attachments=fields.has_attachments,
        body_text=fields.body_text,
        snippet=fields.snippet,
    )


def new_message(item: Downloaded) -> NewMessage:
    """The store's record of one downloaded message, indexed here."""
    raw, head = _raw_and_head(item)
    return _stored(item, raw, index_fields(head))


@dataclass(frozen=True)
class PendingBatch:
    """A batch read from its spools, its index fields on their way."""

    items: tuple[Downloaded, ...]
    raws: tuple[bytes | BinaryIO, ...]
    indexed: Indexed


class MailboxDestination:
    """Delivers fetched mail into one account's mailbox."""

    def __init__(self, mailbox: Mailbox, spool: Path, indexer: IndexHelper | None = None):
        self.mailbox = mailbox
        self.spool = spool
        self.indexer = indexer
        self._spool_ready = False

    def known_uids(self) -> set[str]:
        return self.mailbox.known_uids()

    def prepare(self, batch: Sequence[Downloaded]) -> PendingBatch:
        """Read in the fetch's own thread; indexed by the helper, or here without one."""
        read = [_raw_and_head(item) for item in batch]
        heads = [head for _raw, head in read]
        indexed = index_here(heads) if self.indexer is None else self.indexer.submit(heads)
        return PendingBatch(tuple(batch), tuple(raw for raw, _head in read), indexed)

    def deliver(self, prepared: PendingBatch) -> int:
        fields = prepared.indexed()
        rows = self.mailbox.prepare([
            _stored(item, raw, found)
            for item, raw, found in zip(prepared.items, prepared.raws, fields, strict=True)
        ])
        self._check_space(sum(message.size for message in rows.messages))
        return len(self.mailbox.add_prepared(rows))

    def _check_space(self, incoming: int) -> None:
        """Refuse a batch the disk may not hold, while there is still room to say so: a
        database that fills the disk in the middle of a commit leaves none to record why.
        The raw bytes, their search entry, the index and the write-ahead log need about
        four times the mail itself."""
        needed = SPACE_FACTOR * incoming + SPACE_RESERVE
        free = shutil.disk_usage(self.spool_dir() or self.spool).free
        if free < needed:
            raise OSError(errno.ENOSPC, "no space left in the data directory")

    def spool_dir(self) -> Path | None:
        if not self._spool_ready:  # asked once per message: make the directory once
            self.spool.mkdir(mode=0o700, parents=True, exist_ok=True)
            self._spool_ready = True
        return self.spool
