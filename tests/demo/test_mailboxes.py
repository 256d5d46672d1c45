"""The demo maildrops: address mapping, credentials, atomic delivery, locking."""

from __future__ import annotations

import threading

import pytest

from app.demo.mailboxes import MailboxError, Mailboxes, normalize_line_endings


@pytest.fixture
def boxes(tmp_path) -> Mailboxes:
    return Mailboxes(tmp_path, {"alice": "alice-demo", "bob": "bob-demo"})


@pytest.mark.parametrize(
    ("address", "user"),
    [
        ("alice@demo.pochta.test", "alice"),
        ("ALICE@Demo.Pochta.Test", "alice"),
        ("alice+lists@demo.pochta.test", "alice"),
        ("bob@demo.pochta.test.", "bob"),
        ("carol@demo.pochta.test", None),
        ("alice@example.com", None),
        ("alice@sub.demo.pochta.test", None),
        ("alice", None),
        ("", None),
    ],
)
def test_addresses_map_to_users(boxes, address, user):
    assert boxes.user_for_address(address) == user


def test_local_domain(boxes):
    assert boxes.is_local_domain("anyone@DEMO.pochta.test")
    assert not boxes.is_local_domain("alice@example.com")
    assert not boxes.is_local_domain("demo.pochta.test")


def test_authenticate_by_name_or_address(boxes):
    assert boxes.authenticate("alice", "alice-demo") == "alice"
    assert boxes.authenticate("alice@demo.pochta.test", "alice-demo") == "alice"
    assert boxes.authenticate("alice", "bob-demo") is None
    assert boxes.authenticate("carol", "") is None
    assert boxes.authenticate("alice", "") is None


def test_deliver_is_atomic_and_ordered(boxes, tmp_path):
    uids = [boxes.deliver("alice", f"Subject: {n}\r\n\r\nbody\r\n".encode()) for n in range(5)]
    assert [m.uid for m in boxes.list("alice")] == uids
    assert len(set(uids)) == 5
    assert list((tmp_path / "alice" / "tmp").iterdir()) == []
    message = boxes.list("alice")[2]
    assert boxes.read("alice", message.uid) == b"Subject: 2\r\n\r\nbody\r\n"
    assert message.size == len(b"Subject: 2\r\n\r\nbody\r\n")
    assert boxes.count("bob") == 0


def test_uids_are_uidl_safe(boxes):
    uid = boxes.deliver("alice", b"x\r\n")
    assert 0 < len(uid) <= 70
    assert all(0x21 <= ord(c) <= 0x7E for c in uid)


def test_line_endings_are_normalized():
    assert normalize_line_endings(b"a\nb\r\nc") == b"a\r\nb\r\nc\r\n"
    assert normalize_line_endings(b"a\r\n") == b"a\r\n"
    assert normalize_line_endings(b"") == b""


def test_concurrent_deliveries_all_arrive(boxes):
    def deliver(worker: int) -> None:
        for n in range(20):
            boxes.deliver("bob", f"Subject: {worker}/{n}\r\n\r\n".encode())

    threads = [threading.Thread(target=deliver, args=(w,)) for w in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert boxes.count("bob") == 160


def test_delete_reports_what_it_could_not_remove(boxes):
    kept, gone = boxes.deliver("alice", b"a\r\n"), boxes.deliver("alice", b"b\r\n")
    assert boxes.delete("alice", [gone, "no-such-uid", "../escape"]) == ["no-such-uid", "../escape"]
    assert [m.uid for m in boxes.list("alice")] == [kept]


def test_lock_is_per_user(boxes):
    assert boxes.try_lock("alice")
    assert not boxes.try_lock("alice")
    assert boxes.try_lock("bob")
    boxes.unlock("alice")
    assert boxes.try_lock("alice")


def test_unknown_user_is_an_error(boxes):
    with pytest.raises(MailboxError):
        boxes.deliver("carol", b"x\r\n")
    with pytest.raises(MailboxError):
        boxes.read("alice", "../bob/cur/x")


@pytest.mark.parametrize("name", ["", "..", "a/b", "a+b", "a b", "a@b"])
def test_unusable_user_names_are_refused(tmp_path, name):
    with pytest.raises(ValueError, match="unusable"):
        Mailboxes(tmp_path, {name: "x"})


def test_markers(boxes):
    assert not boxes.has_marker("alice", "seeded")
    boxes.set_marker("alice", "seeded")
    assert boxes.has_marker("alice", "seeded")
    assert not boxes.has_marker("bob", "seeded")
    assert boxes.list("alice") == []  # a marker is not a message
