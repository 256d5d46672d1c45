"""A process's first connection to a database file sets the file up (creates it, switches it
to WAL, migrates it) under its directory's lock; later connections do not wait for it."""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Callable
from pathlib import Path

from app.store.database import Database, directory_lock, script

MIGRATIONS = [script("CREATE TABLE notes (body TEXT)")]


def start(action: Callable[[], sqlite3.Connection]) -> tuple[threading.Thread, list]:
    """Run `action` in a thread; the thread and the list its result lands in."""
    got: list[sqlite3.Connection] = []
    thread = threading.Thread(target=lambda: got.append(action()), daemon=True)
    thread.start()
    return thread, got


def test_a_first_connection_waits_while_another_opener_sets_up_the_directory(
    tmp_path: Path,
) -> None:
    db = Database(tmp_path / "new.sqlite3", MIGRATIONS)

    with directory_lock(tmp_path):  # as another process setting up a file there holds it
        opener, got = start(db.take)
        opener.join(0.5)
        assert opener.is_alive()
        assert not db.path.exists()
    opener.join(10)

    assert not opener.is_alive()
    conn = got[0]
    assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert conn.execute("PRAGMA user_version").fetchone()[0] == 1
    db.give_back(conn)
    db.close()


def test_once_set_up_a_process_opens_connections_without_the_lock(tmp_path: Path) -> None:
    db = Database(tmp_path / "new.sqlite3", MIGRATIONS)
    first = db.take()  # sets the file up

    with directory_lock(tmp_path):
        opener, got = start(db.take)  # the pool is empty: a second connection is opened
        opener.join(10)
        assert not opener.is_alive()

    second = got[0]
    assert second is not first
    second.execute("INSERT INTO notes VALUES ('written while the directory was locked')")
    assert first.execute("SELECT count(*) FROM notes").fetchone()[0] == 1
    for conn in (first, second):
        db.give_back(conn)
    db.close()
