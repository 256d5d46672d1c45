"""deploy/backup.py, run the way the README says (`python - < deploy/backup.py`), against a
store that is open and writing: the tar holds consistent databases and the other files."""

from __future__ import annotations

import subprocess
import sys
import tarfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from app.secret import load_or_create_secret_key
from app.store import AccountKey, NewMessage, Store
from tests.deploy.dockerfile import REPO

SCRIPT = REPO / "deploy" / "backup.py"
ALICE = AccountKey("pop.lab.example", 995, "alice")


def _message(uid: str) -> NewMessage:
    raw = f"Subject: {uid}\r\n\r\nbody of {uid}\r\n".encode()
    return NewMessage(uid=uid, raw=raw, size=len(raw), subject=uid, body_text=f"body of {uid}")


@pytest.fixture
def live_store(tmp_path: Path) -> Iterator[Store]:
    """A data dir as a running Pochta leaves it: the store open, recent mail in the WAL."""
    data = tmp_path / "data"
    with Store(data) as store:
        store.mailbox(ALICE).add_messages([_message(f"m{i}") for i in range(3)])
        load_or_create_secret_key(data)
        (data / "drafts" / "token").mkdir(parents=True)
        (data / "drafts" / "token" / "slides.pdf").write_bytes(b"%PDF-1.4 kept upload")
        (data / "spool").mkdir(exist_ok=True)
        (data / "spool" / "in-transit.eml").write_bytes(b"half a message")
        yield store


def _backup(data: Path, tar_path: Path) -> subprocess.CompletedProcess[bytes]:
    with SCRIPT.open("rb") as script, tar_path.open("wb") as out:
        return subprocess.run(
            [sys.executable, "-", str(data)], stdin=script, stdout=out,
            stderr=subprocess.PIPE, check=False,
        )


def _restore(tar_path: Path, target: Path) -> list[str]:
    with tarfile.open(tar_path) as archive:
        names = archive.getnames()
        for member in archive.getmembers():
            assert member.isfile() or member.isdir(), f"unexpected member type: {member.name}"
            assert not Path(member.name).is_absolute() and ".." not in Path(member.name).parts
        # Debian 12's Python 3.11.2 predates extraction filters (the checks above stand in);
        # newer ones warn without one.
        data_filter = {"filter": "data"} if hasattr(tarfile, "data_filter") else {}
        archive.extractall(target, **data_filter)  # type: ignore[arg-type]
    return names


def test_backup_holds_the_mail_still_in_the_write_ahead_log(live_store: Store, tmp_path: Path):
    wal = live_store.mailbox_path(ALICE).with_name(live_store.mailbox_path(ALICE).name + "-wal")
    assert wal.stat().st_size > 0, "the mail is not checkpointed into the database yet"

    result = _backup(live_store.data_dir, tmp_path / "backup.tar")
    assert result.returncode == 0, result.stderr.decode()
    _restore(tmp_path / "backup.tar", tmp_path / "restored")

    with Store(tmp_path / "restored") as restored:
        mailbox = restored.mailbox(ALICE)
        assert mailbox.count() == 3
        first = mailbox.page(1).items[-1]
        assert mailbox.raw(first.id) == b"Subject: m0\r\n\r\nbody of m0\r\n"


def test_backup_keeps_the_key_and_drafts_but_not_the_spool_or_wal_files(
    live_store: Store, tmp_path: Path
):
    result = _backup(live_store.data_dir, tmp_path / "backup.tar")
    assert result.returncode == 0, result.stderr.decode()
    names = _restore(tmp_path / "backup.tar", tmp_path / "restored")

    restored = tmp_path / "restored"
    key = (restored / "secret_key").read_text()
    assert key == (live_store.data_dir / "secret_key").read_text()
    assert (restored / "secret_key").stat().st_mode & 0o777 == 0o600
    assert (restored / "drafts" / "token" / "slides.pdf").read_bytes() == b"%PDF-1.4 kept upload"
    assert "pochta.sqlite3" in names
    assert not any(name.startswith("spool") for name in names)
    assert not any(name.endswith(("-wal", "-shm")) for name in names)


def test_backup_refuses_a_directory_without_a_store(tmp_path: Path):
    result = _backup(tmp_path, tmp_path / "backup.tar")
    assert result.returncode == 1
    assert b"holds no Pochta data" in result.stderr
