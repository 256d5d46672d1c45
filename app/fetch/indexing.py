"""Indexing fetched mail in a helper process, beside the download and the store's writes.

Working out a message's inbox and search fields (`index_fields`) is pure Python, so in the
fetching process it holds the GIL: measured on 2000 messages of 4 KB, it took half of the
fetch's own time, and neither the download nor the store's commit of the previous batch
could use the second CPU meanwhile. Handed to a helper process, it runs on that CPU while
the fetch downloads the next batch and the store writes the last one.

One helper per Pochta process (about 50 MB with multiprocessing's resource tracker), started
by the first fetch big enough to need it and kept for the next. It is only a speed-up: a
batch it cannot index (it would not start, it died, the machine has one CPU) is indexed in
the calling thread, as it was before there was one.
"""

from __future__ import annotations

import logging
import multiprocessing
import os
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ProcessPoolExecutor

from app.messages import IndexFields, index_fields

log = logging.getLogger(__name__)

# A batch smaller than both of these is indexed in place: shipping it to the helper and back
# would cost about what it saves. (Indexing costs by the message and by the byte: a few
# heads of big messages, 64 KB of attachment lines each, are worth sending.)
MIN_MESSAGES = 32
MIN_BYTES = 128 * 1024
# A helper that keeps dying (say, killed for memory) is not started over and over.
MAX_RESTARTS = 3
# How often the helper checks that the process it works for is still there.
OWNER_CHECK_SECONDS = 1.0

Indexed = Callable[[], list[IndexFields]]


def index_all(heads: Sequence[bytes]) -> list[IndexFields]:
    """What the helper runs for one batch (a module-level function, so it can be pickled)."""
    return [index_fields(head) for head in heads]


def index_here(heads: Sequence[bytes]) -> Indexed:
    """Index `heads` in the calling thread, now; the fields as `IndexHelper.submit` gives
    them."""
    fields = index_all(heads)
    return lambda: fields


def watch_owner(owner: int) -> None:
    """Run in the helper at its start: exit once `owner` has gone.

    A pool's worker holds both ends of its task pipe, so when the process it works for is
    killed outright (a gunicorn worker past its timeout, the OOM killer) it never sees the
    end of its input and would wait forever.
    """

    def watch() -> None:
        while True:
            time.sleep(OWNER_CHECK_SECONDS)
            try:
                os.kill(owner, 0)
            except ProcessLookupError:
                os._exit(0)

    threading.Thread(target=watch, name="pochta-owner-watch", daemon=True).start()


def _usable_cpus() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


class IndexHelper:
    """Indexes batches of message heads, in the helper process when that is worthwhile."""

    def __init__(
        self, *, min_messages: int = MIN_MESSAGES, min_bytes: int = MIN_BYTES,
        cpus: int | None = None,
    ):
        self.min_messages = min_messages
        self.min_bytes = min_bytes
        self.enabled = (cpus if cpus is not None else _usable_cpus()) >= 2
        self.restarts = 0
        self._lock = threading.Lock()
        self._pool: ProcessPoolExecutor | None = None

    def submit(self, heads: Sequence[bytes]) -> Indexed:
        """Start indexing `heads`; the call returned waits for their fields, in order."""
        heads = list(heads)
        pool = self._pool_for(heads)
        if pool is None:
            return index_here(heads)
        try:
            future: Future[list[IndexFields]] = pool.submit(index_all, heads)
        except Exception:  # a pool already broken (its process died while idle)
            self._discard(pool)
            return lambda: index_all(heads)

        def indexed() -> list[IndexFields]:
            try:
                return future.result()
            except Exception:  # the helper died on the way: do the batch here
                log.warning("the index helper failed; indexing a batch in the worker")
                self._discard(pool)
                return index_all(heads)

        return indexed

    def _pool_for(self, heads: list[bytes]) -> ProcessPoolExecutor | None:
        worthwhile = (len(heads) >= self.min_messages
                      or sum(map(len, heads)) >= self.min_bytes)
        if not self.enabled or not worthwhile:
            return None
        with self._lock:
            if self._pool is None and self.restarts <= MAX_RESTARTS:
                try:
                    self._pool = _start_pool()
                except Exception:  # no processes to be had: index in the worker
                    log.warning("could not start the index helper", exc_info=True)
                    self.restarts = MAX_RESTARTS + 1
            return self._pool

    def _discard(self, pool: ProcessPoolExecutor) -> None:
        with self._lock:
            if self._pool is pool:
                self._pool = None
                self.restarts += 1
        pool.shutdown(wait=False, cancel_futures=True)

    def helper_pids(self) -> list[int]:
        """The helper's process ids (none before the first big batch)."""
        with self._lock:
            pool = self._pool
        processes = getattr(pool, "_processes", None) or {}
        return list(processes)

    def close(self) -> None:
        with self._lock:
            pool, self._pool = self._pool, None
        if pool is not None:
            pool.shutdown(wait=True, cancel_futures=True)


def _start_pool() -> ProcessPoolExecutor:
    """A one-process pool of a fresh interpreter ("spawn"): forking the threaded web worker
    itself could copy a lock that some other thread holds at that moment."""
    return ProcessPoolExecutor(
        max_workers=1, mp_context=multiprocessing.get_context("spawn"),
        initializer=watch_owner, initargs=(os.getpid(),),
    )


_shared: IndexHelper | None = None
_shared_lock = threading.Lock()


def shared_helper() -> IndexHelper:
    """The process's helper, made on first use (in each gunicorn worker, after the fork)."""
    global _shared
    with _shared_lock:
        if _shared is None:
            _shared = IndexHelper()
        return _shared
