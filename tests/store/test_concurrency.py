"""Several worker processes and their threads share the store: nobody sees "database is
locked", no message is lost or duplicated, and racing job starts agree on one job."""

from __future__ import annotations

import threading
import time
from pathlib import Path

from app.store import Store
from tests.store import spawn
from tests.store.children import account_for
from tests.store.conftest import ALICE, message


def test_processes_and_threads_add_and_read_at_once_without_errors_or_losses(
    data_dir: Path,
) -> None:
    processes, threads, batches = 3, 3, 6
    children = [spawn.start("hammer", data_dir, w, threads, batches) for w in range(processes)]
    reports = [spawn.finish(child) for child in children]

    assert [values for _, values in reports] == [[[]]] * processes  # no errors anywhere
    with Store(data_dir) as store:
        shared = store.mailbox(ALICE)
        assert shared.count() == batches * 5  # everyone added the same uids: stored once
        assert len(shared.known_uids()) == batches * 5
        for worker in range(processes):
            assert store.mailbox(account_for(worker)).count() == threads * batches * 3
        assert len(store.recent_logs(ALICE, limit=100)) == 20


def test_threads_sharing_one_store_lose_nothing(store: Store) -> None:
    mailbox = store.mailbox(ALICE)
    errors: list[BaseException] = []

    def add(thread: int) -> None:
        try:
            for batch in range(10):
                mailbox.add_messages([message(f"t{thread}-{batch}-{i}") for i in range(3)])
                mailbox.page(1, query="body")
                mailbox.unread_count()
        except BaseException as exc:
            errors.append(exc)

    workers = [threading.Thread(target=add, args=(t,)) for t in range(8)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()

    assert errors == []
    assert mailbox.count() == mailbox.unread_count() == 8 * 10 * 3
    assert mailbox.page(per_page=500).total == 240


def test_racing_processes_starting_a_job_all_get_the_same_one(data_dir: Path) -> None:
    Store(data_dir).close()  # the shared database exists before the race
    moment = time.time() + 1.5  # after every child has started up
    children = [spawn.start("start-job-at", data_dir, moment) for _ in range(6)]
    results = [values[0] for _, values in map(spawn.finish, children)]

    assert len({job_id for job_id, _ in results}) == 1  # type: ignore[misc]
    assert sorted(created for _, created in results) == [False] * 5 + [True]  # type: ignore[misc]


def test_racing_processes_create_and_migrate_a_new_mailbox_once(data_dir: Path) -> None:
    moment = time.time() + 1.5
    children = [spawn.start("open-mailbox-at", data_dir, moment, i) for i in range(6)]
    results = [values[0] for _, values in map(spawn.finish, children)]

    assert all(len(ids) == 1 for ids in results)  # type: ignore[arg-type]
    with Store(data_dir) as store:
        assert store.mailbox(ALICE).count() == 6
