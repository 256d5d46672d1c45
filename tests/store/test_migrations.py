"""Schema versions: a new database is brought to the latest version, a current one is left
alone, pending migrations apply in order and all-or-nothing, a newer one is refused."""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from pathlib import Path

import pytest

from app.store import SchemaError, Store
from app.store.database import Database, Migration, migrate, script
from app.store.schema import MAILBOX_MIGRATIONS, SHARED_MIGRATIONS
from tests.store.conftest import ALICE, message


def inspect(path: Path) -> tuple[int, set[str]]:
    """(user_version, table names) read by an independent connection."""
    conn = sqlite3.connect(path)
    try:
        version = conn.execute("PRAGMA user_version").fetchone()[0]
        names = {
            row[0] for row in conn.execute("SELECT name FROM sqlite_schema WHERE type = 'table'")
        }
    finally:
        conn.close()
    return version, names


def test_new_databases_are_migrated_to_the_latest_version(store: Store, data_dir: Path) -> None:
    store.mailbox(ALICE).count()
    store.recent_logs(ALICE)

    version, tables = inspect(store.mailbox_path(ALICE))
    assert version == len(MAILBOX_MIGRATIONS)
    assert {"messages", "raw_messages", "messages_fts", "deleted_uids", "counters"} <= tables
    version, tables = inspect(data_dir / "pochta.sqlite3")
    assert version == len(SHARED_MIGRATIONS)
    assert {"accounts", "jobs", "logs", "sessions", "login_failures"} <= tables


def test_reopening_applies_nothing_and_keeps_the_data(data_dir: Path) -> None:
    with Store(data_dir) as store:
        store.mailbox(ALICE).add_messages([message("a")])
        path = store.mailbox_path(ALICE)
    with Store(data_dir) as store:
        assert store.mailbox(ALICE).count() == 1
    conn = sqlite3.connect(path)
    try:
        assert migrate(conn, MAILBOX_MIGRATIONS) == 0
    finally:
        conn.close()


def table_v1(conn: sqlite3.Connection) -> None:
    conn.execute("CREATE TABLE one (x)")


def open_with(path: Path, migrations: Sequence[Migration]) -> int:
    db = Database(path, migrations)
    try:
        with db.read() as conn:
            return int(conn.execute("PRAGMA user_version").fetchone()[0])
    finally:
        db.close()


def test_pending_migrations_apply_in_order(tmp_path: Path) -> None:
    path = tmp_path / "db.sqlite3"
    assert open_with(path, [table_v1]) == 1
    applied: list[str] = []

    def second(conn: sqlite3.Connection) -> None:
        applied.append("second")
        conn.execute("INSERT INTO one VALUES (2)")

    def third(conn: sqlite3.Connection) -> None:
        applied.append("third")
        conn.execute("ALTER TABLE one ADD COLUMN y")

    assert open_with(path, [table_v1, second, third]) == 3
    assert applied == ["second", "third"]
    assert open_with(path, [table_v1, second, third]) == 3
    assert applied == ["second", "third"]  # nothing re-run


def test_a_failing_migration_leaves_the_database_as_it_was(tmp_path: Path) -> None:
    path = tmp_path / "db.sqlite3"
    open_with(path, [table_v1])
    broken = script("CREATE TABLE two (x)", "INSERT INTO nowhere VALUES (1)")

    with pytest.raises(sqlite3.OperationalError, match="nowhere"):
        open_with(path, [table_v1, script("CREATE TABLE half (x)"), broken])
    version, tables = inspect(path)
    assert version == 1
    assert "half" not in tables
    assert "two" not in tables


def test_a_database_from_a_newer_pochta_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "db.sqlite3"
    open_with(path, [table_v1, script("CREATE TABLE later (x)")])

    with pytest.raises(SchemaError, match="version 2"):
        open_with(path, [table_v1])


def test_an_empty_file_is_taken_as_a_new_database(tmp_path: Path) -> None:
    path = tmp_path / "db.sqlite3"
    path.touch()

    assert open_with(path, [table_v1]) == 1
