"""The store's front door: where the files live, and everything that is not one mailbox.

`Store(data_dir)` owns the shared database (`pochta.sqlite3`: accounts, fetch jobs,
protocol logs, sessions, login failures) and hands out one `Mailbox` per account, each on
its own file under `accounts/`. It is safe to share one Store between the threads of a
process, and any number of processes may open the same data dir at once. Mail databases
commit with `synchronous=FULL` (a returned `add_messages` survives power loss); the shared
one with `NORMAL` (it survives a killed process; a power cut may lose its last moments).
"""

from __future__ import annotations

import dataclasses
import sqlite3
import threading
import time
from collections import OrderedDict
from collections.abc import Sequence
from datetime import datetime
from pathlib import Path
from types import TracebackType

from app.store import jobs, logs, sessions
from app.store.database import Database
from app.store.mailbox import Mailbox
from app.store.models import AccountKey, Job, LogRecord
from app.store.schema import MAILBOX_MIGRATIONS, SHARED_MIGRATIONS

SHARED_FILE = "pochta.sqlite3"
ACCOUNTS_DIR = "accounts"
POOLED_MAILBOXES = 16  # mailboxes that keep idle connections (each costs a few fds)
MAILBOX_IDLE_CONNECTIONS = 2  # one user rarely runs more requests than that at once


class Store:
    """All of Pochta's server-side state under one data directory."""

    def __init__(self, data_dir: Path) -> None:
        self.data_dir = Path(data_dir)
        _private_dir(self.data_dir)
        _private_dir(self.data_dir / ACCOUNTS_DIR)
        self._shared = Database(
            self.data_dir / SHARED_FILE, SHARED_MIGRATIONS, synchronous="NORMAL"
        )
        self._mailboxes: dict[str, tuple[Mailbox, Database]] = {}
        self._pooled: OrderedDict[str, Database] = OrderedDict()  # most recently used last
        self._lock = threading.Lock()

    def close(self) -> None:
        """Close pooled connections (the Store stays usable, opening fresh ones unpooled)."""
        with self._lock:
            databases = [self._shared, *(db for _, db in self._mailboxes.values())]
        for db in databases:
            db.close()

    def __enter__(self) -> Store:
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        value: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()

    # -- mailboxes ----------------------------------------------------------------------

    def mailbox(self, account: AccountKey) -> Mailbox:
        """The account's mailbox, its file created (and the account registered) on first use.

        Only the `POOLED_MAILBOXES` most recently used mailboxes keep idle connections, so
        a worker serving many accounts does not run out of file descriptors.
        """
        key = account.hex
        with self._lock:
            entry = self._mailboxes.get(key)
        if entry is None:
            entry = self._open_mailbox(account)
        with self._lock:
            entry = self._mailboxes.setdefault(key, entry)
            self._pooled[key] = entry[1]
            self._pooled.move_to_end(key)
            evicted = (
                self._pooled.popitem(last=False)[1]
                if len(self._pooled) > POOLED_MAILBOXES
                else None
            )
        if evicted is not None:
            evicted.release_idle()
        return entry[0]

    def _open_mailbox(self, account: AccountKey) -> tuple[Mailbox, Database]:
        db = Database(
            self.mailbox_path(account),
            MAILBOX_MIGRATIONS,
            synchronous="FULL",
            max_idle=MAILBOX_IDLE_CONNECTIONS,
        )
        with self._shared.write() as conn:
            _register(conn, account)
        return Mailbox(account, db), db

    def mailbox_path(self, account: AccountKey) -> Path:
        return self.data_dir / ACCOUNTS_DIR / f"{account.hex}.sqlite3"

    # -- fetch jobs ---------------------------------------------------------------------

    def start_job(self, account: AccountKey, *, stale_after: float = 30.0) -> tuple[str, bool]:
        """(job id, created?): the account's live running job, or a new one.

        A running job silent for more than `stale_after` seconds is marked failed first.
        Race-free across processes: concurrent callers all get the same job.
        """
        with self._shared.write() as conn:
            _register(conn, account)
            return jobs.start(conn, account.hex, time.time(), stale_after)

    def update_job(self, job_id: str, *, done: int, total: int, new: int) -> bool:
        """Record progress and refresh the heartbeat; False if the job is no longer running."""
        with self._shared.write() as conn:
            return jobs.update(conn, job_id, time.time(), done, total, new)

    def heartbeat(self, job_id: str) -> bool:
        """Say the job's worker is alive; False if the job is no longer running."""
        with self._shared.write() as conn:
            return jobs.heartbeat(conn, job_id, time.time())

    def finish_job(
        self,
        job_id: str,
        *,
        error: str | None = None,
        new: int | None = None,
        failed: bool | None = None,
    ) -> bool:
        """End the job; False if it was no longer running.

        The state is "failed" when `error` is given, "done" otherwise; `failed=False` keeps
        it "done" while recording `error` as a warning (say, a few messages skipped).
        """
        if failed is None:
            failed = error is not None
        state = "failed" if failed else "done"
        with self._shared.write() as conn:
            return jobs.finish(conn, job_id, time.time(), state, error, new)

    def get_job(self, account: AccountKey, job_id: str, *, stale_after: float = 30.0) -> Job | None:
        """The job if it belongs to this account; a silent running one is marked failed."""
        now = time.time()
        with self._shared.read() as conn:
            job = jobs.get(conn, account.hex, job_id)
        if job is None or not jobs.is_stale(job, now, stale_after):
            return job
        try:
            with self._shared.write() as conn:
                jobs.fail_if_stale(conn, job_id, now, stale_after)
                return jobs.get(conn, account.hex, job_id)
        except sqlite3.Error:  # say so even when it cannot be written down (a full disk)
            return dataclasses.replace(job, state="failed", error=jobs.STALE_ERROR)

    # -- protocol logs ------------------------------------------------------------------

    def save_log(
        self,
        account: AccountKey,
        operation: str,
        lines: Sequence[str],
        *,
        ok: bool,
        started_at: datetime | None = None,
    ) -> None:
        """Keep an operation's redacted log; only the newest `logs.KEEP_LOGS` are kept."""
        moment = started_at.timestamp() if started_at is not None else time.time()
        with self._shared.write() as conn:
            _register(conn, account)
            logs.save(conn, account.hex, operation, lines, ok, moment)

    def recent_logs(self, account: AccountKey, limit: int = 10) -> list[LogRecord]:
        """The account's latest logs, newest first."""
        with self._shared.read() as conn:
            return logs.recent(conn, account.hex, limit)

    # -- server-side sessions -----------------------------------------------------------

    def create_session(self, account: AccountKey) -> str:
        """A new random session id bound to the account."""
        with self._shared.write() as conn:
            _register(conn, account)
            return sessions.create(conn, account.hex, time.time())

    def touch_session(self, sid: str, idle_timeout: float) -> bool:
        """True (and the idle clock reset) if the session exists and was used recently."""
        with self._shared.write() as conn:
            return sessions.touch(conn, sid, time.time(), idle_timeout)

    def session_account(self, sid: str) -> AccountKey | None:
        """The account a session belongs to, or None if there is no such session."""
        with self._shared.read() as conn:
            found = sessions.account_of(conn, sid)
        return AccountKey(*found) if found else None

    def revoke_session(self, sid: str) -> None:
        with self._shared.write() as conn:
            sessions.revoke(conn, sid)

    def purge_sessions(self, idle_timeout: float) -> int:
        """Delete sessions idle longer than `idle_timeout`; how many were deleted."""
        with self._shared.write() as conn:
            return sessions.purge(conn, time.time(), idle_timeout)

    # -- login rate limits --------------------------------------------------------------

    def record_login_failure(self, scope_key: str, window_seconds: float) -> int:
        """Count a failed login; the failures within the window, this one included."""
        with self._shared.write() as conn:
            return sessions.record_failure(conn, scope_key, time.time(), window_seconds)

    def login_failures(self, scope_key: str, window_seconds: float) -> int:
        with self._shared.read() as conn:
            return sessions.failures(conn, scope_key, time.time(), window_seconds)

    def clear_login_failures(self, scope_key: str) -> None:
        with self._shared.write() as conn:
            sessions.clear_failures(conn, scope_key)


def _register(conn: sqlite3.Connection, account: AccountKey) -> None:
    conn.execute(
        "INSERT OR IGNORE INTO accounts (key, pop3_host, pop3_port, username, created_at) "
        "VALUES (?, ?, ?, ?, ?)",
        (account.hex, account.pop3_host, account.pop3_port, account.username, time.time()),
    )


def _private_dir(path: Path) -> None:
    """Create the directory owner-only; an existing one is left as the admin made it."""
    path.mkdir(mode=0o700, parents=True, exist_ok=True)
