"""Twenty users at once against gunicorn with 4 workers: log in, fetch, read, send, fetch again,
delete three messages at once.

A second real Dovecot + Postfix instance with 20 accounts (tests.support.realservers with its
`users` parameter), each seeded with its own messages. Twenty threads, each a browser with its
own cookie jar, do every step together (a barrier lines them up before each one, so the
shared database sees the writes of all of them at the same moment). Every step must succeed,
each user must see exactly their own mail, every message sent must arrive exactly once, and
gunicorn's log must show no "database is locked" and no traceback.
"""

from __future__ import annotations

import secrets
import shutil
import tempfile
import threading
import time
import traceback
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from email.parser import BytesParser
from email.policy import default as default_policy
from pathlib import Path

import pytest

from tests.reliability.apps import app_env, log_trouble, login_fields, running_app
from tests.reliability.client import WebUser
from tests.support.liveapp import LiveApp
from tests.support.realservers import DOMAIN, RealServers, ServerSetupError, start_servers

pytestmark = [pytest.mark.realservers, pytest.mark.slow]

USERS = 20
SEEDED = 3
STEP_TIMEOUT = 120.0  # seconds any one step may take for all twenty
RUN = secrets.token_hex(3)
CROWD = {f"user{n:02d}@{DOMAIN}": f"pass-{n:02d}-{RUN}" for n in range(USERS)}
NAMES = sorted(CROWD)


def seeded_subject(user: str, k: int) -> str:
    return f"Seeded for {user.split('@')[0]} #{k} [{RUN}]"


def sent_subject(sender: str, recipient: str) -> str:
    return f"From {sender.split('@')[0]} to {recipient.split('@')[0]} [{RUN}]"


def recipient_of(sender: str) -> str:
    return NAMES[(NAMES.index(sender) + 1) % USERS]


def sender_to(recipient: str) -> str:
    return NAMES[(NAMES.index(recipient) - 1) % USERS]


def seed_message(user: str, k: int) -> bytes:
    return (
        f"From: Seeder <seeder@{DOMAIN}>\r\nTo: {user}\r\nSubject: {seeded_subject(user, k)}\r\n"
        f"Message-ID: <seed-{k}-{user}>\r\nDate: Mon, 01 Jan 2024 10:0{k}:00 +0000\r\n\r\n"
        f"Body of seeded message {k} for {user}.\r\n"
    ).encode()


@pytest.fixture(scope="module")
def crowd() -> Iterator[RealServers]:
    """A second Dovecot + Postfix, with twenty accounts, each holding its own three messages."""
    workdir = Path(tempfile.mkdtemp(prefix="pochta-crowd-"))
    try:
        try:
            running = start_servers(workdir, users=CROWD)
        except ServerSetupError as exc:
            pytest.fail(f"the 20-user mail servers did not start: {exc}")
        try:
            for user in NAMES:
                running.servers.deliver_many(user, [seed_message(user, k) for k in range(SEEDED)])
            yield running.servers
        finally:
            running.stop()
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


@pytest.fixture(scope="module")
def app(tmp_path_factory: pytest.TempPathFactory, crowd: RealServers) -> Iterator[LiveApp]:
    env = app_env(crowd, POCHTA_MAIL_TIMEOUT="20")
    with running_app(tmp_path_factory.mktemp("crowd-app"), env, workers=4, threads=4) as live:
        yield live


# -- twenty users in lockstep -------------------------------------------------------------------


@dataclass
class Crowd:
    """Runs one step for every user at once; collects what each saw and what went wrong."""

    app: LiveApp
    servers: RealServers
    browsers: dict[str, WebUser] = field(default_factory=dict)
    failures: dict[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.browsers = {user: WebUser(self.app.url, timeout=STEP_TIMEOUT) for user in NAMES}

    def step(self, name: str, action: Callable[[str, WebUser], object]) -> dict[str, object]:
        start = threading.Barrier(USERS, timeout=STEP_TIMEOUT)
        results: dict[str, object] = {}

        def run(user: str) -> None:
            try:
                start.wait()
                results[user] = action(user, self.browsers[user])
            except threading.BrokenBarrierError:
                self.failures.setdefault(user, f"{name}: another user's thread broke the barrier")
            except Exception:
                start.abort()
                self.failures[user] = f"{name}: {traceback.format_exc(limit=4)}"

        threads = [threading.Thread(target=run, args=(user,), name=user) for user in NAMES]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(STEP_TIMEOUT * 2)
        assert not any(thread.is_alive() for thread in threads), f"{name}: a thread hangs"
        assert not self.failures, (
            f"{len(self.failures)} of {USERS} users failed at {name}:\n"
            + "\n".join(f"{user}: {why}" for user, why in sorted(self.failures.items())[:3])
        )
        return results


def log_in(servers: RealServers) -> Callable[[str, WebUser], object]:
    def action(user: str, browser: WebUser) -> None:
        fields = login_fields(
            user, CROWD[user],
            pop3=(servers.host, servers.pop3_tls_port, "tls"),
            smtp=(servers.host, servers.smtp_starttls_port, "starttls"),
        )
        reply = browser.log_in(fields)
        assert reply.status == 303, f"login answered {reply.status}: {reply.error}"
        assert reply.location.endswith("/inbox"), reply.location

    return action


def fetch(user: str, browser: WebUser) -> dict:
    job = browser.wait_for_job(browser.start_fetch(), STEP_TIMEOUT)
    assert job["state"] == "done" and job["error"] is None, f"fetch ended {job}"
    return job


def read_inbox(user: str, browser: WebUser) -> dict[str, str]:
    return browser.inbox_subjects()


def open_first(user: str, browser: WebUser) -> str:
    messages = browser.inbox_subjects()
    message_id, subject = sorted(messages.items(), key=lambda item: item[1])[0]
    page = browser.get(f"/message/{message_id}")
    assert page.status == 200, f"/message/{message_id} answered {page.status}"
    assert subject in page.text
    raw = browser.get(f"/message/{message_id}/raw")
    assert raw.status == 200
    return BytesParser(policy=default_policy).parsebytes(raw.body)["To"]


def send(user: str, browser: WebUser) -> None:
    to = recipient_of(user)
    reply = browser.post_form("/compose", {
        "to": to, "subject": sent_subject(user, to), "body": f"Hello {to}, from {user}.",
    })
    assert reply.status == 303, f"send answered {reply.status}: {reply.error}"
    assert reply.location.endswith("/inbox"), reply.location


def delete_seeded_at_once(user: str, browser: WebUser) -> None:
    """Delete the three seeded messages with three requests at once (three tabs): writes to
    one mailbox from several workers in the same moment."""
    ids = [mid for mid, subject in browser.inbox_subjects().items() if subject.startswith("Seeded")]
    assert len(ids) == SEEDED, ids
    token = browser.csrf_token(f"/message/{ids[0]}")
    answers: dict[str, int] = {}

    def delete(message_id: str) -> None:
        reply = browser.request("POST", f"/message/{message_id}/delete", {"csrf_token": token})
        answers[message_id] = reply.status

    tabs = [threading.Thread(target=delete, args=(mid,)) for mid in ids]
    for tab in tabs:
        tab.start()
    for tab in tabs:
        tab.join(STEP_TIMEOUT)
    assert answers == dict.fromkeys(ids, 303), answers


def sent_copies(servers: RealServers, user: str) -> dict[str, int]:
    """Subjects of the messages sent during this run that sit in the user's Maildir."""
    copies: dict[str, int] = {}
    maildir = servers.maildir(user)
    for folder in ("new", "cur"):
        for path in (maildir / folder).iterdir():
            subject = BytesParser(policy=default_policy).parsebytes(path.read_bytes())["Subject"]
            if subject and subject.startswith("From "):
                copies[str(subject)] = copies.get(str(subject), 0) + 1
    return copies


def wait_for_sent_mail(servers: RealServers, timeout: float = 30.0) -> dict[str, dict[str, int]]:
    deadline = time.monotonic() + timeout
    while True:
        found = {user: sent_copies(servers, user) for user in NAMES}
        if all(found[user] for user in NAMES) or time.monotonic() > deadline:
            return found
        time.sleep(0.2)


def test_twenty_users_at_once(app: LiveApp, crowd: RealServers) -> None:
    people = Crowd(app, crowd)
    own = {user: {seeded_subject(user, k) for k in range(SEEDED)} for user in NAMES}

    people.step("login", log_in(crowd))
    jobs = people.step("fetch", fetch)
    assert all(job["new"] == SEEDED for job in jobs.values()), jobs  # type: ignore[index]

    inboxes = people.step("inbox", read_inbox)
    for user in NAMES:
        seen = set(inboxes[user].values())  # type: ignore[union-attr]
        assert seen == own[user], f"{user} sees {sorted(seen - own[user])} and misses " \
                                  f"{sorted(own[user] - seen)}"

    addressed = people.step("open a message", open_first)
    assert all(addressed[user] == user for user in NAMES), addressed

    people.step("send", send)
    arrived = wait_for_sent_mail(crowd)
    for user in NAMES:
        expected = {sent_subject(sender_to(user), user): 1}
        assert arrived[user] == expected, f"{user}'s Maildir holds {arrived[user]}"

    people.step("fetch again", fetch)
    inboxes = people.step("inbox again", read_inbox)
    for user in NAMES:
        seen = sorted(inboxes[user].values())  # type: ignore[union-attr]
        assert seen == sorted(own[user] | {sent_subject(sender_to(user), user)}), (
            f"{user} sees {seen}"
        )

    people.step("delete three at once", delete_seeded_at_once)
    inboxes = people.step("inbox after deleting", read_inbox)
    for user in NAMES:
        seen = list(inboxes[user].values())  # type: ignore[union-attr]
        assert seen == [sent_subject(sender_to(user), user)], f"{user} sees {seen}"

    assert log_trouble(app) == [], "\n".join(log_trouble(app)[:20])
