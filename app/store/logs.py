"""Protocol logs of each account's recent operations, newest kept, oldest forgotten.

The lines arrive already redacted (the transcript layer replaces credentials with `***`);
the store keeps them verbatim as a JSON list so a line may contain anything, newlines
included. Functions run inside the caller's transaction.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Sequence
from datetime import UTC, datetime

from app.store.models import LogRecord

KEEP_LOGS = 20


def save(
    conn: sqlite3.Connection,
    account: str,
    operation: str,
    lines: Sequence[str],
    ok: bool,
    started_at: float,
) -> None:
    conn.execute(
        "INSERT INTO logs (account, operation, started_at, ok, lines) VALUES (?, ?, ?, ?, ?)",
        (account, operation, started_at, int(ok), json.dumps(list(lines), ensure_ascii=False)),
    )
    conn.execute(
        "DELETE FROM logs WHERE account = ? AND id <= "
        "(SELECT id FROM logs WHERE account = ? ORDER BY id DESC LIMIT 1 OFFSET ?)",
        (account, account, KEEP_LOGS),
    )


def recent(conn: sqlite3.Connection, account: str, limit: int) -> list[LogRecord]:
    rows = conn.execute(
        "SELECT operation, started_at, ok, lines FROM logs WHERE account = ? "
        "ORDER BY id DESC LIMIT ?",
        (account, max(0, limit)),
    )
    return [
        LogRecord(
            operation=operation,
            started_at=datetime.fromtimestamp(started_at, UTC),
            ok=bool(ok),
            lines=json.loads(lines),
        )
        for operation, started_at, ok, lines in rows
    ]
