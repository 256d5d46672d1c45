"""Kept attachments: private files per account, strict tokens, atomic entries, expiry."""

from __future__ import annotations

import io
import os
import stat
import time

import pytest

from app.web.compose_stash import (
    AttachmentStash,
    KeptFile,
    purge_expired,
    safe_content_type,
    safe_filename,
)

ALICE = "a" * 64
BOB = "b" * 64


@pytest.fixture
def root(tmp_path):
    return tmp_path / "drafts"


def keep(stash: AttachmentStash, data: bytes = b"hello", name: str = "f.txt",
         kind: str | None = "text/plain") -> KeptFile:
    return stash.keep(io.BytesIO(data), name, kind)


def mode(path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_kept_file_round_trips_with_its_name_type_and_size(root):
    stash = AttachmentStash(root, ALICE)
    data = os.urandom(3 * 1024 * 1024 + 7)  # several copy chunks
    kept = keep(stash, data, "отчёт.pdf", "application/pdf")
    assert (kept.filename, kept.content_type, kept.size) == ("отчёт.pdf", "application/pdf",
                                                             len(data))
    again = stash.get(kept.token)
    assert again == kept
    assert stash.path(again).read_bytes() == data


def test_files_and_directories_are_owner_only(root):
    stash = AttachmentStash(root, ALICE)
    kept = keep(stash)
    entry = root / ALICE / kept.token
    assert mode(root) == 0o700
    assert mode(root / ALICE) == 0o700
    assert mode(entry) == 0o700
    assert {p.name: mode(p) for p in entry.iterdir()} == {"data": 0o600,
                                                          "manifest.json": 0o600}


def test_another_accounts_token_is_not_found(root):
    alice, bob = AttachmentStash(root, ALICE), AttachmentStash(root, BOB)
    kept = keep(alice)
    assert bob.get(kept.token) is None
    assert bob.find([kept.token]) == []
    with pytest.raises(FileNotFoundError):
        bob.path(kept)
    bob.discard([kept.token])
    assert alice.get(kept.token) == kept


@pytest.mark.parametrize("token", [
    "", "..", "../" + "b" * 64, "a" * 23, "a" * 25, "a/" + "a" * 22, "a" * 23 + "\x00",
    "a" * 23 + ".", None, 42,
])
def test_malformed_tokens_never_reach_the_file_system(root, token):
    stash = AttachmentStash(root, ALICE)
    keep(stash)
    assert stash.get(token) is None
    stash.discard([token])
    assert len(stash.entries()) == 1


def test_account_key_must_be_a_store_key(root):
    with pytest.raises(ValueError):
        AttachmentStash(root, "../" + "a" * 61)
    with pytest.raises(ValueError):
        AttachmentStash(root, "A" * 64)


def test_find_keeps_order_skips_unknown_and_duplicates(root):
    stash = AttachmentStash(root, ALICE)
    one, two = keep(stash, b"1"), keep(stash, b"2")
    found = stash.find([two.token, "x" * 24, one.token, two.token])
    assert [k.token for k in found] == [two.token, one.token]


def test_discard_removes_the_entry(root):
    stash = AttachmentStash(root, ALICE)
    kept = keep(stash)
    stash.discard([kept.token])
    assert stash.get(kept.token) is None
    assert list((root / ALICE).iterdir()) == []


def test_a_failed_upload_leaves_nothing_behind(root):
    class Broken(io.RawIOBase):
        def readable(self) -> bool:
            return True

        def readinto(self, buffer) -> int:
            raise OSError("connection reset")

    stash = AttachmentStash(root, ALICE)
    with pytest.raises(OSError, match="connection reset"):
        stash.keep(Broken(), "f.txt", None)
    assert list((root / ALICE).iterdir()) == []


def test_half_written_entries_are_never_offered(root):
    stash = AttachmentStash(root, ALICE)
    partial = root / ALICE / (".incoming-" + "c" * 24)
    partial.mkdir(parents=True)
    (partial / "data").write_bytes(b"half")
    assert stash.entries() == []
    assert stash.get("c" * 24) is None


def test_expired_entries_of_every_account_are_purged(root):
    alice, bob = AttachmentStash(root, ALICE), AttachmentStash(root, BOB)
    old, fresh, bobs_old = keep(alice), keep(alice), keep(bob)
    day_ago = time.time() - 25 * 3600
    for account, kept in ((ALICE, old), (BOB, bobs_old)):
        os.utime(root / account / kept.token, (day_ago, day_ago))
    abandoned = root / ALICE / (".incoming-" + "d" * 24)
    abandoned.mkdir()
    os.utime(abandoned, (day_ago, day_ago))
    assert purge_expired(root) == 3
    assert [k.token for k in alice.entries()] == [fresh.token]
    assert bob.entries() == []
    assert not abandoned.exists()


def test_purge_of_a_missing_root_is_a_no_op(tmp_path):
    assert purge_expired(tmp_path / "nothing") == 0


def test_limit_drops_the_oldest_except_the_spared(root):
    stash = AttachmentStash(root, ALICE)
    first = keep(stash, b"x" * 100)
    time.sleep(0.01)
    second = keep(stash, b"x" * 100)
    time.sleep(0.01)
    third = keep(stash, b"x" * 100)
    dropped = stash.limit(150, spare=[first.token])
    assert dropped == [second.token, third.token]
    assert [k.token for k in stash.entries()] == [first.token]
    assert stash.limit(1000) == []


@pytest.mark.parametrize(("given", "expected"), [
    ("report.pdf", "report.pdf"),
    ("C:\\Users\\ivan\\отчёт.docx", "отчёт.docx"),
    ("/etc/passwd", "passwd"),
    ("a\r\nBcc: x@y.txt", "a  Bcc: x@y.txt"),
    ("evil\u2028X: 1\x85.txt", "evil X: 1 .txt"),
    ("\x00", "attachment"),
    ("", "attachment"),
    ("dir/", "attachment"),
    ("x" * 300 + ".tar.gz", "x" * 197 + ".gz"),
    ("y" * 300, "y" * 200),
])
def test_safe_filename(given, expected):
    assert safe_filename(given) == expected


@pytest.mark.parametrize(("given", "expected"), [
    ("application/pdf", "application/pdf"),
    ("Text/Plain; charset=utf-8", "text/plain"),
    ("text/plain\r\nX-Evil: 1", None),
    ("nonsense", None),
    ("", None),
    (None, None),
    ("a/b/c", None),
])
def test_safe_content_type(given, expected):
    assert safe_content_type(given) == expected
