"""Raw messages are kept byte for byte as downloaded, and big ones move in chunks: never
whole in memory on the way in or out."""

from __future__ import annotations

import hashlib
import io
import os
import tracemalloc
from pathlib import Path

import pytest

from app.store import Mailbox
from tests.store.conftest import message

MIB = 1024 * 1024
AWKWARD = (
    b"From: a\r\nSubject: =?koi8-r?B?8NLJ?=\r\n\r\n"
    b"line\rCR\nLF\r\n\x00NUL\xff\xfe\x80 8-bit\r\n.\r\n"
)
ALL_BYTES = bytes(range(256)) * 64


@pytest.mark.parametrize("raw", [AWKWARD, ALL_BYTES, b""], ids=["awkward", "all-bytes", "empty"])
def test_raw_bytes_come_back_identical(mailbox: Mailbox, raw: bytes) -> None:
    [message_id] = mailbox.add_messages([message("u", raw=raw)])

    assert mailbox.raw(message_id) == raw
    assert mailbox.get(message_id).size == len(raw)  # type: ignore[union-attr]


@pytest.mark.parametrize("raw", [AWKWARD, ALL_BYTES, b""], ids=["awkward", "all-bytes", "empty"])
def test_raw_from_a_file_object_comes_back_identical(mailbox: Mailbox, raw: bytes) -> None:
    [message_id] = mailbox.add_messages([message("u", raw=io.BytesIO(raw), size=len(raw))])

    assert mailbox.raw(message_id) == raw
    assert mailbox.get(message_id).size == len(raw)  # type: ignore[union-attr]


def test_bytearray_and_memoryview_are_accepted(mailbox: Mailbox) -> None:
    ids = mailbox.add_messages(
        [message("a", raw=bytearray(AWKWARD)), message("m", raw=memoryview(ALL_BYTES))]
    )

    assert [mailbox.raw(i) for i in ids] == [AWKWARD, ALL_BYTES]


def test_open_raw_streams_in_chunks_and_seeks(mailbox: Mailbox) -> None:
    [message_id] = mailbox.add_messages([message("u", raw=ALL_BYTES)])

    with mailbox.open_raw(message_id) as stream:  # type: ignore[union-attr]
        chunks = iter(lambda: stream.read(1000), b"")
        assert b"".join(chunks) == ALL_BYTES
        stream.seek(256)
        assert stream.read(3) == b"\x00\x01\x02"
        assert stream.tell() == 259
        assert stream.readable()
        buffer = bytearray(10)
        assert stream.readinto(buffer) == 10
        assert bytes(buffer) == ALL_BYTES[259:269]
    with pytest.raises(ValueError):
        stream.read(1)


def test_open_raw_of_an_unknown_id_is_none(mailbox: Mailbox) -> None:
    assert mailbox.open_raw("nope") is None


def test_open_raw_keeps_its_snapshot_while_the_message_is_deleted(mailbox: Mailbox) -> None:
    [message_id] = mailbox.add_messages([message("u", raw=ALL_BYTES)])

    with mailbox.open_raw(message_id) as stream:  # type: ignore[union-attr]
        first = stream.read(100)
        assert mailbox.delete(message_id) is True
        rest = stream.read()

    assert first + rest == ALL_BYTES
    assert mailbox.raw(message_id) is None


def test_a_file_shorter_than_its_size_fails_the_whole_batch(mailbox: Mailbox) -> None:
    good = message("good")
    short = message("short", raw=io.BytesIO(b"only ten b"), size=11)

    with pytest.raises(ValueError, match="ended after 10 of 11"):
        mailbox.add_messages([good, short])
    assert mailbox.count() == 0
    assert mailbox.known_uids() == set()


def test_a_file_longer_than_its_size_fails_the_whole_batch(mailbox: Mailbox) -> None:
    with pytest.raises(ValueError, match="longer than its stated size"):
        mailbox.add_messages([message("long", raw=io.BytesIO(b"0123456789"), size=9)])
    assert mailbox.count() == 0


def write_big_file(path: Path, size: int) -> str:
    """A file of pseudo-random bytes; returns its sha256."""
    digest = hashlib.sha256()
    block = os.urandom(MIB)
    with path.open("wb") as out:
        for i in range(size // MIB):
            chunk = bytes([i % 256]) + block[1:]
            out.write(chunk)
            digest.update(chunk)
    return digest.hexdigest()


def test_a_40_mb_message_is_stored_and_read_without_holding_it_in_memory(
    mailbox: Mailbox, tmp_path: Path
) -> None:
    size = 40 * MIB
    path = tmp_path / "big.eml"
    expected = write_big_file(path, size)

    with path.open("rb") as source:
        tracemalloc.start()
        try:
            [message_id] = mailbox.add_messages([message("big", raw=source, size=size)])
            _, peak_in = tracemalloc.get_traced_memory()
            tracemalloc.reset_peak()
            digest = hashlib.sha256()
            with mailbox.open_raw(message_id) as stream:  # type: ignore[union-attr]
                while chunk := stream.read(MIB):
                    digest.update(chunk)
            _, peak_out = tracemalloc.get_traced_memory()
        finally:
            tracemalloc.stop()

    assert peak_in < 8 * MIB, f"add_messages peaked at {peak_in / MIB:.1f} MiB"
    assert peak_out < 8 * MIB, f"streaming out peaked at {peak_out / MIB:.1f} MiB"
    assert digest.hexdigest() == expected
    assert mailbox.get(message_id).size == size  # type: ignore[union-attr]
