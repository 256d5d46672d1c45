"""The index helper process: the same fields as indexing in place, and never a lost batch
when it is missing, too small a job, or killed."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from email.message import EmailMessage
from pathlib import Path

import pytest

from app.fetch.indexing import MAX_RESTARTS, OWNER_CHECK_SECONDS, IndexHelper, index_all
from app.messages import index_fields


def _heads() -> list[bytes]:
    plain = (b"From: =?utf-8?q?J=C3=BCrgen?= <j@example.org>\r\nTo: a@example.org\r\n"
             b"Subject: =?utf-8?b?0J/RgNC40LLQtdGC?=\r\nDate: Mon, 2 Mar 2026 10:00:00 +0100\r\n"
             b"Message-ID: <1@example.org>\r\n\r\nquarterly figures attached\r\n")
    multipart = EmailMessage()
    multipart["From"] = "Anna <anna@example.org>"
    multipart["Subject"] = "slides"
    multipart.set_content("see the slides")
    multipart.add_attachment(b"%PDF-1.4" * 100, maintype="application", subtype="pdf",
                             filename="slides.pdf")
    garbage = b"\xff\xfe not a header\r\n\r\n\x00\x01 body"
    return [plain, bytes(multipart), garbage] * 12


@pytest.fixture
def helper() -> Iterator[IndexHelper]:
    helper = IndexHelper(min_messages=2, cpus=2)
    yield helper
    helper.close()


def _kill(pid: int) -> None:
    try:
        os.kill(pid, signal.SIGKILL)
    except ProcessLookupError:  # its pool, broken by an earlier kill, reaped it already
        return
    deadline = time.monotonic() + 10
    while not _gone(pid):
        assert time.monotonic() < deadline, f"helper {pid} did not die"
        time.sleep(0.05)


def _gone(pid: int) -> bool:
    """Dead: reaped, or a zombie its pool has not reaped yet."""
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().split(") ", 1)[1].startswith("Z")
    except OSError:  # no such file, or ESRCH when it is reaped between open and read
        return True


def test_the_helper_gives_exactly_the_fields_of_indexing_in_place(helper):
    heads = _heads()
    assert helper.submit(heads)() == [index_fields(head) for head in heads]
    assert helper.helper_pids(), "the batch was not sent to a helper process"


def test_a_batch_too_small_to_be_worth_sending_is_indexed_in_place():
    helper = IndexHelper(cpus=2)
    try:
        head = _heads()[0]
        assert helper.submit([head])() == [index_fields(head)]
        assert helper.helper_pids() == []
    finally:
        helper.close()


def test_a_few_big_heads_are_worth_sending():
    helper = IndexHelper(min_messages=1000, min_bytes=64 * 1024, cpus=2)
    try:
        big = _heads()[1] + b"A" * (70 * 1024)
        assert helper.submit([big])() == [index_fields(big)]
        assert helper.helper_pids(), "a 70 KB head should go to the helper"
    finally:
        helper.close()


def test_with_one_cpu_there_is_no_helper():
    helper = IndexHelper(min_messages=1, cpus=1)
    try:
        heads = _heads()
        assert helper.submit(heads)() == index_all(heads)
        assert helper.helper_pids() == []
    finally:
        helper.close()


def test_a_killed_helper_loses_no_batch_and_is_replaced(helper):
    heads = _heads()
    helper.submit(heads)()
    (first,) = helper.helper_pids()
    _kill(first)

    # Killed while idle: the next batch is still indexed, here or by a new helper.
    assert helper.submit(heads)() == index_all(heads)
    assert helper.submit(heads)() == index_all(heads)
    assert helper.helper_pids() and first not in helper.helper_pids()
    assert helper.restarts == 1


def test_a_helper_killed_in_the_middle_of_a_batch_still_gives_the_batch(helper):
    heads = _heads() * 50
    helper.submit(heads[:2])()
    (pid,) = helper.helper_pids()
    indexed = helper.submit(heads)
    _kill(pid)
    assert indexed() == index_all(heads)
    assert helper.restarts == 1, "the helper was not killed in the middle of the batch"


def test_a_helper_that_keeps_dying_is_given_up(helper):
    heads = _heads()
    started = set()
    for _ in range(20):
        assert helper.submit(heads)() == index_all(heads)
        for pid in helper.helper_pids():
            started.add(pid)
            _kill(pid)
    assert len(started) == MAX_RESTARTS + 1
    assert helper.submit(heads)() == index_all(heads)
    assert helper.helper_pids() == []


OWNER = """
import sys, time
from app.fetch.indexing import IndexHelper

if __name__ == "__main__":
    helper = IndexHelper(min_messages=1, cpus=2)
    helper.submit([b"Subject: hi\\r\\n\\r\\nbody\\r\\n"])()
    print(*helper.helper_pids(), flush=True)
    time.sleep(60)
"""


def test_the_helper_of_a_killed_process_does_not_outlive_it(tmp_path):
    script = tmp_path / "owner.py"
    script.write_text(OWNER)
    owner = subprocess.Popen(
        [sys.executable, str(script)], stdout=subprocess.PIPE, text=True,
        cwd=Path(__file__).resolve().parents[2],
    )
    try:
        line = owner.stdout.readline() if owner.stdout else ""
        (pid,) = [int(word) for word in line.split()]
        assert not _gone(pid), "the helper was not running"
        owner.kill()
        owner.wait()
        deadline = time.monotonic() + 10 * OWNER_CHECK_SECONDS
        while not _gone(pid) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert _gone(pid), "the helper lives on after the process it worked for was killed"
    finally:
        owner.kill()
        owner.wait()
        if owner.stdout:
            owner.stdout.close()
