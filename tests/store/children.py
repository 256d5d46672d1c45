"""Child processes for the store's durability and concurrency tests.

Run as `python -m tests.store.children COMMAND DATA_DIR ...` from the repository root, so
each child is a real separate process with its own connections (and can be SIGKILLed).
Results go to stdout, one JSON value per line, flushed as they happen.
"""

from __future__ import annotations

import json
import os
import signal
import sys
import threading
import time
from pathlib import Path

from app.store import AccountKey, Store
from tests.store.conftest import ALICE, message


def account_for(index: int) -> AccountKey:
    return AccountKey("pop.example.org", 995, f"user{index}")


def emit(value: object) -> None:
    sys.stdout.write(json.dumps(value) + "\n")
    sys.stdout.flush()


def add_then_die(data_dir: Path, count: int) -> None:
    """Add one batch, report its ids, and die by SIGKILL at once: no close, no cleanup."""
    store = Store(data_dir)
    ids = store.mailbox(ALICE).add_messages([message(f"k{i}") for i in range(count)])
    emit(ids)
    os.kill(os.getpid(), signal.SIGKILL)


def add_forever(data_dir: Path, run: int) -> None:
    """Add batches until killed, reporting each batch's uids once add_messages returned."""
    store = Store(data_dir)
    mailbox = store.mailbox(ALICE)
    body = os.urandom(256 * 1024)  # big enough that a kill often lands mid-write
    for batch in range(10**6):
        uids = [f"r{run}-b{batch}-{i}" for i in range(4)]
        mailbox.add_messages(
            [message(uid, raw=uid.encode() + body, body_text=f"word{batch}") for uid in uids]
        )
        emit(uids)


def hammer(data_dir: Path, worker: int, threads: int, batches: int) -> None:
    """Several threads add overlapping batches to a shared and an own account while reading."""
    store = Store(data_dir)
    errors: list[str] = []

    def run(thread: int) -> None:
        try:
            for b in range(batches):
                shared = store.mailbox(ALICE)
                # Every worker and thread adds the same uids: each must be stored once.
                shared.add_messages([message(f"shared-{b}-{i}") for i in range(5)])
                own = store.mailbox(account_for(worker))
                own.add_messages([message(f"own-{thread}-{b}-{i}") for i in range(3)])
                shared.page(1, query="body")
                shared.count()
                store.start_job(ALICE)
                store.save_log(ALICE, "fetch", [f"{worker}/{thread}/{b}"], ok=True)
        except Exception as exc:  # reported to the parent, which fails the test
            errors.append(f"{type(exc).__name__}: {exc}")

    workers = [threading.Thread(target=run, args=(t,)) for t in range(threads)]
    for thread in workers:
        thread.start()
    for thread in workers:
        thread.join()
    store.close()
    emit(errors)


def start_job_at(data_dir: Path, moment: float) -> None:
    """Wait for a shared wall-clock moment, then race the other children to start a job."""
    store = Store(data_dir)
    store.mailbox(ALICE)  # opens (and migrates) before the race
    while time.time() < moment:
        time.sleep(0.001)
    emit(store.start_job(ALICE))
    store.close()


def open_mailbox_at(data_dir: Path, moment: float, index: int) -> None:
    """Race other children to create and migrate the same brand-new mailbox."""
    while time.time() < moment:
        time.sleep(0.001)
    store = Store(data_dir)
    ids = store.mailbox(ALICE).add_messages([message(f"first-{index}")])
    store.close()
    emit(ids)


def main(argv: list[str]) -> None:
    command, data_dir, *rest = argv
    path = Path(data_dir)
    if command == "add-then-die":
        add_then_die(path, int(rest[0]))
    elif command == "add-forever":
        add_forever(path, int(rest[0]))
    elif command == "hammer":
        hammer(path, int(rest[0]), int(rest[1]), int(rest[2]))
    elif command == "start-job-at":
        start_job_at(path, float(rest[0]))
    elif command == "open-mailbox-at":
        open_mailbox_at(path, float(rest[0]), int(rest[1]))
    else:
        raise SystemExit(f"unknown command {command}")


if __name__ == "__main__":
    main(sys.argv[1:])
