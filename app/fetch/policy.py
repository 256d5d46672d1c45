"""What is new on the server, and when a message may be deleted from it.

The retriever (the POP3 client) only talks; this module decides, like getmail's split between
retriever and policy. The rules that keep mail safe:

* UIDL decides what is new; a server without UIDL falls back to a hash of the content.
* With `delete`, DELE is sent for a batch only after the destination has made that batch
  durable, and the server only really deletes at QUIT. A crash at any moment therefore leaves
  each message on the server, in the destination, or both; "both" is healed on the next run,
  which sees the UID as known and deletes it then. Never in neither, never stored twice.
* A message that fails (refused, over the size limit) is reported and the rest go on.
"""

from __future__ import annotations

import collections
import contextlib
import hashlib
import tempfile
from collections.abc import Callable, Iterator, Sequence
from concurrent import futures
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, BinaryIO, Protocol, TypeVar

from app.mail.errors import CommandRefused, MailError
from app.mail.pop3 import POP3Client
from app.sentences import N_, Sentence

SPOOL_IN_MEMORY = 4 * 1024 * 1024  # bigger messages spool to disk on their way in
BATCH_BYTES = 4 * 1024 * 1024
# Messages per commit: each costs an fsync, and the batches in flight are held in memory
# (BATCH_BYTES bounds them too). With two batches in flight, more per batch gained nothing
# measurable in bench case 1 (2000 messages of 4 KB).
BATCH_MESSAGES = 200
HASH_UID_PREFIX = "sha256:"


@dataclass
class Downloaded:
    """One message retrieved from the server, spooled (in memory when small)."""

    number: int
    uid: str
    size: int
    spool: BinaryIO

    def read(self) -> bytes:
        self.spool.seek(0)
        return self.spool.read()


Prepared = TypeVar("Prepared")


class Destination(Protocol[Prepared]):
    """Where fetched mail goes: the web app's store, or a directory of .eml files.
    `Prepared` is whatever the destination's `prepare` hands its own `deliver`."""

    def known_uids(self) -> set[str]:
        """UIDs already delivered (and ones the user deleted, so they are not fetched again)."""
        ...

    def prepare(self, batch: Sequence[Downloaded]) -> Prepared:
        """The work that needs no durability (say, indexing), done in the fetch's thread
        while the previous batch is being delivered."""
        ...

    def deliver(self, prepared: Prepared) -> int:
        """Make a prepared batch durable before returning (the caller DELEs it next); return
        how many were new. A UID that is already known must be a no-op. May run in a
        thread of its own, one batch at a time."""
        ...

    def spool_dir(self) -> Path | None:
        """Where big messages are spooled on their way (the same file system as the
        destination, so a full disk shows up here first); None for the system default."""
        ...


@dataclass
class Progress:
    """Where a fetch stands; handed to the progress callback after every batch."""

    total: int = 0
    done: int = 0
    new: int = 0


@dataclass
class FetchReport:
    """The outcome: how many were on the server, new, deleted, and what failed."""

    on_server: int = 0
    new: int = 0
    deleted: int = 0
    failures: list[str] = field(default_factory=list)


ProgressCallback = Callable[[Progress], None]


def _batches(
    numbers: Sequence[int], sizes: dict[int, int], max_count: int, max_bytes: int
) -> Iterator[list[int]]:
    """Runs of messages to make durable together: one commit and one fsync per batch is what
    makes a big fetch fast, and the byte bound keeps the spooled batch small in memory."""
    batch: list[int] = []
    held = 0
    for number in numbers:
        batch.append(number)
        held += sizes.get(number, 0)
        if len(batch) >= max_count or held >= max_bytes:
            yield batch
            batch, held = [], 0
    if batch:
        yield batch


class Fetcher:
    """One run of the policy over a connected, logged-in POP3 session."""

    def __init__(
        self,
        client: POP3Client,
        destination: Destination[Any],
        *,
        delete: bool,
        max_message_bytes: int,
        progress: ProgressCallback | None = None,
        batch_size: int = BATCH_MESSAGES,
    ):
        self.client = client
        self.destination = destination
        self.delete = delete
        self.max_message_bytes = max_message_bytes
        self.on_progress = progress or (lambda _progress: None)
        self.batch_size = batch_size
        self.report = FetchReport()
        self.progress = Progress()

    def run(self) -> FetchReport:
        """Fetch everything new, then QUIT (which is when deletions take effect)."""
        try:
            sizes = self.client.list()
            self.report.on_server = len(sizes)
            uids = self._uids()
            if uids is None:
                self._fetch_without_uidl(sizes)
            else:
                self._fetch_by_uid(sizes, uids)
            self._quit()
        except BaseException:
            # A session that broke still holds its socket: let go of it now, not whenever
            # the client is garbage-collected (a long-lived worker would pile them up).
            self.client.close()
            raise
        return self.report

    # -- deciding what is new ------------------------------------------------------------

    def _uids(self) -> dict[int, str] | None:
        caps = self.client.capabilities
        if caps.known and not caps.uidl:
            return None
        try:
            return self.client.uidl()
        except CommandRefused:
            return None

    def _fetch_by_uid(self, sizes: dict[int, int], uids: dict[int, str]) -> None:
        known = self.destination.known_uids()
        todo: list[int] = []
        stored: list[int] = []
        seen: set[str] = set()
        for number in sorted(uids):
            uid = uids[number]
            if uid in seen:  # a broken server listing one UID twice: take the first
                continue
            seen.add(uid)
            (stored if uid in known else todo).append(number)
        if self.delete and stored:
            # Durable here from an earlier run that could not finish its QUIT.
            self._dele(stored)
        todo = self._within_limit(todo, sizes)
        self.progress.total = len(todo)
        self.on_progress(self.progress)
        with _Overlapped(self) as deliveries:
            for batch in _batches(todo, sizes, self.batch_size, BATCH_BYTES):
                deliveries.submit(batch, self._retrieve(batch, lambda n: uids[n]))

    def _fetch_without_uidl(self, sizes: dict[int, int]) -> None:
        """Without UIDL every message must be read to know whether it is new."""
        known = self.destination.known_uids()
        numbers = self._within_limit(sorted(sizes), sizes)
        self.progress.total = len(numbers)
        self.on_progress(self.progress)
        for batch in _batches(numbers, sizes, self.batch_size, BATCH_BYTES):
            downloaded = self._retrieve(batch, None)
            fresh = [d for d in downloaded if d.uid not in known]
            already = [d for d in downloaded if d.uid in known]
            for item in already:
                item.spool.close()
            if self.delete and already:
                self._dele([item.number for item in already])
            self._deliver(batch, fresh)
            known.update(d.uid for d in fresh)

    def _within_limit(self, numbers: list[int], sizes: dict[int, int]) -> list[int]:
        fitting = []
        for number in numbers:
            size = sizes.get(number, 0)
            if size > self.max_message_bytes:
                self.report.failures.append(Sentence(
                    N_("message %(number)s is %(size)s bytes, over the limit of %(limit)s; "
                       "it stays on the server"),
                    number=number, size=size, limit=self.max_message_bytes,
                ))
            else:
                fitting.append(number)
        return fitting

    # -- moving mail -----------------------------------------------------------------

    def _open_spool(self, _number: int) -> BinaryIO:
        directory = self.destination.spool_dir()
        return tempfile.SpooledTemporaryFile(
            max_size=SPOOL_IN_MEMORY, dir=str(directory) if directory else None
        )

    def _retrieve(
        self, numbers: Sequence[int], uid_of: Callable[[int], str] | None
    ) -> list[Downloaded]:
        downloaded: list[Downloaded] = []
        try:
            for result in self.client.retr_many(numbers, self._open_spool):
                if result.error is not None or result.sink is None:
                    reason = result.error.summary() if result.error else "no data"
                    self.report.failures.append(
                        Sentence(N_("message %(number)s: %(reason)s"),
                                 number=result.number, reason=reason))
                    continue
                uid = uid_of(result.number) if uid_of else _content_uid(result.sink)
                downloaded.append(Downloaded(result.number, uid, result.size, result.sink))
        except BaseException:
            for item in downloaded:
                item.spool.close()
            raise
        return downloaded

    def _deliver(self, batch: Sequence[int], downloaded: list[Downloaded]) -> None:
        destination = self.destination
        self._delivered(
            batch, downloaded, lambda: destination.deliver(destination.prepare(downloaded))
        )

    def _delivered(
        self, batch: Sequence[int], downloaded: list[Downloaded], outcome: Callable[[], int]
    ) -> None:
        """Take a batch's delivery (`outcome` returns how many were new, or raises), then
        DELE it: only now is it durable."""
        try:
            new = outcome() if downloaded else 0
        except BaseException:
            # Nothing of this batch was DELE'd; earlier batches are durable and their DELEs
            # take effect if the QUIT still goes through.
            self._quit_quietly()
            raise
        finally:
            for item in downloaded:
                item.spool.close()
        if self.delete and downloaded:
            self._dele([item.number for item in downloaded])
        self.report.new += new
        self.progress.done += len(batch)
        self.progress.new += new
        self.on_progress(self.progress)

    def _dele(self, numbers: Sequence[int]) -> None:
        for number, response in self.client.dele_many(numbers).items():
            if response.ok:
                self.report.deleted += 1
            else:
                self.report.failures.append(f"DELE {number}: {response.summary()}")

    def _quit(self) -> None:
        response = self.client.quit()
        if self.delete and self.report.deleted and (response is None or not response.ok):
            self.report.deleted = 0
            self.report.failures.append(Sentence(N_(
                "the server did not confirm QUIT, so it deleted nothing; "
                "the stored messages will be removed from it on the next fetch"
            )))

    def _quit_quietly(self) -> None:
        with contextlib.suppress(MailError):  # quit() closes the session either way
            self.client.quit()


class _Overlapped:
    """Batches delivered in a thread of their own while the next ones download.

    Committing a batch (writing, indexing, fsync) happens in SQLite's C code (and the
    destination may index in a helper process), which lets go of the GIL, so it runs beside
    the download of the next batches instead of after them. Up to IN_FLIGHT batches wait
    for delivery, so the server is kept sending while a slow commit finishes. The order of
    events per batch is unchanged: download, durable delivery, and only then DELE; batches
    are delivered one at a time, in order.
    """

    IN_FLIGHT = 2

    def __init__(self, fetcher: Fetcher):
        self.fetcher = fetcher
        self.executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="pochta-deliver")
        self.pending: collections.deque[
            tuple[Sequence[int], list[Downloaded], Future[int]]
        ] = collections.deque()

    def __enter__(self) -> _Overlapped:
        return self

    def submit(self, batch: Sequence[int], downloaded: list[Downloaded]) -> None:
        try:
            prepared = self.fetcher.destination.prepare(downloaded)
            self.drain(keep=self.IN_FLIGHT - 1)
        except BaseException:
            for item in downloaded:
                item.spool.close()
            raise
        future = self.executor.submit(self.fetcher.destination.deliver, prepared)
        self.pending.append((batch, downloaded, future))

    def drain(self, keep: int = 0) -> None:
        """DELE and report every batch already delivered, in order; wait for the oldest
        ones until at most `keep` are still on their way."""
        while self.pending and (len(self.pending) > keep or self.pending[0][2].done()):
            batch, downloaded, future = self.pending.popleft()
            self.fetcher._delivered(batch, downloaded, future.result)

    def __exit__(self, kind: type[BaseException] | None, *_rest: object) -> None:
        try:
            if kind is None:
                self.drain()
            else:  # a download or delivery failed: let those on their way finish
                futures.wait([future for _batch, _downloaded, future in self.pending])
                for _batch, downloaded, _future in self.pending:
                    for item in downloaded:
                        item.spool.close()
                self.pending.clear()
        finally:
            self.executor.shutdown(wait=True)


def _content_uid(spool: BinaryIO) -> str:
    spool.seek(0)
    digest = hashlib.sha256()
    while chunk := spool.read(1024 * 1024):
        digest.update(chunk)
    return HASH_UID_PREFIX + digest.hexdigest()


def fetch_new(
    client: POP3Client,
    destination: Destination[Any],
    *,
    delete: bool,
    max_message_bytes: int,
    progress: ProgressCallback | None = None,
    batch_size: int = BATCH_MESSAGES,
) -> FetchReport:
    """Fetch what is new over a logged-in session into `destination`, then QUIT."""
    return Fetcher(
        client,
        destination,
        delete=delete,
        max_message_bytes=max_message_bytes,
        progress=progress,
        batch_size=batch_size,
    ).run()
