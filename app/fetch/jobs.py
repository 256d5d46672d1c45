"""Fetch jobs: a fetch runs in a background thread of the worker that started it.

Its state lives in the store, so whichever gunicorn worker answers `GET /fetch/<job>` can
report progress; a heartbeat thread keeps the job marked alive while it runs, so the job of
a worker that died is seen as failed and the next fetch can start. One running job per
account: a second request gets the job already running.
"""

from __future__ import annotations

import logging
import sqlite3
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime

from app.fetch.indexing import shared_helper
from app.fetch.policy import Progress, fetch_new
from app.fetch.store_destination import MailboxDestination
from app.mail.errors import MailError
from app.mail.pop3 import POP3Client
from app.mail.transcript import Transcript
from app.sentences import N_, Sentence
from app.store import AccountKey, Store

log = logging.getLogger(__name__)

STALE_AFTER_SECONDS = 30.0
BEATS_PER_STALE_PERIOD = 6  # a job is declared dead only after several missed heartbeats
FINISH_ATTEMPTS = 3


@dataclass(frozen=True)
class FetchRequest:
    """Everything the job's thread needs, handed over whole (threads share nothing else).

    `connect` returns a connected, logged-in client that writes to the given transcript;
    `describe` turns an error into the sentence the user sees, and `say` puts the job's own
    sentences (English `Sentence`s) into the user's language.
    """

    account: AccountKey
    connect: Callable[[Transcript], POP3Client]
    delete: bool
    max_message_bytes: int
    describe: Callable[[MailError], str]
    say: Callable[[str], str] = str
    stale_after: float = STALE_AFTER_SECONDS


def start_fetch(store: Store, request: FetchRequest) -> tuple[str, bool]:
    """(job id, started?): a new job in a background thread, or the one already running."""
    job_id, created = store.start_job(request.account, stale_after=request.stale_after)
    if created:
        thread = threading.Thread(
            target=run_job, args=(store, job_id, request), name=f"fetch-{job_id}", daemon=True
        )
        thread.start()
    return job_id, created


def _heartbeat(store: Store, job_id: str, stop: threading.Event, every: float) -> None:
    while not stop.wait(every):
        try:
            if not store.heartbeat(job_id):
                return
        except Exception:  # a busy database must not kill the beat; the next one may pass
            log.exception("heartbeat for fetch job %s failed", job_id)


def _finish(store: Store, job_id: str, **outcome: object) -> None:
    """Record the outcome, trying a few times (the database may be busy, or the disk just
    freed); if it never goes through, the job goes stale and reads as failed anyway."""
    for attempt in range(FINISH_ATTEMPTS):
        try:
            store.finish_job(job_id, **outcome)  # type: ignore[arg-type]
            return
        except sqlite3.Error:
            log.exception("could not record the end of fetch job %s", job_id)
            if attempt + 1 < FINISH_ATTEMPTS:
                time.sleep(1.0)


def run_job(store: Store, job_id: str, request: FetchRequest) -> None:
    """Run one fetch to its end and record the outcome; never raises."""
    transcript = Transcript("pochta.pop3")
    started = datetime.now(UTC)
    stop = threading.Event()
    beat = threading.Thread(
        target=_heartbeat,
        args=(store, job_id, stop, request.stale_after / BEATS_PER_STALE_PERIOD),
        name=f"beat-{job_id}",
        daemon=True,
    )
    beat.start()
    ok = False

    def progress(state: Progress) -> None:
        store.update_job(job_id, done=state.done, total=state.total, new=state.new)

    try:
        # The store first: a session opened before it failed to open would be left behind.
        destination = MailboxDestination(
            store.mailbox(request.account), store.data_dir / "spool", shared_helper()
        )
        client = request.connect(transcript)
        report = fetch_new(
            client,
            destination,
            delete=request.delete,
            max_message_bytes=request.max_message_bytes,
            progress=progress,
        )
        problems = "; ".join(request.say(failure) for failure in report.failures) or None
        _finish(store, job_id, error=problems, new=report.new, failed=False)
        ok = not report.failures
    except MailError as exc:
        _finish(store, job_id, error=request.describe(exc))
    except (OSError, sqlite3.Error) as exc:  # a full disk, a read-only data dir
        log.exception("fetch job %s could not store mail", job_id)
        reason = getattr(exc, "strerror", None) or str(exc)
        _finish(store, job_id, error=request.say(
            Sentence(N_("the mail could not be stored (%(reason)s)"), reason=reason)))
    except Exception:
        log.exception("fetch job %s failed", job_id)
        internal = Sentence(N_("an internal error stopped the fetch"))
        _finish(store, job_id, error=request.say(internal))
    finally:
        stop.set()
        try:
            store.save_log(
                request.account, "fetch", transcript.lines(), ok=ok, started_at=started
            )
        except Exception:
            log.exception("could not save the log of fetch job %s", job_id)
