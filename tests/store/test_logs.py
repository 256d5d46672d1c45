"""Protocol logs: the newest few per account, newest first, lines kept verbatim."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from app.store import Store
from tests.store.conftest import ALICE, BOB


def test_logs_read_back_newest_first(store: Store) -> None:
    store.save_log(ALICE, "login", ["C: USER alice", "S: +OK"], ok=True)
    store.save_log(ALICE, "fetch", ["C: STAT", "S: -ERR no"], ok=False)

    [newest, oldest] = store.recent_logs(ALICE)
    assert (newest.operation, newest.ok, newest.lines) == (
        "fetch",
        False,
        ["C: STAT", "S: -ERR no"],
    )
    assert (oldest.operation, oldest.ok) == ("login", True)
    assert abs(newest.started_at - datetime.now(UTC)) < timedelta(minutes=1)


def test_only_the_newest_twenty_logs_are_kept(store: Store) -> None:
    for n in range(25):
        store.save_log(ALICE, f"op{n}", [str(n)], ok=True)

    logs = store.recent_logs(ALICE, limit=100)
    assert [log.operation for log in logs] == [f"op{n}" for n in range(24, 4, -1)]


def test_limit_caps_how_many_are_returned(store: Store) -> None:
    for n in range(5):
        store.save_log(ALICE, f"op{n}", [], ok=True)

    assert [log.operation for log in store.recent_logs(ALICE, limit=2)] == ["op4", "op3"]


def test_logs_are_per_account_and_pruning_spares_other_accounts(store: Store) -> None:
    store.save_log(BOB, "bob's", ["x"], ok=True)
    for n in range(25):
        store.save_log(ALICE, f"op{n}", [], ok=True)

    assert [log.operation for log in store.recent_logs(BOB)] == ["bob's"]
    assert all(log.operation != "bob's" for log in store.recent_logs(ALICE, limit=100))


def test_lines_are_kept_verbatim(store: Store) -> None:
    lines = ["multi\nline", "Тема: привет", "", "tab\there", "S: +OK ***"]
    store.save_log(ALICE, "send", lines, ok=True)

    assert store.recent_logs(ALICE)[0].lines == lines


def test_a_given_start_time_is_kept(store: Store) -> None:
    started = datetime(2024, 2, 3, 4, 5, 6, tzinfo=UTC)
    store.save_log(ALICE, "fetch", [], ok=True, started_at=started)

    assert store.recent_logs(ALICE)[0].started_at == started
