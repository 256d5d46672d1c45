"""The values that cross the store's API: what goes in, what comes out.

Plain frozen dataclasses with no behaviour beyond small derived properties, so the web
layer, the fetcher and the tests can build and compare them without touching SQLite.
"""

from __future__ import annotations

import hashlib
import json
import math
from dataclasses import dataclass, field
from datetime import datetime
from typing import BinaryIO


@dataclass(frozen=True)
class AccountKey:
    """Who owns a mailbox: the POP3 server and the login on it, never the address alone.

    The host is normalised (trimmed, lower-cased, no trailing dot) so that
    `Mail.Example.org.` and `mail.example.org` are the same account; the username is kept
    exactly as typed, since servers differ on whether it is case-sensitive.
    """

    pop3_host: str
    pop3_port: int
    username: str

    def __post_init__(self) -> None:
        object.__setattr__(self, "pop3_host", self.pop3_host.strip().lower().rstrip("."))
        if not self.pop3_host:
            raise ValueError("an account needs a POP3 host")
        if not 1 <= self.pop3_port <= 65535:
            raise ValueError(f"POP3 port must be 1-65535, not {self.pop3_port}")
        if not self.username:
            raise ValueError("an account needs a username")

    @property
    def hex(self) -> str:
        """A stable file-name-safe key: sha256 of the identity (changing it orphans mail)."""
        identity = json.dumps([self.pop3_host, self.pop3_port, self.username])
        return hashlib.sha256(identity.encode("utf-8")).hexdigest()


@dataclass(frozen=True)
class NewMessage:
    """One downloaded message as the fetcher hands it over, headers already decoded.

    `raw` is the exact bytes from the server, or a binary file positioned at 0 holding
    exactly `size` bytes (streamed into the store in chunks). For `bytes`, `len(raw)` is
    what gets stored and reported as the size. `date` should be aware (a naive one is taken
    as UTC); None orders the message by the time it was stored.
    """

    uid: str
    raw: bytes | BinaryIO
    size: int
    subject: str = ""
    from_name: str = ""
    from_addr: str = ""
    to: str = ""
    cc: str = ""
    date: datetime | None = None
    message_id: str = ""
    has_attachments: bool = False
    body_text: str = ""
    snippet: str = ""


@dataclass(frozen=True)
class PreparedBatch:
    """New messages as table rows, ready for `Mailbox.add_prepared` (uids unique in it)."""

    messages: tuple[NewMessage, ...]
    public_ids: tuple[str, ...]
    index_rows: tuple[tuple[object, ...], ...]
    search_rows: tuple[tuple[object, ...], ...]


@dataclass(frozen=True)
class MessageSummary:
    """One inbox row: everything a list or a message header needs, without the raw bytes."""

    id: str
    uid: str
    subject: str
    from_name: str
    from_addr: str
    to: str
    cc: str
    date: datetime | None
    stored_at: datetime
    size: int
    has_attachments: bool
    seen: bool
    snippet: str
    message_id: str

    @property
    def sort_date(self) -> datetime:
        """The date the inbox orders by: the message's own, else when it was stored."""
        return self.date if self.date is not None else self.stored_at


@dataclass(frozen=True)
class Page:
    """One page of an inbox listing or a search, with what pagination links need."""

    items: list[MessageSummary]
    page: int
    per_page: int
    total: int

    @property
    def pages(self) -> int:
        """How many pages there are; an empty mailbox still has one (empty) page."""
        return max(1, math.ceil(self.total / self.per_page))

    @property
    def has_next(self) -> bool:
        return self.page < self.pages

    @property
    def has_prev(self) -> bool:
        return self.page > 1


@dataclass(frozen=True)
class Job:
    """A fetch in progress or finished, as every worker process sees it."""

    id: str
    state: str  # "running" | "done" | "failed"
    done: int
    total: int
    new: int
    error: str | None
    started_at: datetime
    updated_at: datetime
    finished_at: datetime | None = None

    @property
    def running(self) -> bool:
        return self.state == "running"

    def as_json(self) -> dict[str, object]:
        """The shape `GET /fetch/<job>` answers with."""
        return {
            "state": self.state,
            "done": self.done,
            "total": self.total,
            "new": self.new,
            "error": self.error,
        }


@dataclass(frozen=True)
class LogRecord:
    """The (already redacted) protocol log of one operation: login, fetch or send."""

    operation: str
    started_at: datetime
    ok: bool
    lines: list[str] = field(default_factory=list)
