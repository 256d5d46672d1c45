"""Fetch jobs: one running per account, visible to every worker, declared dead when silent.

A job is a row in the shared database. Its worker refreshes `heartbeat_at` as it goes; a
running job whose heartbeat is older than `stale_after` seconds belongs to a worker that
stopped (killed, restarted, wedged), so it is marked failed the first time anyone looks,
and the next start creates a fresh one. A job leaves "running" exactly once: updates and
finishes on a job that is no longer running change nothing and return False, which tells
a slow worker that its job was taken from it. Each function runs inside the caller's
transaction; starting one must be `BEGIN IMMEDIATE` so two workers cannot both create.
"""

from __future__ import annotations

import secrets
import sqlite3
from datetime import UTC, datetime

from app.store.models import Job

STALE_ERROR = "the worker running it stopped"
KEEP_FINISHED = 20

_COLUMNS = "id, state, done, total, new, error, started_at, heartbeat_at, finished_at"


def start(
    conn: sqlite3.Connection, account: str, now: float, stale_after: float
) -> tuple[str, bool]:
    """The account's running job (created=False), or a new one (created=True)."""
    row = conn.execute(
        "SELECT id, heartbeat_at FROM jobs WHERE account = ? AND state = 'running'", (account,)
    ).fetchone()
    if row is not None:
        job_id, heartbeat_at = row
        if now - heartbeat_at <= stale_after:
            return job_id, False
        fail_if_stale(conn, job_id, now, stale_after)
    job_id = secrets.token_urlsafe(12)
    conn.execute(
        "INSERT INTO jobs (id, account, state, started_at, heartbeat_at) "
        "VALUES (?, ?, 'running', ?, ?)",
        (job_id, account, now, now),
    )
    _prune(conn, account)
    return job_id, True


def update(
    conn: sqlite3.Connection, job_id: str, now: float, done: int, total: int, new: int
) -> bool:
    cursor = conn.execute(
        "UPDATE jobs SET done = ?, total = ?, new = ?, heartbeat_at = ? "
        "WHERE id = ? AND state = 'running'",
        (done, total, new, now, job_id),
    )
    return cursor.rowcount == 1


def heartbeat(conn: sqlite3.Connection, job_id: str, now: float) -> bool:
    cursor = conn.execute(
        "UPDATE jobs SET heartbeat_at = ? WHERE id = ? AND state = 'running'", (now, job_id)
    )
    return cursor.rowcount == 1


def finish(
    conn: sqlite3.Connection,
    job_id: str,
    now: float,
    state: str,
    error: str | None,
    new: int | None,
) -> bool:
    cursor = conn.execute(
        "UPDATE jobs SET state = ?, error = ?, new = coalesce(?, new), finished_at = ?, "
        "heartbeat_at = ? WHERE id = ? AND state = 'running'",
        (state, error, new, now, now, job_id),
    )
    return cursor.rowcount == 1


def get(conn: sqlite3.Connection, account: str, job_id: str) -> Job | None:
    row = conn.execute(
        f"SELECT {_COLUMNS} FROM jobs WHERE id = ? AND account = ?",  # noqa: S608 constant
        (job_id, account),
    ).fetchone()
    return _job(row) if row else None


def is_stale(job: Job, now: float, stale_after: float) -> bool:
    return job.running and now - job.updated_at.timestamp() > stale_after


def fail_if_stale(conn: sqlite3.Connection, job_id: str, now: float, stale_after: float) -> None:
    """Mark the job failed if it is running and its heartbeat is still too old."""
    conn.execute(
        "UPDATE jobs SET state = 'failed', error = ?, finished_at = ? "
        "WHERE id = ? AND state = 'running' AND heartbeat_at < ?",
        (STALE_ERROR, now, job_id, now - stale_after),
    )


def _prune(conn: sqlite3.Connection, account: str) -> None:
    """Forget all but the newest finished jobs of the account."""
    conn.execute(
        "DELETE FROM jobs WHERE account = ? AND state != 'running' AND id NOT IN "
        "(SELECT id FROM jobs WHERE account = ? ORDER BY started_at DESC LIMIT ?)",
        (account, account, KEEP_FINISHED),
    )


def _job(row: tuple) -> Job:
    job_id, state, done, total, new, error, started_at, heartbeat_at, finished_at = row
    return Job(
        id=job_id,
        state=state,
        done=done,
        total=total,
        new=new,
        error=error,
        started_at=_moment(started_at),
        updated_at=_moment(heartbeat_at),
        finished_at=_moment(finished_at) if finished_at is not None else None,
    )


def _moment(seconds: float) -> datetime:
    return datetime.fromtimestamp(seconds, UTC)
