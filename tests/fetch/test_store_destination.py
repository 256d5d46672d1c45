"""Delivering fetched mail into a mailbox: indexed, durable, and refused before a full disk."""

from __future__ import annotations

import errno
import io
from collections import namedtuple
from email.message import EmailMessage

import pytest

from app.fetch import store_destination
from app.fetch.indexing import IndexHelper
from app.fetch.policy import Downloaded
from app.fetch.store_destination import MailboxDestination
from app.store import AccountKey, Store

RAW = b"From: Anna <anna@example.org>\r\nSubject: hello\r\n\r\nbody text\r\n"


@pytest.fixture
def destination(tmp_path):
    store = Store(tmp_path / "data")
    yield MailboxDestination(store.mailbox(AccountKey("pop.test", 995, "u")), tmp_path / "spool")
    store.close()


def downloaded(uid: str, raw: bytes = RAW) -> Downloaded:
    return Downloaded(1, uid, len(raw), io.BytesIO(raw))


def test_delivered_mail_is_indexed_and_searchable(destination):
    assert destination.deliver(destination.prepare([downloaded("u1")])) == 1
    page = destination.mailbox.page(query="hello")
    assert [m.subject for m in page.items] == ["hello"]
    assert page.items[0].from_name == "Anna"
    assert destination.known_uids() == {"u1"}


def test_a_batch_the_disk_may_not_hold_is_refused_before_writing(destination, monkeypatch):
    usage = namedtuple("usage", "total used free")
    monkeypatch.setattr(store_destination.shutil, "disk_usage",
                        lambda _path: usage(100, 100, store_destination.SPACE_RESERVE))
    with pytest.raises(OSError) as caught:
        destination.deliver(destination.prepare([downloaded("u1")]))
    assert caught.value.errno == errno.ENOSPC
    assert destination.mailbox.count() == 0
    monkeypatch.undo()  # space again: the same batch goes in
    assert destination.deliver(destination.prepare([downloaded("u1")])) == 1


def test_a_big_message_is_indexed_from_its_beginning_and_stored_whole(destination):
    message = EmailMessage()
    message["Subject"] = "quarterly figures"
    message["From"] = "Anna <anna@example.org>"
    message.set_content("the report is attached")
    message.add_attachment(bytes(range(256)) * 4000, maintype="application",
                           subtype="octet-stream", filename="figures.bin")
    raw = bytes(message)
    assert len(raw) > store_destination.INDEX_HEAD_BYTES
    assert destination.deliver(destination.prepare([downloaded("big", raw)])) == 1
    (summary,) = destination.mailbox.page(query="report").items
    assert summary.subject == "quarterly figures" and summary.has_attachments
    assert summary.size == len(raw)
    assert destination.mailbox.raw(summary.id) == raw


def test_mail_indexed_by_the_helper_process_is_stored_and_searchable(tmp_path):
    helper = IndexHelper(min_messages=2, cpus=2)
    store = Store(tmp_path / "data")
    try:
        destination = MailboxDestination(
            store.mailbox(AccountKey("pop.test", 995, "u")), tmp_path / "spool", helper
        )
        batch = [downloaded(f"u{i}", RAW.replace(b"hello", f"hello{i}".encode()))
                 for i in range(5)]
        assert destination.deliver(destination.prepare(batch)) == 5
        assert helper.helper_pids(), "the batch was not indexed by the helper"
        found = destination.mailbox.page(query="hello3")
        assert [m.subject for m in found.items] == ["hello3"]
        assert found.items[0].from_name == "Anna"
    finally:
        helper.close()
        store.close()
