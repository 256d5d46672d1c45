"""The two kinds of database and how each one's schema grew, oldest migration first.

Append new migrations to the end of a list; never edit or reorder one that has shipped,
since a database's `user_version` counts how many of them it has seen.

- The shared database (`pochta.sqlite3`) holds what crosses accounts or workers: the
  account registry, fetch jobs, protocol logs, server-side sessions, login-failure counts.
- Each account's database (`accounts/<hex>.sqlite3`) holds its mail: an index row per
  message, the raw bytes in a table of their own (so inbox queries never page through
  blobs), an FTS5 index, the uids of deleted messages, and running counts.
"""

from __future__ import annotations

from app.store.database import Migration, script


def _search_index_rebuilt(new_table: str, options: str) -> tuple[str, ...]:
    """The search index made again with other FTS5 options, its entries (rowid = seq) kept."""
    return (
        f"CREATE VIRTUAL TABLE {new_table} USING fts5 "
        f"(subject, sender, recipients, body, {options})",
        f"INSERT INTO {new_table} (rowid, subject, sender, recipients, body) "  # noqa: S608
        "SELECT rowid, subject, sender, recipients, body FROM messages_fts",
        "DROP TABLE messages_fts",
        f"ALTER TABLE {new_table} RENAME TO messages_fts",
    )


MAILBOX_MIGRATIONS: list[Migration] = [
    script(
        # seq is the rowid: insertion order, the tie-breaker after the date.
        """
        CREATE TABLE messages (
            seq INTEGER PRIMARY KEY,
            public_id TEXT NOT NULL UNIQUE,
            uid TEXT NOT NULL UNIQUE,
            sort_key INTEGER NOT NULL,
            date TEXT,
            stored_at INTEGER NOT NULL,
            size INTEGER NOT NULL,
            seen INTEGER NOT NULL DEFAULT 0 CHECK (seen IN (0, 1)),
            has_attachments INTEGER NOT NULL DEFAULT 0,
            subject TEXT NOT NULL DEFAULT '',
            from_name TEXT NOT NULL DEFAULT '',
            from_addr TEXT NOT NULL DEFAULT '',
            to_text TEXT NOT NULL DEFAULT '',
            cc_text TEXT NOT NULL DEFAULT '',
            message_id TEXT NOT NULL DEFAULT '',
            snippet TEXT NOT NULL DEFAULT ''
        )
        """,
        # Entries are (sort_key, rowid): newest-first pages walk it backwards.
        "CREATE INDEX messages_inbox_order ON messages (sort_key)",
        """
        CREATE TABLE raw_messages (
            seq INTEGER PRIMARY KEY REFERENCES messages (seq) ON DELETE CASCADE,
            data BLOB NOT NULL
        )
        """,
        """
        CREATE TABLE deleted_uids (
            uid TEXT PRIMARY KEY,
            deleted_at INTEGER NOT NULL
        ) WITHOUT ROWID
        """,
        # A normal (content-storing) FTS5 table, rowid = messages.seq: deleting a row by
        # rowid keeps it in sync without having to resupply the indexed text.
        """
        CREATE VIRTUAL TABLE messages_fts USING fts5 (
            subject, sender, recipients, body,
            tokenize = 'unicode61 remove_diacritics 2',
            prefix = '3'
        )
        """,
        # Running counts, kept exact by triggers, so the inbox header never scans.
        """
        CREATE TABLE counters (
            id INTEGER PRIMARY KEY CHECK (id = 1),
            total INTEGER NOT NULL,
            unread INTEGER NOT NULL
        )
        """,
        "INSERT INTO counters (id, total, unread) VALUES (1, 0, 0)",
        """
        CREATE TRIGGER messages_count_insert AFTER INSERT ON messages BEGIN
            UPDATE counters SET total = total + 1, unread = unread + (NEW.seen = 0)
            WHERE id = 1;
        END
        """,
        """
        CREATE TRIGGER messages_count_delete AFTER DELETE ON messages BEGIN
            UPDATE counters SET total = total - 1, unread = unread - (OLD.seen = 0)
            WHERE id = 1;
        END
        """,
        """
        CREATE TRIGGER messages_count_seen AFTER UPDATE OF seen ON messages
        WHEN NEW.seen != OLD.seen BEGIN
            UPDATE counters SET unread = unread + (NEW.seen = 0) - (OLD.seen = 0)
            WHERE id = 1;
        END
        """,
    ),
    script(
        # Without the 3-letter prefix index: it more than doubled the cost of indexing each
        # fetched message, and sped up only prefixes of exactly three letters (four-letter
        # ones expand through the term list either way).
        *_search_index_rebuilt("messages_fts_v2", "tokenize = 'unicode61 remove_diacritics 2'"),
    ),
    script(
        # A version that moves with every change to the list (a message stored, deleted,
        # read or unread), so a page rendered from the list can be reused until it moves.
        "ALTER TABLE counters ADD COLUMN version INTEGER NOT NULL DEFAULT 0",
        "DROP TRIGGER messages_count_insert",
        "DROP TRIGGER messages_count_delete",
        "DROP TRIGGER messages_count_seen",
        """
        CREATE TRIGGER messages_count_insert AFTER INSERT ON messages BEGIN
            UPDATE counters SET total = total + 1, unread = unread + (NEW.seen = 0),
                version = version + 1
            WHERE id = 1;
        END
        """,
        """
        CREATE TRIGGER messages_count_delete AFTER DELETE ON messages BEGIN
            UPDATE counters SET total = total - 1, unread = unread - (OLD.seen = 0),
                version = version + 1
            WHERE id = 1;
        END
        """,
        """
        CREATE TRIGGER messages_count_seen AFTER UPDATE OF seen ON messages
        WHEN NEW.seen != OLD.seen BEGIN
            UPDATE counters SET unread = unread + (NEW.seen = 0) - (OLD.seen = 0),
                version = version + 1
            WHERE id = 1;
        END
        """,
    ),
    script(
        # detail=column: the index records which column holds a word but not its position.
        # Search ANDs single words (no phrases), and each fetched message costs less to
        # index and to keep.
        *_search_index_rebuilt(
            "messages_fts_v4", "tokenize = 'unicode61 remove_diacritics 2', detail = column"
        ),
    ),
    script(
        # Messages arrive in batches: their counts are added once per batch by the store
        # (Mailbox.add_messages) instead of by a trigger run for every row.
        "DROP TRIGGER messages_count_insert",
    ),
]

SHARED_MIGRATIONS: list[Migration] = [
    script(
        """
        CREATE TABLE accounts (
            key TEXT PRIMARY KEY,
            pop3_host TEXT NOT NULL,
            pop3_port INTEGER NOT NULL,
            username TEXT NOT NULL,
            created_at REAL NOT NULL
        ) WITHOUT ROWID
        """,
        """
        CREATE TABLE jobs (
            id TEXT PRIMARY KEY,
            account TEXT NOT NULL REFERENCES accounts (key),
            state TEXT NOT NULL CHECK (state IN ('running', 'done', 'failed')),
            done INTEGER NOT NULL DEFAULT 0,
            total INTEGER NOT NULL DEFAULT 0,
            new INTEGER NOT NULL DEFAULT 0,
            error TEXT,
            started_at REAL NOT NULL,
            heartbeat_at REAL NOT NULL,
            finished_at REAL
        )
        """,
        # The schema itself forbids a second running job for an account.
        "CREATE UNIQUE INDEX jobs_one_running ON jobs (account) WHERE state = 'running'",
        "CREATE INDEX jobs_by_account ON jobs (account, started_at)",
        """
        CREATE TABLE logs (
            id INTEGER PRIMARY KEY,
            account TEXT NOT NULL REFERENCES accounts (key),
            operation TEXT NOT NULL,
            started_at REAL NOT NULL,
            ok INTEGER NOT NULL,
            lines TEXT NOT NULL
        )
        """,
        "CREATE INDEX logs_by_account ON logs (account, id)",
        """
        CREATE TABLE sessions (
            sid TEXT PRIMARY KEY,
            account TEXT NOT NULL REFERENCES accounts (key),
            created_at REAL NOT NULL,
            last_seen_at REAL NOT NULL
        ) WITHOUT ROWID
        """,
        "CREATE INDEX sessions_by_account ON sessions (account)",
        """
        CREATE TABLE login_failures (
            scope TEXT NOT NULL,
            at REAL NOT NULL
        )
        """,
        "CREATE INDEX login_failures_by_scope ON login_failures (scope, at)",
    ),
]
