"""Download-then-delete against the real Dovecot, broken at every awkward moment: nothing lost,
nothing twice.

300 distinct messages (a unique marker in each subject) wait in a real Maildir; a user who
unticked "keep mail on the server" starts a fetch through POST /fetch on gunicorn, and the
fetch is stopped at one exact point of its dialogue by a proxy between the app and Dovecot
(see proxy.py): before the first RETR, in the middle of the first batch, right after the
first batch was committed (its first DELE is held), while DELEs are being answered, after
QUIT reached the server, and at one random point per run (POCHTA_FAULT_SEED repeats one). Then:

* kill: the worker running the job is SIGKILLed at that point; the job must read "failed"
  once its heartbeat is stale (POCHTA_FETCH_STALE_SECONDS=3 here);
* cut: the connection is dropped there; the job must fail with "the connection broke";
* disk full: the data dir is a small tmpfs, nearly filled; the job must fail saying the mail
  could not be stored.

Afterwards a new fetch runs undisturbed to its end, and every marker must be in the store or
still in the Maildir, none of them twice in the store. The proxy gives each scenario its own
POP3 port, hence its own account and mailbox in the store.
"""

from __future__ import annotations

import collections
import contextlib
import os
import random
import re
import secrets
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from app.store import AccountKey, Store
from app.store.jobs import STALE_ERROR
from tests.reliability.apps import app_env, login_fields, real_smtp, running_app
from tests.reliability.client import WebUser
from tests.reliability.hostile import HostileServer
from tests.reliability.proxy import FaultProxy, Trap
from tests.reliability.workers import STALE_SECONDS, fast_stale_env, kill_worker, worker_holding
from tests.support.liveapp import LiveApp
from tests.support.realservers import RealServers

pytestmark = [pytest.mark.realservers, pytest.mark.slow]

USER = "carol@pochta.test"
MESSAGES = 300
BODY_LINES = 40  # about 3.5 KB a message
MARKER = re.compile(rb"^Subject: (REL-[0-9a-f]+-\d{3})\r?$", re.MULTILINE)
FETCH_TIMEOUT = 60.0
SEED = int(os.environ.get("POCHTA_FAULT_SEED", secrets.randbelow(10**6)))


# -- the mailbox and its 300 messages ------------------------------------------------------------


def message(marker: str) -> bytes:
    lines = "".join(
        f"Line {n} of {marker}: the quick brown fox jumps over the lazy dog.\r\n"
        for n in range(BODY_LINES)
    )
    return (
        f"From: Fault Tester <tester@pochta.test>\r\nTo: {USER}\r\nSubject: {marker}\r\n"
        f"Message-ID: <{marker}@pochta.test>\r\nDate: Mon, 01 Jan 2024 10:00:00 +0000\r\n"
        f"\r\n{lines}"
    ).encode()


@dataclass
class Seeded:
    """The markers put into the Maildir for one scenario, and the messages' wire size."""

    markers: list[str]
    wire_size: int


def seed(servers: RealServers) -> Seeded:
    servers.clear(USER)
    run = secrets.token_hex(4)
    markers = [f"REL-{run}-{n:03d}" for n in range(MESSAGES)]
    raws = [message(marker) for marker in markers]
    servers.deliver_many(USER, raws)
    assert servers.count(USER) == MESSAGES
    wire = len(raws[0].replace(b"\r\n", b"\n")) + raws[0].count(b"\r\n")
    return Seeded(markers, wire)


def markers_on_server(servers: RealServers) -> collections.Counter[str]:
    found: collections.Counter[str] = collections.Counter()
    maildir = servers.maildir(USER)
    for folder in ("new", "cur"):
        for entry in os.scandir(maildir / folder):
            with open(entry.path, "rb") as handle:
                found.update(m.decode() for m in MARKER.findall(handle.read()))
    return found


def markers_in_store(data_dir: Path, pop3_port: int) -> collections.Counter[str]:
    found: collections.Counter[str] = collections.Counter()
    with Store(data_dir) as store:
        mailbox = store.mailbox(AccountKey("127.0.0.1", pop3_port, USER))
        page_number = 1
        while True:
            page = mailbox.page(page_number, 500)
            found.update(item.subject for item in page.items)
            if page.page * page.per_page >= page.total:
                return found
            page_number += 1


def assert_nothing_lost_or_doubled(
    seeded: Seeded, servers: RealServers, data_dir: Path, pop3_port: int, context: str
) -> collections.Counter[str]:
    stored = markers_in_store(data_dir, pop3_port)
    on_server = markers_on_server(servers)
    twice = {marker: n for marker, n in stored.items() if n > 1}
    assert not twice, f"{context}: stored more than once: {sorted(twice)[:10]}"
    lost = set(seeded.markers) - set(stored) - set(on_server)
    assert not lost, f"{context}: {len(lost)} messages neither stored nor on the server"
    strangers = set(stored) - set(seeded.markers)
    assert not strangers, f"{context}: stored messages nobody sent: {sorted(strangers)[:5]}"
    return stored


# -- the app -------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def app(tmp_path_factory: pytest.TempPathFactory, real_servers: RealServers) -> Iterator[LiveApp]:
    workdir = tmp_path_factory.mktemp("faults-app")
    env = {**app_env(real_servers), **fast_stale_env()}
    with running_app(workdir, env, workers=3, threads=4) as live:
        yield live


@pytest.fixture
def servers(real_servers: RealServers) -> Iterator[RealServers]:
    yield real_servers
    real_servers.clear(USER)


def log_in_through(app: LiveApp, servers: RealServers, proxy: FaultProxy) -> WebUser:
    user = WebUser(app.url)
    fields = login_fields(
        USER, servers.users[USER], keep_on_server=False,
        pop3=("127.0.0.1", proxy.port, "none"), smtp=real_smtp(servers),
    )
    reply = user.log_in(fields)
    assert reply.status == 303, reply.error or reply.text[:800]
    return user


def fetch_to_the_end(user: WebUser) -> dict:
    job = user.wait_for_job(user.start_fetch(), FETCH_TIMEOUT)
    assert job["state"] == "done", f"the undisturbed fetch did not finish: {job}"
    assert job["error"] is None, job
    return job


def finish_and_check(
    app: LiveApp, user: WebUser, servers: RealServers, proxy: FaultProxy, seeded: Seeded,
    context: str,
) -> None:
    """Nothing lost or doubled now; and after one more undisturbed fetch, everything stored
    exactly once and nothing left on the server."""
    assert_nothing_lost_or_doubled(seeded, servers, app.data_dir, proxy.port, context)
    fetch_to_the_end(user)
    stored = assert_nothing_lost_or_doubled(
        seeded, servers, app.data_dir, proxy.port, f"{context}, then a whole fetch"
    )
    assert set(stored) == set(seeded.markers), f"{context}: not everything was fetched"
    assert servers.count(USER) == 0, f"{context}: the stored messages were not deleted"


# -- killing the worker ---------------------------------------------------------------------------


def random_trap(rng: random.Random, seeded: Seeded) -> Trap:
    kind = rng.choice(["RETR", "DELE", "bytes", "QUIT"])
    if kind == "bytes":
        return Trap(server_bytes=rng.randrange(MESSAGES * seeded.wire_size))
    if kind == "QUIT":
        return Trap(command="QUIT", forward_command=True)
    return Trap(command=kind, nth=rng.randint(1, MESSAGES))


KILL_POINTS = {
    "before-any-RETR": lambda seeded: Trap(command="RETR"),
    "mid-batch": lambda seeded: Trap(server_bytes=100 * seeded.wire_size),
    "right-after-a-commit": lambda seeded: Trap(command="DELE"),
    "during-DELE": lambda seeded: Trap(command="DELE", nth=100),
    "after-QUIT-reached-the-server": lambda seeded: Trap(command="QUIT", forward_command=True),
    "random-point": lambda seeded: random_trap(random.Random(SEED), seeded),
}


# What the store holds at the moment of the kill (so the trap struck where it says), by
# the number stored: nothing before the first commit, some after it, everything after QUIT.
# A fetch keeps two batches in delivery while it downloads, so the first DELE may come
# after the last of the two commits: at a DELE, some or all of the mail is stored.
STORED_AT_KILL = {
    "before-any-RETR": lambda stored: stored == 0,
    "mid-batch": lambda stored: stored < MESSAGES,
    "right-after-a-commit": lambda stored: stored > 0,
    "during-DELE": lambda stored: stored > 0,
    "after-QUIT-reached-the-server": lambda stored: stored == MESSAGES,
}


@pytest.mark.parametrize("point", list(KILL_POINTS))
def test_worker_killed_mid_fetch_loses_nothing(
    app: LiveApp, servers: RealServers, point: str
) -> None:
    seeded = seed(servers)
    trap = KILL_POINTS[point](seeded)
    with FaultProxy((servers.host, servers.pop3_plain_port)) as proxy:
        user = log_in_through(app, servers, proxy)
        proxy.arm(trap)
        job_id = user.start_fetch()
        assert proxy.sprung.wait(FETCH_TIMEOUT), (
            f"{trap} (POCHTA_FAULT_SEED={SEED}) never sprang: {user.job(job_id)}"
        )
        victim = worker_holding(app, proxy.trapped_client_port or 0)
        assert victim is not None, "no worker holds the fetch's connection"
        kill_worker(app, victim)
        stored = sum(markers_in_store(app.data_dir, proxy.port).values())
        assert STORED_AT_KILL.get(point, lambda _: True)(stored), (
            f"{stored} messages stored when the worker was killed {point}"
        )

        job = user.wait_for_job(job_id, STALE_SECONDS + 15)
        assert job["state"] == "failed", f"the killed worker's job still reads {job}"
        assert job["error"] == STALE_ERROR
        context = f"killed at {point} ({trap}; POCHTA_FAULT_SEED={SEED})"
        finish_and_check(app, user, servers, proxy, seeded, context)


# -- the other side of the stale window: a live job is not declared dead -------------------------


def test_slow_fetch_outlives_the_stale_window(app: LiveApp, servers: RealServers) -> None:
    """A fetch from an honest but slow server (every answer after 0.8 s, ten seconds in all)
    lasts far longer than the 3 s stale window: its heartbeat must keep it "running" until it
    ends "done", whichever worker is asked."""
    slow = HostileServer("pop3", "slow_replies", honest_sessions=1, interval=0.8)
    with slow:
        user = WebUser(app.url)
        fields = login_fields(USER, servers.users[USER], pop3=("127.0.0.1", slow.port, "none"),
                              smtp=real_smtp(servers))
        assert user.log_in(fields).status == 303
        job_id = user.start_fetch()
        started = time.monotonic()
        while (job := user.job(job_id))["state"] == "running":
            assert time.monotonic() - started < FETCH_TIMEOUT, job
            time.sleep(0.2)
        elapsed = time.monotonic() - started
    assert slow.errors == []
    assert elapsed > 2 * STALE_SECONDS, f"the fetch took only {elapsed:.1f} s: nothing proven"
    assert (job["state"], job["new"], job["error"]) == ("done", 1, None), job


# -- cutting the connection -----------------------------------------------------------------------

CUT_POINTS = {
    "mid-RETR": lambda seeded: Trap(action="cut", server_bytes=150 * seeded.wire_size + 77),
    "right-after-a-commit": lambda seeded: Trap(action="cut", command="DELE"),
}


@pytest.mark.parametrize("point", list(CUT_POINTS))
def test_connection_cut_mid_fetch_fails_clearly_and_loses_nothing(
    app: LiveApp, servers: RealServers, point: str
) -> None:
    seeded = seed(servers)
    with FaultProxy((servers.host, servers.pop3_plain_port)) as proxy:
        user = log_in_through(app, servers, proxy)
        proxy.arm(CUT_POINTS[point](seeded))
        job = user.wait_for_job(user.start_fetch(), FETCH_TIMEOUT)
        assert proxy.sprung.is_set()
        assert job["state"] == "failed", job
        assert f"The connection to the POP3 server 127.0.0.1:{proxy.port} broke" in job["error"]
        finish_and_check(app, user, servers, proxy, seeded, f"cut {point}")


# -- a full disk ---------------------------------------------------------------------------------

TMPFS_BYTES = 16 * 1024 * 1024
# 300 messages take about 3.5 MB of WAL: the first batch of 200 fits, the second does not.
FREE_BYTES = 3 * 1024 * 1024

@contextlib.contextmanager
def small_tmpfs(directory: Path) -> Iterator[Path]:
    directory.mkdir(parents=True, exist_ok=True)
    mounted = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={TMPFS_BYTES},mode=0700", "tmpfs", str(directory)],
        capture_output=True, text=True, check=False,
    )
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs for the full-disk test: {mounted.stderr.strip()}")
    try:
        yield directory
    finally:
        if subprocess.run(["umount", str(directory)], check=False).returncode != 0:
            subprocess.run(["umount", "-l", str(directory)], check=False)


def fill_up(directory: Path, leave_free: int) -> Path:
    ballast = directory / "ballast"
    stats = os.statvfs(directory)
    size = stats.f_bavail * stats.f_frsize - leave_free
    assert size > 0, "the tmpfs is already fuller than the test expects"
    with ballast.open("wb") as handle:
        handle.write(b"\0" * size)
    return ballast


@dataclass
class DiskFullRun:
    """What one fetch onto a full disk, then one after space was freed, left behind."""

    seeded: Seeded
    reported: list[tuple[int, dict | None]]  # GET /fetch/<job> while the disk was full
    idle: bool  # the fetch's POP3 connection ended (the job thread gave up)
    stored_when_full: collections.Counter[str]
    on_server_when_full: collections.Counter[str]
    final_job: dict | None
    stored_at_end: collections.Counter[str]
    on_server_at_end: int


def poll_job(user: WebUser, job_id: str, timeout: float) -> list[tuple[int, dict | None]]:
    """Every answer of GET /fetch/<job> until it is no longer "running" (or not 200)."""
    answers: list[tuple[int, dict | None]] = []
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        reply = user.get(f"/fetch/{job_id}")
        answers.append((reply.status, reply.json() if reply.status == 200 else None))
        if reply.status != 200 or answers[-1][1]["state"] != "running":  # type: ignore[index]
            break
        time.sleep(0.1)
    return answers


@pytest.fixture(scope="module")
def disk_full_run(
    tmp_path_factory: pytest.TempPathFactory, real_servers: RealServers
) -> Iterator[DiskFullRun]:
    """The data dir on a nearly full tmpfs: fetch, look, free the space, fetch again."""
    workdir = tmp_path_factory.mktemp("disk-full")
    env = {**app_env(real_servers), **fast_stale_env()}
    seeded = seed(real_servers)
    try:
        with small_tmpfs(workdir / "data") as data_dir, \
                running_app(workdir, env, workers=2, threads=4) as app, \
                FaultProxy((real_servers.host, real_servers.pop3_plain_port)) as proxy:
            user = log_in_through(app, real_servers, proxy)
            user.inbox_subjects()  # the account's mailbox file exists before the disk fills
            ballast = fill_up(data_dir, FREE_BYTES)

            job_id = user.start_fetch()
            idle = proxy.wait_until_idle(FETCH_TIMEOUT)
            reported = poll_job(user, job_id, STALE_SECONDS + 5)
            stored_when_full = markers_in_store(data_dir, proxy.port)
            on_server_when_full = markers_on_server(real_servers)

            ballast.unlink()
            time.sleep(STALE_SECONDS)  # a job that could not even record its end is stale now
            final = user.wait_for_job(user.start_fetch(), FETCH_TIMEOUT)
            yield DiskFullRun(
                seeded, reported, idle, stored_when_full, on_server_when_full, final,
                markers_in_store(data_dir, proxy.port), real_servers.count(USER),
            )
    finally:
        real_servers.clear(USER)


def test_disk_full_mid_fetch_loses_nothing_and_recovers(disk_full_run: DiskFullRun) -> None:
    run = disk_full_run
    assert run.idle, "the fetch onto a full disk never ended its POP3 session"
    twice = [marker for marker, n in run.stored_when_full.items() if n > 1]
    assert not twice, f"stored twice: {twice[:10]}"
    lost = set(run.seeded.markers) - set(run.stored_when_full) - set(run.on_server_when_full)
    assert not lost, f"{len(lost)} messages were neither stored nor left on the server"
    assert len(run.stored_when_full) < MESSAGES, "the disk never filled: nothing to prove"

    assert run.final_job is not None and run.final_job["state"] == "done", run.final_job
    assert run.final_job["error"] is None, run.final_job
    assert max(run.stored_at_end.values()) == 1, "a message was stored twice"
    assert set(run.stored_at_end) == set(run.seeded.markers)
    assert run.on_server_at_end == 0


def test_disk_full_mid_fetch_is_reported_to_the_user(disk_full_run: DiskFullRun) -> None:
    status, job = disk_full_run.reported[-1]
    assert status == 200, f"GET /fetch/<job> answered {status} while the disk was full"
    assert job is not None and job["state"] == "failed", f"the job reads {job}"
    assert "could not be stored" in job["error"], job
    assert any(word in job["error"] for word in ("full", "space")), job
