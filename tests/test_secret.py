"""The generated secret key: made once, private, shared by every worker."""

from __future__ import annotations

import multiprocessing
import stat

from app.secret import KEY_FILE, load_or_create_secret_key


def test_key_is_created_once_with_mode_0600(tmp_path):
    first = load_or_create_secret_key(tmp_path)
    assert load_or_create_secret_key(tmp_path) == first
    assert len(first) >= 32
    assert stat.S_IMODE((tmp_path / KEY_FILE).stat().st_mode) == 0o600


def _load(path, queue):
    queue.put(load_or_create_secret_key(path))


def test_workers_starting_together_agree_on_one_key(tmp_path):
    context = multiprocessing.get_context("fork")
    queue = context.Queue()
    workers = [context.Process(target=_load, args=(tmp_path, queue)) for _ in range(6)]
    for worker in workers:
        worker.start()
    keys = {queue.get(timeout=20) for _ in workers}
    for worker in workers:
        worker.join()
    assert len(keys) == 1
    assert not [p for p in tmp_path.iterdir() if p.name != KEY_FILE]
