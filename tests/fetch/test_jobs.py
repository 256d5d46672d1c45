"""A fetch job's own bookkeeping, run in the test's thread: what it opens, and in which order."""

from __future__ import annotations

from pathlib import Path

import pytest

from app.fetch.jobs import FetchRequest, run_job
from app.mail.pop3 import POP3Client
from app.mail.transcript import Transcript
from app.store import AccountKey, Store

ACCOUNT = AccountKey("127.0.0.1", 110, "alice")


def test_a_store_that_cannot_open_the_mailbox_fails_the_job_before_any_session(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Opening the store comes first: a POP3 session opened before it would be left open
    when the store fails."""
    sessions: list[Transcript] = []

    def connect(transcript: Transcript) -> POP3Client:
        sessions.append(transcript)
        raise AssertionError("a session was opened although the mail could not be stored")

    def full_disk(self: Store, account: AccountKey) -> None:
        raise OSError(28, "No space left on device")

    with Store(tmp_path / "data") as store:
        job_id, created = store.start_job(ACCOUNT)
        assert created
        monkeypatch.setattr(Store, "mailbox", full_disk)
        run_job(store, job_id, FetchRequest(
            account=ACCOUNT, connect=connect, delete=True, max_message_bytes=10**6,
            describe=str,
        ))
        job = store.get_job(ACCOUNT, job_id)
    assert sessions == []
    assert job is not None and job.state == "failed"
    assert job.error == "the mail could not be stored (No space left on device)"
