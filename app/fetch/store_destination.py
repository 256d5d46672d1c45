"""The web app's fetch destination: a user's mailbox in the store, indexed for the inbox.

Each batch is indexed (decoded headers, body text for search) and handed to the store in one
transaction, which is durable when `add_messages` returns; only then may the policy send DELE.
A big message is indexed from its beginning only and streamed into the store from its spool,
so a 40 MB message never sits in memory whole.
"""

from __future__ import annotations

import errno
import shutil
from collections.abc import Sequence
from pathlib import Path
from typing import BinaryIO

from app.fetch.policy import SPOOL_IN_MEMORY, Downloaded
from app.messages import index_fields
from app.store import Mailbox, NewMessage, PreparedBatch

INDEX_HEAD_BYTES = 64 * 1024
SPACE_FACTOR = 4
SPACE_RESERVE = 8 * 1024 * 1024


def new_message(item: Downloaded) -> NewMessage:
    """The store's record of one downloaded message."""
    item.spool.seek(0)
    raw: bytes | BinaryIO
    if item.size <= SPOOL_IN_MEMORY:
        raw = item.spool.read()
        head = raw[:INDEX_HEAD_BYTES] if len(raw) > INDEX_HEAD_BYTES else raw
    else:
        head = item.spool.read(INDEX_HEAD_BYTES)
        item.spool.seek(0)
        raw = item.spool
    # The index needs the headers and the first of the text (its body text is capped far
    # below this), not every line of a big attachment, which the parser would read through.
    fields = index_fields(head)
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


class MailboxDestination:
    """Delivers fetched mail into one account's mailbox."""

    def __init__(self, mailbox: Mailbox, spool: Path):
        self.mailbox = mailbox
        self.spool = spool
        self._spool_ready = False

    def known_uids(self) -> set[str]:
        return self.mailbox.known_uids()

    def prepare(self, batch: Sequence[Downloaded]) -> PreparedBatch:
        """Indexed and turned into the store's rows here, in the fetch's own thread."""
        return self.mailbox.prepare([new_message(item) for item in batch])

    def deliver(self, prepared: object) -> int:
        assert isinstance(prepared, PreparedBatch)
        self._check_space(sum(message.size for message in prepared.messages))
        return len(self.mailbox.add_prepared(prepared))

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
