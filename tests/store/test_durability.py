"""Once add_messages returns, the batch is on disk: a process killed with SIGKILL at any
moment loses no committed batch and leaves no half-written one."""

from __future__ import annotations

import json
import random
import sqlite3
import threading
import time
from collections import Counter
from pathlib import Path

from app.store import Store
from tests.store import spawn
from tests.store.conftest import ALICE


def test_a_batch_survives_sigkill_right_after_add_messages_returns(data_dir: Path) -> None:
    code, [ids] = spawn.finish(spawn.start("add-then-die", data_dir, 25))

    assert code == -9  # killed, never closed its connections
    with Store(data_dir) as store:
        mailbox = store.mailbox(ALICE)
        assert mailbox.count() == 25
        assert {m.id for m in mailbox.page(per_page=100).items} == set(ids)  # type: ignore[arg-type]
        assert all(mailbox.raw(i) for i in ids)  # type: ignore[union-attr]


def kill_midway(data_dir: Path, run: int, seconds: float) -> list[list[str]]:
    """Run add-forever for about `seconds`, SIGKILL it, return the batches it reported."""
    child = spawn.start("add-forever", data_dir, run)
    reported: list[list[str]] = []

    def read() -> None:
        assert child.stdout is not None
        for line in child.stdout:
            if line.endswith("\n"):
                reported.append(json.loads(line))

    reader = threading.Thread(target=read)
    reader.start()
    deadline = time.monotonic() + 30
    while not reported and time.monotonic() < deadline:  # let it get going first
        time.sleep(0.01)
    time.sleep(seconds)
    child.kill()
    child.wait()
    reader.join()
    assert child.stdout is not None and child.stderr is not None
    child.stdout.close()
    child.stderr.close()
    assert child.returncode == -9
    return reported


def test_a_kill_at_any_moment_loses_no_committed_batch_and_leaves_no_partial_one(
    data_dir: Path,
) -> None:
    rng = random.Random(7)
    committed: list[list[str]] = []
    for run in range(4):
        committed += kill_midway(data_dir, run, rng.uniform(0.05, 0.4))

    with Store(data_dir) as store:
        mailbox = store.mailbox(ALICE)
        items = []
        first = mailbox.page(per_page=500)
        for number in range(1, first.pages + 1):  # a fast machine commits more than one page
            items += mailbox.page(number, per_page=500).items
        uids = {m.uid for m in items}
        # Every batch the child saw committed is there...
        for batch in committed:
            assert set(batch) <= uids
        # ...every stored batch is whole, and every stored message complete.
        assert set(Counter(uid.rsplit("-", 1)[0] for uid in uids).values()) == {4}
        for item in items:
            raw = mailbox.raw(item.id)
            assert raw is not None
            assert len(raw) == item.size
            assert raw.startswith(item.uid.encode())
        assert first.total == mailbox.count() == len(uids) == len(items)
        last_batch = committed[-1][0].split("-")[1]  # "r3-b12-0" -> "b12", searchable as word12
        assert mailbox.page(query=f"word{last_batch[1:]}").total >= 4
        path = store.mailbox_path(ALICE)
    check = sqlite3.connect(path)
    try:
        assert check.execute("PRAGMA integrity_check").fetchone() == ("ok",)
    finally:
        check.close()


def test_mail_databases_use_wal_and_full_synchronous_commits(store: Store) -> None:
    mailbox = store.mailbox(ALICE)
    mailbox.add_messages([])
    # The mechanism behind power-loss durability: WAL, and an fsync at every commit.
    with mailbox._db.connection() as conn:
        assert conn.execute("PRAGMA journal_mode").fetchone() == ("wal",)
        assert conn.execute("PRAGMA synchronous").fetchone() == (2,)  # FULL


def test_the_write_ahead_log_is_checkpointed_at_64_mb_not_at_every_4_mb(store: Store) -> None:
    """SQLite's default (1,000 pages) copied a big fetch into the database, with an fsync,
    in the middle of its download."""
    with store.mailbox(ALICE)._db.connection() as conn:
        page_size = conn.execute("PRAGMA page_size").fetchone()[0]
        pages = conn.execute("PRAGMA wal_autocheckpoint").fetchone()[0]
    assert pages * page_size == 64 * 1024 * 1024
