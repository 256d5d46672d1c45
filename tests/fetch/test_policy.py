"""The fetch policy: what is new, when DELE is allowed, and that faults lose nothing.

Run against the project's demo POP3 server (a real peer with real DELE/QUIT semantics) and,
for the odd server shapes, against scripted fakes.
"""

from __future__ import annotations

import hashlib
import io
import threading
import time
from collections.abc import Iterator, Sequence
from pathlib import Path

import pytest

from app.demo.server import DemoMailServer
from app.fetch.emldir import EmlDirectory
from app.fetch.policy import HASH_UID_PREFIX, Downloaded, Progress, fetch_new
from app.mail.errors import ConnectionLost
from app.mail.pop3 import POP3Client
from app.mail.security import Security
from tests.support.scripted import Expect, Hangup, ScriptedServer, Send, Step


def message(n: int, size: int = 0) -> bytes:
    body = b"x" * size if size else b"body of message %d\r\n.a line with a dot\r\n" % n
    return b"From: a@demo.pochta.test\r\nSubject: message %d\r\n\r\n%s\r\n" % (n, body)


@pytest.fixture
def server(tmp_path: Path) -> Iterator[DemoMailServer]:
    with DemoMailServer(
        tmp_path / "server", users={"alice": "pw"}, pop3_security=Security.NONE,
        smtp_security=Security.NONE,
    ) as running:
        yield running


def connect(server: DemoMailServer) -> POP3Client:
    return log_in(server.host, server.pop3_port)


def log_in(host: str, port: int) -> POP3Client:
    """A plaintext session logged in as alice (the demo's and the scripts' user)."""
    client = POP3Client(host, port, security=Security.NONE, timeout=5)
    client.connect()
    try:
        client.login("alice", "pw")
    except BaseException:
        client.close()  # or its socket outlives this test and fails a later one's warnings
        raise
    return client


def fetch(server: DemoMailServer, destination, **kwargs) -> object:
    kwargs.setdefault("delete", False)
    kwargs.setdefault("max_message_bytes", 10_000_000)
    return fetch_new(connect(server), destination, **kwargs)


class MemoryDestination:
    """Keeps delivered messages in a dict; can be told to fail on a given delivery."""

    def __init__(self, fail_on_delivery: int | None = None):
        self.messages: dict[str, bytes] = {}
        self.deliveries = 0
        self.fail_on_delivery = fail_on_delivery

    def known_uids(self) -> set[str]:
        return set(self.messages)

    def prepare(self, batch: Sequence[Downloaded]) -> Sequence[Downloaded]:
        return batch

    def deliver(self, batch: Sequence[Downloaded]) -> int:
        self.deliveries += 1
        if self.deliveries == self.fail_on_delivery:
            raise OSError(28, "No space left on device")
        fresh = [item for item in batch if item.uid not in self.messages]
        for item in fresh:
            self.messages[item.uid] = item.read()
        return len(fresh)

    def spool_dir(self) -> Path | None:
        return None


def wait_until_unlocked(server: DemoMailServer) -> None:
    """The server notices a dropped connection a moment later; until then the maildrop is
    still locked by the dead session (as with any POP3 server)."""
    deadline = time.monotonic() + 5
    while not server.mailboxes.try_lock("alice"):
        assert time.monotonic() < deadline, "the dropped session never released the lock"
        time.sleep(0.02)
    server.mailboxes.unlock("alice")


def server_messages(server: DemoMailServer) -> list[bytes]:
    return [stored.path.read_bytes() for stored in server.mailboxes.list("alice")]


def test_keep_on_server_fetches_each_message_once(server, tmp_path):
    for n in range(5):
        server.mailboxes.deliver("alice", message(n))
    destination = EmlDirectory(tmp_path / "mail")
    first = fetch(server, destination)
    second = fetch(server, destination)
    assert (first.on_server, first.new, first.deleted) == (5, 5, 0)
    assert (second.new, second.deleted) == (0, 0)
    assert server.mailboxes.count("alice") == 5
    saved = sorted(p.read_bytes() for p in (tmp_path / "mail").glob("*.eml"))
    assert saved == sorted(server_messages(server))


def test_delete_mode_empties_the_server_after_storing(server):
    originals = [message(n) for n in range(7)]
    for raw in originals:
        server.mailboxes.deliver("alice", raw)
    destination = MemoryDestination()
    report = fetch(server, destination, delete=True, batch_size=3)
    assert (report.new, report.deleted, report.failures) == (7, 7, [])
    assert server.mailboxes.count("alice") == 0
    assert sorted(destination.messages.values()) == sorted(originals)
    assert destination.deliveries == 3  # batches of 3, 3 and 1


def test_progress_reports_each_batch(server):
    for n in range(5):
        server.mailboxes.deliver("alice", message(n))
    seen: list[tuple[int, int, int]] = []

    def record(progress: Progress) -> None:
        seen.append((progress.done, progress.total, progress.new))

    fetch(server, MemoryDestination(), batch_size=2, progress=record)
    assert seen == [(0, 5, 0), (2, 5, 2), (4, 5, 4), (5, 5, 5)]


def test_failed_delivery_deletes_only_what_is_durable(server):
    """Disk full on the second batch: the first batch is stored and deleted from the
    server, the second batch stays on the server, and a new fetch completes the job."""
    for n in range(6):
        server.mailboxes.deliver("alice", message(n))
    destination = MemoryDestination(fail_on_delivery=2)
    with pytest.raises(OSError, match="No space"):
        fetch(server, destination, delete=True, batch_size=3)
    assert len(destination.messages) == 3
    assert server.mailboxes.count("alice") == 3
    report = fetch(server, destination, delete=True, batch_size=3)
    assert report.new == 3
    assert server.mailboxes.count("alice") == 0
    assert sorted(destination.messages.values()) == sorted(message(n) for n in range(6))


def test_connection_lost_after_storing_heals_on_the_next_fetch(server):
    """The connection drops after a batch is stored but before QUIT: the server keeps
    everything (no UPDATE state), and the next fetch deletes what is already stored
    without storing it twice."""
    for n in range(4):
        server.mailboxes.deliver("alice", message(n))
    destination = MemoryDestination()
    client = connect(server)
    original_deliver = destination.deliver

    def deliver_then_drop(batch):
        count = original_deliver(batch)
        client._wire._sock.close()  # the network goes away right after the commit
        return count

    destination.deliver = deliver_then_drop
    with pytest.raises(ConnectionLost):
        fetch_new(client, destination, delete=True, max_message_bytes=10**7, batch_size=2)
    assert len(destination.messages) == 2
    assert server.mailboxes.count("alice") == 4  # no QUIT, nothing deleted
    wait_until_unlocked(server)
    destination.deliver = original_deliver
    report = fetch(server, destination, delete=True)
    assert (report.new, report.deleted) == (2, 4)
    assert server.mailboxes.count("alice") == 0
    assert len(destination.messages) == 4


def test_message_over_the_limit_stays_on_the_server_and_is_reported(server):
    server.mailboxes.deliver("alice", message(1))
    server.mailboxes.deliver("alice", message(2, size=50_000))
    destination = MemoryDestination()
    report = fetch(server, destination, delete=True, max_message_bytes=10_000)
    assert report.new == 1
    assert len(report.failures) == 1 and "over the limit of 10000" in report.failures[0]
    assert server.mailboxes.count("alice") == 1


def test_eml_directory_survives_a_restart_without_duplicates(server, tmp_path):
    server.mailboxes.deliver("alice", message(1))
    fetch(server, EmlDirectory(tmp_path / "mail"))
    server.mailboxes.deliver("alice", message(2))
    report = fetch(server, EmlDirectory(tmp_path / "mail"), delete=True)
    assert (report.new, report.deleted) == (1, 2)
    assert len(list((tmp_path / "mail").glob("*.eml"))) == 2


# -- servers of other shapes ---------------------------------------------------------------

GREETING = Send(b"+OK ready\r\n")


def logged_in(*capabilities: bytes) -> list[Step]:
    """The script up to a logged-in session: greeting, CAPA with `capabilities`, alice's
    USER and PASS accepted."""
    capa = b"".join(name + b"\r\n" for name in capabilities)
    return [
        GREETING, Expect(b"CAPA"), Send(b"+OK\r\n" + capa + b".\r\n"),
        Expect(b"USER alice"), Send(b"+OK\r\n"), Expect(b"PASS pw"), Send(b"+OK\r\n"),
    ]


# One message on the server, 100 bytes, UID u1.
ONE_MESSAGE = [
    Expect(b"LIST"), Send(b"+OK\r\n1 100\r\n.\r\n"),
    Expect(b"UIDL"), Send(b"+OK\r\n1 u1\r\n.\r\n"),
]


def stuffed(raw: bytes) -> bytes:
    return b"+OK\r\n" + raw.replace(b"\r\n.", b"\r\n..") + b".\r\n"


def test_without_uidl_a_content_hash_decides_what_is_new():
    known_raw = message(1)
    new_raw = message(2)
    destination = MemoryDestination()
    destination.messages[HASH_UID_PREFIX + hashlib.sha256(known_raw).hexdigest()] = known_raw
    script = [
        *logged_in(b"USER", b"TOP"),
        Expect(b"LIST"), Send(b"+OK\r\n1 100\r\n2 100\r\n.\r\n"),
        Expect(b"RETR 1"), Send(stuffed(known_raw)), Expect(b"RETR 2"), Send(stuffed(new_raw)),
        Expect(b"DELE 1"), Send(b"+OK\r\n"), Expect(b"DELE 2"), Send(b"+OK\r\n"),
        Expect(b"QUIT"), Send(b"+OK\r\n"),
    ]
    with ScriptedServer(script) as scripted:
        client = log_in("127.0.0.1", scripted.port)
        report = fetch_new(client, destination, delete=True, max_message_bytes=10**6)
    scripted.verify()
    assert (report.new, report.deleted) == (1, 2)
    assert sorted(destination.messages.values()) == sorted([known_raw, new_raw])


def test_one_refused_retr_is_reported_and_the_rest_stored():
    script = [
        *logged_in(b"USER", b"UIDL", b"PIPELINING"),
        Expect(b"LIST"), Send(b"+OK\r\n1 100\r\n2 100\r\n.\r\n"),
        Expect(b"UIDL"), Send(b"+OK\r\n1 u1\r\n2 u2\r\n.\r\n"),
        Expect(b"RETR 1"), Expect(b"RETR 2"),
        Send(b"-ERR [SYS/TEMP] cannot read message 1\r\n" + stuffed(message(2))),
        Expect(b"DELE 2"), Send(b"+OK\r\n"), Expect(b"QUIT"), Send(b"+OK\r\n"),
    ]
    destination = MemoryDestination()
    with ScriptedServer(script) as scripted:
        client = log_in("127.0.0.1", scripted.port)
        report = fetch_new(client, destination, delete=True, max_message_bytes=10**6)
    scripted.verify()
    assert report.new == 1 and list(destination.messages) == ["u2"]
    assert report.failures == ["message 1: -ERR [SYS/TEMP] cannot read message 1"]


def test_failed_quit_means_nothing_was_deleted():
    script = [
        *logged_in(b"USER", b"UIDL"), *ONE_MESSAGE,
        Expect(b"RETR 1"), Send(stuffed(message(1))), Expect(b"DELE 1"), Send(b"+OK\r\n"),
        Expect(b"QUIT"), Send(b"-ERR [SYS/TEMP] could not expunge\r\n"),
    ]
    with ScriptedServer(script) as scripted:
        client = log_in("127.0.0.1", scripted.port)
        report = fetch_new(client, MemoryDestination(), delete=True, max_message_bytes=10**6)
    scripted.verify()
    assert report.deleted == 0
    assert "did not confirm QUIT" in report.failures[0]


def test_a_session_that_breaks_mid_fetch_lets_go_of_its_socket_at_once():
    script = [
        *logged_in(b"USER", b"UIDL"), *ONE_MESSAGE,
        Expect(b"RETR 1"), Send(b"+OK\r\nFrom: a@demo.pochta.test\r\n"), Hangup(),
    ]
    with ScriptedServer(script) as scripted:
        client = log_in("127.0.0.1", scripted.port)
        sock = client._wire._sock
        with pytest.raises(ConnectionLost):
            fetch_new(client, MemoryDestination(), delete=True, max_message_bytes=10**6)
    scripted.verify()
    assert sock.fileno() == -1, "the broken session's socket was left open"


def test_downloaded_read_rewinds_the_spool():
    spool = io.BytesIO(b"abc")
    spool.seek(3)
    assert Downloaded(1, "u", 3, spool).read() == b"abc"


class SlowDestination(MemoryDestination):
    """Delivers only once `release` is set; counts the batches prepared meanwhile."""

    def __init__(self) -> None:
        super().__init__()
        self.release = threading.Event()
        self.prepared = 0

    def prepare(self, batch: Sequence[Downloaded]) -> Sequence[Downloaded]:
        self.prepared += 1
        return batch

    def deliver(self, batch: Sequence[Downloaded]) -> int:
        assert self.release.wait(30), "never released"
        return super().deliver(batch)


def test_downloads_go_on_while_a_delivery_is_slow_but_only_two_batches_wait(server):
    for n in range(8):
        server.mailboxes.deliver("alice", message(n))
    destination = SlowDestination()
    reports: list[object] = []
    fetching = threading.Thread(
        target=lambda: reports.append(fetch(server, destination, delete=True, batch_size=2))
    )
    fetching.start()
    try:
        deadline = time.monotonic() + 10
        while destination.prepared < 3 and time.monotonic() < deadline:
            time.sleep(0.01)
        time.sleep(0.3)  # time enough to run ahead, if it would
        # The first batch is stuck in delivery, the second waits behind it, the third is
        # downloaded and prepared; the fourth is not fetched until the first is durable.
        assert destination.prepared == 3
        assert destination.messages == {}
    finally:
        destination.release.set()
        fetching.join(30)
    (report,) = reports
    assert (report.new, report.deleted) == (8, 8)
    assert destination.prepared == 4
    assert server.mailboxes.count("alice") == 0
