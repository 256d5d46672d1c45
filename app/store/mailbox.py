"""One account's mail: adding downloaded messages, listing, searching, reading, deleting.

Each account has its own SQLite file, so nothing here ever filters by account: isolation
is by construction, and two users' fetches never wait on one writer lock. Public message
ids are random strings, unrelated to the rowid, so they reveal nothing and cannot be
guessed. A uid, once stored, is known forever (deleting a message remembers its uid), so
re-adding it after a crash or a keep-on-server fetch is a no-op.
"""

from __future__ import annotations

import math
import secrets
import sqlite3
import time
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import BinaryIO

from app.store.blobs import BlobReader, copy_into_blob
from app.store.database import Database
from app.store.models import AccountKey, MessageSummary, NewMessage, Page, PreparedBatch
from app.store.search import fold, match_expression

MAX_PER_PAGE = 500

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MICROSECOND = timedelta(microseconds=1)

# Spliced into SQL by f-strings (hence the S608 waivers); constants, never user input.
_SUMMARY_COLUMNS = (
    "public_id, uid, subject, from_name, from_addr, to_text, cc_text, date, stored_at, "
    "size, has_attachments, seen, snippet, message_id"
)
_NEWEST_FIRST = "ORDER BY sort_key DESC, seq DESC"

# A page is found by walking the inbox-order index alone (cheap even 100,000 entries deep),
# then only its rows are read. A search walks the same index, keeping the entries whose
# rowid the FTS match produced: measured at 100,000 messages that beats sorting the matches
# by date for rare and common words alike, hence INDEXED BY.
_PAGE_OF = (
    f"SELECT {_SUMMARY_COLUMNS} FROM messages WHERE seq IN "  # noqa: S608
    "(SELECT seq FROM messages INDEXED BY messages_inbox_order {where} "
    f"{_NEWEST_FIRST} LIMIT ? OFFSET ?) {_NEWEST_FIRST}"
)
_INBOX_PAGE = _PAGE_OF.format(where="")
_SEARCH_PAGE = _PAGE_OF.format(
    where="WHERE seq IN (SELECT rowid FROM messages_fts WHERE messages_fts MATCH ?)"
)


class Mailbox:
    """The stored mail of one account, behind a database file of its own."""

    def __init__(self, account: AccountKey, db: Database) -> None:
        self.account = account
        self._db = db

    # -- adding -------------------------------------------------------------------------

    def known_uids(self) -> set[str]:
        """Every uid stored or deleted: what a fetch must not download again."""
        with self._db.read() as conn:
            rows = conn.execute("SELECT uid FROM messages UNION ALL SELECT uid FROM deleted_uids")
            return {uid for (uid,) in rows}

    def add_messages(self, batch: Sequence[NewMessage]) -> list[str]:
        """Store a batch in one transaction, durable on return; the public ids of those added.

        A message whose uid is already stored or deleted (or repeated in the batch) is
        skipped. If anything fails, nothing of the batch is stored.
        """
        return self.add_prepared(self.prepare(batch))

    @staticmethod
    def prepare(batch: Sequence[NewMessage]) -> PreparedBatch:
        """The batch as table rows, worked out before (and outside) its transaction.

        A fetch prepares the next batch while the previous one is written in another thread:
        the writer then has little Python left to do, which matters because it must take
        the GIL back after every statement and waits for it while the other thread works.
        """
        seen: set[str] = set()
        unique = []
        for message in batch:  # a uid repeated in the batch is stored once, the first
            if message.uid not in seen:
                seen.add(message.uid)
                unique.append(message)
        return PreparedBatch(
            messages=tuple(unique),
            public_ids=tuple(secrets.token_urlsafe(12) for _ in unique),
            index_rows=tuple(_index_row(message) for message in unique),
            search_rows=tuple(_search_row(message) for message in unique),
        )

    def add_prepared(self, prepared: PreparedBatch) -> list[str]:
        """`add_messages` for a batch already prepared; durable on return."""
        if not prepared.messages:
            return []
        with self._db.write() as conn:
            known = _known(conn, [message.uid for message in prepared.messages])
            keep = [i for i, m in enumerate(prepared.messages) if m.uid not in known]
            if not keep:
                return []
            # The writer lock is ours (BEGIN IMMEDIATE), so the next seqs are known.
            first = conn.execute("SELECT coalesce(max(seq), 0) + 1 FROM messages").fetchone()[0]
            kept = [(first + k, i, prepared.messages[i]) for k, i in enumerate(keep)]
            _insert_rows(conn, _MESSAGES_INSERT, [
                (seq, prepared.public_ids[i], *prepared.index_rows[i]) for seq, i, _m in kept
            ])
            conn.execute(  # new messages are unread
                "UPDATE counters SET total = total + ?, unread = unread + ?, "
                "version = version + 1 WHERE id = 1",
                (len(kept), len(kept)),
            )
            _insert_rows(conn, _RAW_INSERT, [
                (seq, message.raw) for seq, _i, message in kept if _in_memory(message)
            ])
            for seq, _i, message in kept:
                if not _in_memory(message):  # a big one, streamed in
                    conn.execute(
                        "INSERT INTO raw_messages (seq, data) VALUES (?, zeroblob(?))",
                        (seq, message.size),
                    )
                    copy_into_blob(conn, "raw_messages", "data", seq, message.raw, message.size)
            # The search entries go in last, together: FTS5 writes out what it holds in
            # memory at every statement savepoint, and a segment per statement would have
            # to be merged again and again.
            _insert_rows(conn, _SEARCH_INSERT, [
                (seq, *prepared.search_rows[i]) for seq, i, _m in kept
            ])
        return [prepared.public_ids[i] for i in keep]

    # -- listing ------------------------------------------------------------------------

    def page(self, page: int = 1, per_page: int = 50, query: str | None = None) -> Page:
        """One page, newest first; `query` searches subject, from, to, cc and body.

        `page` is clamped into 1..pages and `per_page` into 1..MAX_PER_PAGE; the returned
        Page says which page it actually holds. A query with no words matches nothing.
        """
        per_page = min(max(1, per_page), MAX_PER_PAGE)
        expression = None
        if query is not None and query.strip():
            expression = match_expression(query)
            if expression is None:
                return Page(items=[], page=1, per_page=per_page, total=0)
        with self._db.read() as conn:
            total = _search_total(conn, expression) if expression else _total(conn)
            page = min(max(1, page), max(1, math.ceil(total / per_page)))
            offset = (page - 1) * per_page
            if expression:
                rows = conn.execute(_SEARCH_PAGE, (expression, per_page, offset)).fetchall()
            else:
                rows = conn.execute(_INBOX_PAGE, (per_page, offset)).fetchall()
        items = [_summary(row) for row in rows]
        return Page(items=items, page=page, per_page=per_page, total=total)

    def count(self) -> int:
        with self._db.read() as conn:
            return _total(conn)

    def unread_count(self) -> int:
        with self._db.read() as conn:
            return int(conn.execute("SELECT unread FROM counters WHERE id = 1").fetchone()[0])

    def version(self) -> int:
        """A number that changes whenever the list does (stored, deleted, read or unread):
        whatever was rendered from the list at one version holds until the next."""
        with self._db.read() as conn:
            return int(conn.execute("SELECT version FROM counters WHERE id = 1").fetchone()[0])

    def neighbours(self, message_id: str) -> tuple[str | None, str | None]:
        """The ids just newer and just older than this one in inbox order (prev / next)."""
        with self._db.read() as conn:
            row = conn.execute(
                "SELECT sort_key, seq FROM messages WHERE public_id = ?", (message_id,)
            ).fetchone()
            if row is None:
                return None, None
            newer = conn.execute(
                "SELECT public_id FROM messages WHERE (sort_key, seq) > (?, ?) "
                "ORDER BY sort_key, seq LIMIT 1",
                row,
            ).fetchone()
            older = conn.execute(
                "SELECT public_id FROM messages WHERE (sort_key, seq) < (?, ?) "  # noqa: S608
                f"{_NEWEST_FIRST} LIMIT 1",
                row,
            ).fetchone()
        return (newer[0] if newer else None), (older[0] if older else None)

    # -- one message --------------------------------------------------------------------

    def get(self, message_id: str) -> MessageSummary | None:
        with self._db.read() as conn:
            row = conn.execute(
                f"SELECT {_SUMMARY_COLUMNS} FROM messages WHERE public_id = ?",  # noqa: S608
                (message_id,),
            ).fetchone()
        return _summary(row) if row else None

    def raw(self, message_id: str) -> bytes | None:
        """The message exactly as downloaded (whole, in memory: prefer `open_raw` for big ones)."""
        with self._db.read() as conn:
            row = conn.execute(
                "SELECT r.data FROM raw_messages r JOIN messages m ON m.seq = r.seq "
                "WHERE m.public_id = ?",
                (message_id,),
            ).fetchone()
        return bytes(row[0]) if row else None

    def open_raw(self, message_id: str) -> BinaryIO | None:
        """A file to stream the raw message from in chunks; close it (or use `with`)."""
        conn = self._db.take()
        try:
            conn.execute("BEGIN")
            row = conn.execute(
                "SELECT seq FROM messages WHERE public_id = ?", (message_id,)
            ).fetchone()
            if row is None:
                self._db.give_back(conn)
                return None
            blob = conn.blobopen("raw_messages", "data", row[0], readonly=True)
        except BaseException:
            self._db.give_back(conn)
            raise
        return BlobReader(conn, blob, self._db.give_back)  # type: ignore[return-value]

    def mark_seen(self, message_id: str, seen: bool = True) -> bool:
        """Set the seen flag; False if there is no such message."""
        with self._db.write() as conn:
            cursor = conn.execute(
                "UPDATE messages SET seen = ? WHERE public_id = ?", (int(seen), message_id)
            )
            return cursor.rowcount == 1

    def delete(self, message_id: str) -> bool:
        """Remove the row, its raw bytes and its search entry; remember the uid."""
        with self._db.write() as conn:
            row = conn.execute(
                "SELECT seq, uid FROM messages WHERE public_id = ?", (message_id,)
            ).fetchone()
            if row is None:
                return False
            seq, uid = row
            conn.execute("DELETE FROM messages_fts WHERE rowid = ?", (seq,))
            conn.execute("DELETE FROM raw_messages WHERE seq = ?", (seq,))
            conn.execute("DELETE FROM messages WHERE seq = ?", (seq,))
            conn.execute(
                "INSERT OR IGNORE INTO deleted_uids (uid, deleted_at) VALUES (?, ?)",
                (uid, time.time_ns() // 1000),
            )
        return True


# -- helpers (each runs inside the caller's transaction) ------------------------------------


_MESSAGES_INSERT = (
    "INSERT INTO messages (seq, public_id, uid, sort_key, date, stored_at, size, "
    "has_attachments, subject, from_name, from_addr, to_text, cc_text, message_id, snippet) "
    "VALUES "
)
_RAW_INSERT = "INSERT INTO raw_messages (seq, data) VALUES "
_SEARCH_INSERT = "INSERT INTO messages_fts (rowid, subject, sender, recipients, body) VALUES "
_MAX_VARIABLES = 30_000  # SQLite allows 32,766 parameters in one statement


def _insert_rows(conn: sqlite3.Connection, insert: str, rows: list[tuple[object, ...]]) -> None:
    """Many rows per statement rather than one `executemany` step per row.

    A fetch indexes its next batch in another thread while this one is written. SQLite lets
    go of Python's GIL while it works and must take it back after every statement; while
    the other thread computes, each taking-back can wait for the interpreter's switch
    interval, so a statement per row made a batch hundreds of times slower.
    """
    if not rows:
        return
    width = len(rows[0])
    placeholder = "(" + ", ".join("?" * width) + ")"
    step = max(1, _MAX_VARIABLES // width)
    for start in range(0, len(rows), step):
        chunk = rows[start : start + step]
        conn.execute(
            insert + ", ".join([placeholder] * len(chunk)),
            [value for row in chunk for value in row],
        )


def _in_memory(message: NewMessage) -> bool:
    return isinstance(message.raw, bytes | bytearray | memoryview)


def _known(conn: sqlite3.Connection, uids: list[str]) -> set[str]:
    """Which of these uids are already stored or deleted."""
    known: set[str] = set()
    step = _MAX_VARIABLES // 2
    for start in range(0, len(uids), step):
        chunk = uids[start : start + step]
        marks = ", ".join("?" * len(chunk))
        known.update(uid for (uid,) in conn.execute(
            f"SELECT uid FROM messages WHERE uid IN ({marks}) "  # noqa: S608 - only "?"s
            f"UNION ALL SELECT uid FROM deleted_uids WHERE uid IN ({marks})",
            chunk + chunk,
        ))
    return known


def _index_row(message: NewMessage) -> tuple[object, ...]:
    """The index row of a message, from sort_key on (seq and public_id come first)."""
    texts = (
        message.subject,
        message.from_name,
        message.from_addr,
        message.to,
        message.cc,
        message.message_id,
        message.snippet,
    )
    size = len(message.raw) if _in_memory(message) else message.size  # type: ignore[arg-type]
    flags = (size, int(message.has_attachments))
    return (message.uid, *_when(message.date), *flags, *map(_storable, texts))


def _when(date: datetime | None) -> tuple[int, str | None, int]:
    """(sort_key, date as ISO 8601 with its offset, stored_at), times in epoch microseconds."""
    stored_at = time.time_ns() // 1000
    if date is None:
        return stored_at, None, stored_at
    if date.tzinfo is None:  # the caller should not send one; take it as UTC
        date = date.replace(tzinfo=UTC)
    return (date - _EPOCH) // _MICROSECOND, date.isoformat(), stored_at


def _search_row(message: NewMessage) -> tuple[object, ...]:
    """The full-text entry of a message: its four searchable columns, folded (the rowid is
    the message's seq, put first in the transaction)."""
    columns = (
        message.subject,
        f"{message.from_name} {message.from_addr}",
        f"{message.to} {message.cc}",
        message.body_text,
    )
    return tuple(fold(_storable(text)) for text in columns)


def _storable(text: str) -> str:
    """Text SQLite can take: lone surrogates (say, from undecodable header bytes kept by
    `surrogateescape`) become U+FFFD instead of failing the whole batch."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return "".join("\ufffd" if "\ud800" <= ch <= "\udfff" else ch for ch in text)
    return text


def _total(conn: sqlite3.Connection) -> int:
    return int(conn.execute("SELECT total FROM counters WHERE id = 1").fetchone()[0])


def _search_total(conn: sqlite3.Connection, expression: str) -> int:
    row = conn.execute(
        "SELECT count(*) FROM messages_fts WHERE messages_fts MATCH ?", (expression,)
    ).fetchone()
    return int(row[0])


def _summary(row: sqlite3.Row | tuple) -> MessageSummary:
    (
        public_id,
        uid,
        subject,
        from_name,
        from_addr,
        to,
        cc,
        date,
        stored_at,
        size,
        has_attachments,
        seen,
        snippet,
        message_id,
    ) = row
    return MessageSummary(
        id=public_id,
        uid=uid,
        subject=subject,
        from_name=from_name,
        from_addr=from_addr,
        to=to,
        cc=cc,
        date=datetime.fromisoformat(date) if date is not None else None,
        stored_at=_EPOCH + stored_at * _MICROSECOND,
        size=size,
        has_attachments=bool(has_attachments),
        seen=bool(seen),
        snippet=snippet,
        message_id=message_id,
    )
