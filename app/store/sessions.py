"""Server-side sessions and login-failure counts, shared by every worker process.

A session row lets the server end a session for real (logout, revocation, idle timeout)
whatever the browser still holds in its cookie. Login failures are timestamps per scope
(the caller decides what a scope is: an address, a client IP, both), counted over a
sliding window for rate limiting. Functions run inside the caller's transaction.
"""

from __future__ import annotations

import secrets
import sqlite3

# Failure timestamps older than this are dropped whatever window the caller counts over.
FAILURE_RETENTION = 24 * 60 * 60.0


def create(conn: sqlite3.Connection, account: str, now: float) -> str:
    sid = secrets.token_urlsafe(32)
    conn.execute(
        "INSERT INTO sessions (sid, account, created_at, last_seen_at) VALUES (?, ?, ?, ?)",
        (sid, account, now, now),
    )
    return sid


def touch(conn: sqlite3.Connection, sid: str, now: float, idle_timeout: float) -> bool:
    """Refresh a live session; an idle one is deleted. True if the session is live."""
    row = conn.execute("SELECT last_seen_at FROM sessions WHERE sid = ?", (sid,)).fetchone()
    if row is None:
        return False
    if now - row[0] > idle_timeout:
        conn.execute("DELETE FROM sessions WHERE sid = ?", (sid,))
        return False
    conn.execute("UPDATE sessions SET last_seen_at = ? WHERE sid = ?", (now, sid))
    return True


def account_of(conn: sqlite3.Connection, sid: str) -> tuple[str, int, str] | None:
    row = conn.execute(
        "SELECT a.pop3_host, a.pop3_port, a.username FROM sessions s "
        "JOIN accounts a ON a.key = s.account WHERE s.sid = ?",
        (sid,),
    ).fetchone()
    return (row[0], row[1], row[2]) if row else None


def revoke(conn: sqlite3.Connection, sid: str) -> None:
    conn.execute("DELETE FROM sessions WHERE sid = ?", (sid,))


def purge(conn: sqlite3.Connection, now: float, idle_timeout: float) -> int:
    cursor = conn.execute("DELETE FROM sessions WHERE last_seen_at < ?", (now - idle_timeout,))
    return cursor.rowcount


def record_failure(conn: sqlite3.Connection, scope: str, now: float, window: float) -> int:
    """Count a failure; return the failures in the window, this one included."""
    conn.execute("DELETE FROM login_failures WHERE at < ?", (now - max(window, FAILURE_RETENTION),))
    conn.execute("INSERT INTO login_failures (scope, at) VALUES (?, ?)", (scope, now))
    return failures(conn, scope, now, window)


def failures(conn: sqlite3.Connection, scope: str, now: float, window: float) -> int:
    row = conn.execute(
        "SELECT count(*) FROM login_failures WHERE scope = ? AND at >= ?", (scope, now - window)
    ).fetchone()
    return int(row[0])


def clear_failures(conn: sqlite3.Connection, scope: str) -> None:
    conn.execute("DELETE FROM login_failures WHERE scope = ?", (scope,))
