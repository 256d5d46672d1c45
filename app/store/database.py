"""One SQLite file opened the same way everywhere: WAL, a long busy wait, migrations, a pool.

Several gunicorn workers and their threads share each file, so every connection waits up to
`BUSY_TIMEOUT` seconds for a lock instead of failing with "database is locked", and every
write transaction starts with `BEGIN IMMEDIATE` (a deferred one that later upgrades to a
writer can fail at once in WAL mode, busy wait or not). Connections are never shared between
threads: each operation borrows one from a small per-process pool and gives it back, which
costs microseconds where opening a fresh one costs about 0.4 ms. A pool inherited through
`fork()` is abandoned, never used or closed, as SQLite requires.

The schema is versioned with `PRAGMA user_version`: a database at version N has had the
first N migrations applied, each inside the same `BEGIN IMMEDIATE` transaction as the
version bump, so concurrent first openers apply them exactly once.

A process's first connection to a file sets it up (creates it, switches it to WAL, migrates
it) holding an exclusive lock on the file's directory. SQLite's own locks do not cover the
switch of a new file to WAL: first openers racing on it delete each other's rollback journal
and fail with "disk I/O error" (SQLITE_IOERR_DELETE_NOENT, seen with 20 users logging in to
a fresh instance at once).
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import sqlite3
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path

BUSY_TIMEOUT = 30.0
MAX_IDLE_CONNECTIONS = 4
JOURNAL_SIZE_LIMIT = 32 * 1024 * 1024  # a 40 MB message must not leave a 40 MB WAL behind
# Pages the write-ahead log may hold before a commit copies them into the database. The
# default (1,000 pages, 4 MB) made a big fetch copy and fsync its mail in the middle of the
# download; at 64 MB that happens between fetches, or when the last connection closes.
WAL_AUTOCHECKPOINT_PAGES = 16384

Migration = Callable[[sqlite3.Connection], None]

# Connections a forked child inherited: kept alive and untouched, since closing them in the
# child could disturb the parent's locks.
_inherited: list[sqlite3.Connection] = []


class SchemaError(RuntimeError):
    """The database file was written by a newer Pochta than this one."""


def script(*statements: str) -> Migration:
    """A migration made of plain SQL statements, run in order inside the migration's transaction.

    (`executescript` would commit the surrounding transaction first, so it is not used.)
    """

    def apply(conn: sqlite3.Connection) -> None:
        for statement in statements:
            conn.execute(statement)

    return apply


class Database:
    """A SQLite file, its migrations, and a pool of connections for this process."""

    def __init__(
        self,
        path: Path,
        migrations: Sequence[Migration],
        *,
        synchronous: str = "FULL",
        max_idle: int = MAX_IDLE_CONNECTIONS,
    ) -> None:
        self.path = path
        self._migrations = tuple(migrations)
        self._synchronous = synchronous
        self._max_idle = max_idle
        self._idle: list[sqlite3.Connection] = []
        self._lock = threading.Lock()
        self._pid = os.getpid()
        self._ready = False  # set up (created, WAL, migrated) as this process has seen
        self._setup_lock = threading.Lock()

    # -- transactions -------------------------------------------------------------------

    @contextlib.contextmanager
    def read(self) -> Iterator[sqlite3.Connection]:
        """A read transaction: every query inside sees the same snapshot."""
        with self.connection() as conn:
            conn.execute("BEGIN")
            try:
                yield conn
            finally:
                if conn.in_transaction:
                    conn.execute("COMMIT")

    @contextlib.contextmanager
    def write(self) -> Iterator[sqlite3.Connection]:
        """A write transaction holding the writer lock from the start; commits on success."""
        with self.connection() as conn:
            conn.execute("BEGIN IMMEDIATE")
            try:
                yield conn
            except BaseException:
                if conn.in_transaction:
                    conn.execute("ROLLBACK")
                raise
            conn.execute("COMMIT")

    # -- the pool -----------------------------------------------------------------------

    @contextlib.contextmanager
    def connection(self) -> Iterator[sqlite3.Connection]:
        """Borrow a connection for this thread's exclusive use until the block ends."""
        conn = self.take()
        try:
            yield conn
        finally:
            self.give_back(conn)

    def take(self) -> sqlite3.Connection:
        """Borrow a connection; pair with `give_back` (for holders that outlive a block)."""
        with self._lock:
            self._forget_if_forked()
            if self._idle:
                return self._idle.pop()
        return self._open()

    def give_back(self, conn: sqlite3.Connection) -> None:
        """Return a borrowed connection, or close it if it is unusable or the pool is full."""
        reusable = True
        if conn.in_transaction:
            try:
                conn.execute("ROLLBACK")
            except sqlite3.Error:
                reusable = False
        with self._lock:
            if reusable and os.getpid() == self._pid and len(self._idle) < self._max_idle:
                self._idle.append(conn)
                return
        conn.close()

    def release_idle(self) -> None:
        """Close the idle connections; the pool fills again with use."""
        with self._lock:
            idle, self._idle = self._idle, []
        for conn in idle:
            conn.close()

    def close(self) -> None:
        """Close the idle connections and stop pooling (borrowed ones close when given back)."""
        with self._lock:
            self._max_idle = 0
        self.release_idle()

    def _forget_if_forked(self) -> None:
        if os.getpid() != self._pid:
            _inherited.extend(self._idle)
            self._idle = []
            self._pid = os.getpid()

    # -- opening ------------------------------------------------------------------------

    def _open(self) -> sqlite3.Connection:
        if self._ready:
            return self._connect()
        with self._setup_lock, directory_lock(self.path.parent):
            if self._ready:
                return self._connect()
            created = self._create_file()
            conn = self._connect()
            try:
                migrate(conn, self._migrations)
            except BaseException:
                conn.close()
                raise
            self._ready = True
        if created:
            _sync_directory(self.path.parent)
        return conn

    def _connect(self) -> sqlite3.Connection:
        conn = sqlite3.connect(
            self.path,
            timeout=BUSY_TIMEOUT,
            isolation_level=None,  # explicit BEGIN/COMMIT only
            check_same_thread=False,  # the pool hands it to one thread at a time
        )
        try:
            self._configure(conn)
        except BaseException:
            conn.close()
            raise
        return conn

    def _create_file(self) -> bool:
        """Create the file owner-only before SQLite does (its -wal/-shm copy the mode).

        Only under the setup lock: closing any descriptor of a file drops every POSIX lock
        this process holds on it, SQLite's included, so the file is never opened here while
        a connection could be using it.
        """
        if self.path.exists():
            return False
        fd = os.open(self.path, os.O_CREAT | os.O_WRONLY, 0o600)
        os.close(fd)
        return True

    def _configure(self, conn: sqlite3.Connection) -> None:
        conn.execute(f"PRAGMA busy_timeout = {int(BUSY_TIMEOUT * 1000)}")
        _enable_wal(conn)
        conn.execute(f"PRAGMA synchronous = {self._synchronous}")
        conn.execute(f"PRAGMA journal_size_limit = {JOURNAL_SIZE_LIMIT}")
        conn.execute(f"PRAGMA wal_autocheckpoint = {WAL_AUTOCHECKPOINT_PAGES}")
        conn.execute("PRAGMA foreign_keys = ON")
        conn.execute("PRAGMA temp_store = MEMORY")
        conn.execute("PRAGMA cache_size = -8000")  # 8 MB: a batch of mail fits in it


@contextlib.contextmanager
def directory_lock(directory: Path) -> Iterator[None]:
    """Hold an exclusive lock on a directory: one setter-up at a time, across processes and
    threads alike (each holder opens its own descriptor, and flock excludes those too)."""
    fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)  # releases the lock


def migrate(conn: sqlite3.Connection, migrations: Sequence[Migration]) -> int:
    """Bring the schema up to date; return how many migrations this call applied."""
    target = len(migrations)
    if _user_version(conn) == target:
        return 0
    conn.execute("BEGIN IMMEDIATE")
    try:
        version = _user_version(conn)  # another process may have migrated meanwhile
        if version > target:
            raise SchemaError(
                f"{_describe(conn)} is at schema version {version}, newer than this "
                f"Pochta knows ({target}); upgrade Pochta instead"
            )
        for number in range(version + 1, target + 1):
            migrations[number - 1](conn)
            conn.execute(f"PRAGMA user_version = {number}")
    except BaseException:
        if conn.in_transaction:
            conn.execute("ROLLBACK")
        raise
    conn.execute("COMMIT")
    return target - version


def _user_version(conn: sqlite3.Connection) -> int:
    return int(conn.execute("PRAGMA user_version").fetchone()[0])


def _describe(conn: sqlite3.Connection) -> str:
    row = conn.execute("PRAGMA database_list").fetchone()
    return str(row[2]) if row and row[2] else "the database"


def _enable_wal(conn: sqlite3.Connection) -> None:
    """Switch to WAL (a persistent setting); first openers racing on a new file may retry."""
    deadline = time.monotonic() + BUSY_TIMEOUT
    while True:
        try:
            mode = conn.execute("PRAGMA journal_mode = WAL").fetchone()[0]
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) or time.monotonic() > deadline:
                raise
            time.sleep(0.01)
            continue
        if str(mode).lower() != "wal":
            raise sqlite3.OperationalError(f"could not switch to WAL (journal_mode={mode})")
        return


def _sync_directory(directory: Path) -> None:
    """Make a newly created file's directory entry durable."""
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
