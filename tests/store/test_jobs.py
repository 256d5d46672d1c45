"""Fetch jobs: one running per account, progress visible to every worker, a silent worker's
job declared failed so a new fetch can start, and nobody reads another account's job."""

from __future__ import annotations

import time

from app.store import Store
from tests.store.conftest import ALICE, BOB


def test_starting_twice_returns_the_running_job(store: Store) -> None:
    first, created = store.start_job(ALICE)
    again, created_again = store.start_job(ALICE)

    assert created is True
    assert (again, created_again) == (first, False)


def test_each_account_gets_its_own_job(store: Store) -> None:
    alice_job, _ = store.start_job(ALICE)
    bob_job, bob_created = store.start_job(BOB)

    assert bob_created is True
    assert bob_job != alice_job


def test_a_new_job_reads_as_running_with_no_progress(store: Store) -> None:
    job_id, _ = store.start_job(ALICE)
    job = store.get_job(ALICE, job_id)

    assert job is not None
    assert job.as_json() == {"state": "running", "done": 0, "total": 0, "new": 0, "error": None}
    assert job.running


def test_progress_updates_are_visible(store: Store) -> None:
    job_id, _ = store.start_job(ALICE)

    assert store.update_job(job_id, done=3, total=10, new=2) is True
    job = store.get_job(ALICE, job_id)
    assert job is not None
    assert (job.state, job.done, job.total, job.new) == ("running", 3, 10, 2)


def test_finishing_marks_the_job_done_and_allows_a_new_one(store: Store) -> None:
    job_id, _ = store.start_job(ALICE)
    store.update_job(job_id, done=10, total=10, new=4)

    assert store.finish_job(job_id) is True
    job = store.get_job(ALICE, job_id)
    assert job is not None
    assert job.as_json() == {"state": "done", "done": 10, "total": 10, "new": 4, "error": None}
    assert job.finished_at is not None
    next_id, created = store.start_job(ALICE)
    assert created is True
    assert next_id != job_id


def test_finishing_with_an_error_marks_the_job_failed(store: Store) -> None:
    job_id, _ = store.start_job(ALICE)

    store.finish_job(job_id, error="-ERR mailbox locked", new=1)
    job = store.get_job(ALICE, job_id)
    assert job is not None
    assert (job.state, job.error, job.new) == ("failed", "-ERR mailbox locked", 1)


def test_a_job_leaves_running_only_once(store: Store) -> None:
    job_id, _ = store.start_job(ALICE)
    store.finish_job(job_id, error="boom")

    assert store.finish_job(job_id) is False
    assert store.update_job(job_id, done=1, total=1, new=1) is False
    assert store.heartbeat(job_id) is False
    assert store.get_job(ALICE, job_id).state == "failed"  # type: ignore[union-attr]


def test_a_stale_running_job_is_failed_and_replaced(store: Store) -> None:
    old_id, _ = store.start_job(ALICE)
    time.sleep(0.05)

    new_id, created = store.start_job(ALICE, stale_after=0.01)
    assert created is True
    assert new_id != old_id
    old = store.get_job(ALICE, old_id)
    assert old is not None
    assert (old.state, old.error) == ("failed", "the worker running it stopped")
    assert store.get_job(ALICE, new_id).state == "running"  # type: ignore[union-attr]


def test_a_stale_job_reads_as_failed_and_its_worker_learns_it_lost_it(store: Store) -> None:
    job_id, _ = store.start_job(ALICE)
    time.sleep(0.05)

    job = store.get_job(ALICE, job_id, stale_after=0.01)
    assert job is not None
    assert (job.state, job.error) == ("failed", "the worker running it stopped")
    assert store.update_job(job_id, done=1, total=2, new=1) is False  # the worker should stop
    assert store.heartbeat(job_id) is False


# Beats come well inside the stale limit, which a slow machine's pauses cannot reach, yet
# the job outlives that limit three times over.
BEAT, STALE = 0.4, 1.0


def test_heartbeats_keep_a_long_job_alive(store: Store) -> None:
    job_id, _ = store.start_job(ALICE)
    for _ in range(3):
        time.sleep(BEAT)
        assert store.heartbeat(job_id) is True

    assert store.start_job(ALICE, stale_after=STALE) == (job_id, False)
    assert store.get_job(ALICE, job_id, stale_after=STALE).state == "running"  # type: ignore[union-attr]


def test_progress_updates_count_as_heartbeats(store: Store) -> None:
    job_id, _ = store.start_job(ALICE)
    for done in range(3):
        time.sleep(BEAT)
        store.update_job(job_id, done=done, total=3, new=0)

    assert store.start_job(ALICE, stale_after=STALE) == (job_id, False)


def test_a_job_is_invisible_to_other_accounts(store: Store) -> None:
    job_id, _ = store.start_job(ALICE)

    assert store.get_job(BOB, job_id) is None
    assert store.get_job(ALICE, "no-such-job") is None


def test_old_finished_jobs_are_pruned(store: Store) -> None:
    ids = []
    for _ in range(25):
        job_id, _ = store.start_job(ALICE)
        store.finish_job(job_id)
        ids.append(job_id)
    store.start_job(ALICE)

    assert store.get_job(ALICE, ids[0]) is None
    assert store.get_job(ALICE, ids[-1]) is not None


def test_a_job_can_finish_done_with_a_warning(store: Store) -> None:
    job_id, _ = store.start_job(ALICE)

    store.finish_job(job_id, error="1 message over the size limit skipped", new=3, failed=False)
    job = store.get_job(ALICE, job_id)
    assert job is not None
    assert (job.state, job.error, job.new) == ("done", "1 message over the size limit skipped", 3)


def test_a_job_can_be_failed_without_a_message(store: Store) -> None:
    job_id, _ = store.start_job(ALICE)

    store.finish_job(job_id, failed=True)
    assert store.get_job(ALICE, job_id).state == "failed"  # type: ignore[union-attr]


def test_a_stale_job_reads_failed_even_when_that_cannot_be_written(store, monkeypatch):
    import sqlite3
    import time

    from app.store import jobs as job_rows

    job_id, _ = store.start_job(ALICE, stale_after=0.05)
    time.sleep(0.1)

    def disk_full(*_args: object) -> None:
        raise sqlite3.OperationalError("database or disk is full")

    monkeypatch.setattr(job_rows, "fail_if_stale", disk_full)
    job = store.get_job(ALICE, job_id, stale_after=0.05)
    assert job is not None and job.state == "failed"
    assert job.error == job_rows.STALE_ERROR
