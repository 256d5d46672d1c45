"""Hostile mail servers against the running app (gunicorn, threaded workers, 2 s mail timeout).

A server that never answers, answers forever without a newline, sends a 100 MB reply, hangs up
mid-answer, shows an untrusted certificate, trickles lines just before the timeout forever, or
gives every answer just before the timeout:
the login page must answer within the login's time limit with a sentence saying what went
wrong, the worker's memory must not follow the flood, and meanwhile another user's pages and
/healthz stay fast. A fetch job against such a server must end "failed" with the same kind of
sentence, never stay "running"; a send is cut by its own time limit.
"""

from __future__ import annotations

import statistics
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from app.store import AccountKey, Store
from app.web.mailops import LOGIN_TIME_LIMIT, SEND_TIME_LIMIT
from tests.reliability.apps import (
    app_env,
    log_trouble,
    login_fields,
    real_pop3,
    real_smtp,
    running_app,
)
from tests.reliability.client import WebUser
from tests.reliability.hostile import HostileServer, server_context
from tests.reliability.workers import PeakMemory
from tests.support.liveapp import LiveApp
from tests.support.realservers import RealServers

pytestmark = pytest.mark.realservers

MAIL_TIMEOUT = 2.0  # POCHTA_MAIL_TIMEOUT for this app
LOGIN_LIMIT = LOGIN_TIME_LIMIT * MAIL_TIMEOUT  # one login session's whole budget
MARGIN = 2.5  # page rendering, the other session of the login, a busy 2-core machine
# "Far less than" the 100 MB a server throws at a worker: warm workers' peaks move by a few
# MiB at most here, while a 16 MiB buffer (the POP3 listing cap) would already show.
MAX_GROWTH_MIB = 12
FAST = 1.5  # seconds: a bystander's page that waited for a hostile server would take longer
FETCH_BOUND = LOGIN_LIMIT + 6.0  # a fetch job must have ended "failed" by then
ALICE = "alice@pochta.test"
BOB = "bob@pochta.test"

PROTOCOL = {"pop3": "POP3", "smtp": "SMTP"}
# Where in the dialogue each behaviour strikes at login: the greeting, or the answer to the
# first command (CAPA for POP3, EHLO for SMTP).
LOGIN_POINT = {
    "refused": "greeting", "silent": "greeting", "endless_line": "greeting",
    "bad_cert": "greeting", "huge_reply": "first", "hangup": "first", "trickle": "first",
    "slow_replies": "every answer",
}
FIRST_COMMAND = {"pop3": "CAPA", "smtp": "EHLO"}


@dataclass(frozen=True)
class Expected:
    """What the user must read: every fragment in the sentence (one of `any_of`, if given)."""

    fragments: tuple[str, ...]
    any_of: tuple[str, ...] = ()
    at_least: float = 0.0  # seconds: the app must have waited (for the timeout) this long

    def check(self, sentence: str) -> None:
        for fragment in self.fragments:
            assert fragment in sentence, f"{fragment!r} not in {sentence!r}"
        if self.any_of:
            assert any(f in sentence for f in self.any_of), f"none of {self.any_of} in {sentence!r}"


def expected(behaviour: str, role: str, port: int) -> Expected:
    where = f"{PROTOCOL[role]} server 127.0.0.1:{port}"
    return {
        "refused": Expected((f"Cannot connect to the {where}", "refused")),
        "silent": Expected((f"The {where} did not answer in time",), at_least=MAIL_TIMEOUT * 0.9),
        "endless_line": Expected(
            (f"The {where} answered something Pochta cannot accept", "line longer than")
        ),
        # The login names the server; a fetch says which message was too large.
        "huge_reply": Expected(("127.0.0.1",), any_of=("cannot accept", "too large")),
        "hangup": Expected((f"The connection to the {where} broke",)),
        "bad_cert": Expected((f"A secure connection to the {where} failed", "not trusted")),
        # Each line arrives within the per-read timeout. A POP3 listing must then keep a
        # minimum rate after the first timeout; an SMTP reply's lines are bounded by the
        # session's time limit.
        "trickle": Expected(
            (f"The {where} did not answer in time",),
            at_least=(MAIL_TIMEOUT if role == "pop3" else LOGIN_LIMIT) * 0.9,
        ),
        # Every answer just in time: only the session's time limit can end the login.
        "slow_replies": Expected(
            (f"The {where} did not answer in time",), at_least=LOGIN_LIMIT * 0.9
        ),
    }[behaviour]


# -- the app, its trust, and a bystander ------------------------------------------------------


@dataclass(frozen=True)
class Trust:
    """A CA the app trusts (besides the real servers'), and a server context it does not."""

    bundle: Path
    trusted: object
    rogue: object


@pytest.fixture(scope="module")
def trust(tmp_path_factory: pytest.TempPathFactory, real_servers: RealServers) -> Trust:
    base = tmp_path_factory.mktemp("hostile-certs")
    trusted = server_context(base / "trusted")
    rogue = server_context(base / "rogue")
    bundle = base / "bundle.pem"
    bundle.write_bytes(real_servers.ca_file.read_bytes() + (base / "trusted/ca.pem").read_bytes())
    return Trust(bundle, trusted, rogue)


@pytest.fixture(scope="module")
def app(
    tmp_path_factory: pytest.TempPathFactory, real_servers: RealServers, trust: Trust
) -> Iterator[LiveApp]:
    env = app_env(
        real_servers, POCHTA_CA_FILE=str(trust.bundle), POCHTA_MAIL_TIMEOUT=str(int(MAIL_TIMEOUT))
    )
    with running_app(tmp_path_factory.mktemp("hostile-app"), env, workers=3, threads=4) as live:
        yield live


@pytest.fixture(scope="module")
def bystander(app: LiveApp, real_servers: RealServers) -> WebUser:
    """Bob, logged in at the real servers, who only wants to read his inbox."""
    user = WebUser(app.url)
    fields = login_fields(BOB, real_servers.users[BOB], pop3=real_pop3(real_servers),
                          smtp=real_smtp(real_servers))
    reply = user.log_in(fields)
    assert reply.status == 303, reply.error or reply.text[:1000]
    # Warm every worker up (templates compiled, modules imported, pools filled) before any
    # test measures a worker's peak memory.
    anonymous = WebUser(app.url)
    for _ in range(10 * app.workers):
        assert anonymous.get("/login").status == 200
        assert user.get("/inbox").status == 200
    return user


@pytest.fixture(autouse=True)
def no_lockout(app: LiveApp, real_servers: RealServers) -> None:
    """Every attack here is a failed login from 127.0.0.1, the SMTP ones all for Alice at the
    real Dovecot; the failed-login limits are a defence of their own, not what is tested here."""
    alice = AccountKey(real_servers.host, real_servers.pop3_tls_port, ALICE)
    with Store(app.data_dir) as store:
        store.clear_login_failures("address:127.0.0.1")
        store.clear_login_failures(f"account:{alice.hex}")


@pytest.fixture(scope="module", autouse=True)
def clean_log(app: LiveApp) -> Iterator[None]:
    yield
    assert log_trouble(app) == [], app.log_tail(80)


# -- meanwhile: other requests ---------------------------------------------------------------


@dataclass
class Hammer:
    """Requests /healthz and a logged-in user's /inbox over and over, timing each."""

    app: LiveApp
    user: WebUser
    timings: list[tuple[str, int, float]] = field(default_factory=list)
    failures: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="hammer", daemon=True)
        self._anonymous = WebUser(self.app.url, timeout=20)

    def _run(self) -> None:
        while not self._stop.is_set():
            for path, user in (("/healthz", self._anonymous), ("/inbox", self.user)):
                try:
                    reply = user.get(path, timeout=20)
                except OSError as exc:
                    self.failures.append(f"{path}: {exc}")
                    continue
                self.timings.append((path, reply.status, reply.elapsed))
            self._stop.wait(0.02)

    def __enter__(self) -> Hammer:
        self._thread.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._stop.set()
        self._thread.join(30)

    def assert_served_fast(self) -> None:
        assert not self.failures, self.failures[:5]
        paths = {path for path, _, _ in self.timings}
        assert paths == {"/healthz", "/inbox"}, f"hardly any requests went out: {self.timings}"
        bad = [t for t in self.timings if t[1] != 200]
        assert not bad, f"bystander requests failed meanwhile: {bad[:5]}"
        slowest = max(elapsed for _, _, elapsed in self.timings)
        typical = statistics.median(elapsed for _, _, elapsed in self.timings)
        assert slowest < FAST, (
            f"a bystander waited {slowest:.2f} s (median {typical:.3f} s over "
            f"{len(self.timings)} requests) while a hostile server held a login"
        )


# -- logging in against a hostile server ------------------------------------------------------


def _login_params() -> list[object]:
    params = []
    for role in ("pop3", "smtp"):
        for behaviour in LOGIN_POINT:
            params.append(pytest.param(role, behaviour, id=f"{role}-{behaviour}"))
    return params


@pytest.mark.parametrize(("role", "behaviour"), _login_params())
def test_login_against_hostile_server_fails_clearly_in_time(
    app: LiveApp, bystander: WebUser, real_servers: RealServers, trust: Trust,
    role: str, behaviour: str,
) -> None:
    point = LOGIN_POINT[behaviour]
    server = HostileServer(
        role, behaviour, at=FIRST_COMMAND[role] if point == "first" else "greeting",
        rogue_tls=trust.rogue, interval=MAIL_TIMEOUT * 0.75,
    )
    security = "tls" if behaviour == "bad_cert" else "none"
    hostile = ("127.0.0.1", server.port, security)
    fields = login_fields(
        ALICE, real_servers.users[ALICE],
        pop3=hostile if role == "pop3" else real_pop3(real_servers),
        smtp=hostile if role == "smtp" else real_smtp(real_servers),
    )
    attacker = WebUser(app.url, timeout=LOGIN_LIMIT * 2 + 15)
    token = attacker.csrf_token("/login")
    with server, Hammer(app, bystander) as hammer, PeakMemory(app) as memory:
        reply = attacker.request("POST", "/login", {"csrf_token": token, **fields})
    assert server.errors == []
    want = expected(behaviour, role, server.port)

    assert reply.status == 403, f"{reply.status}: {reply.text[:800]}"
    assert attacker.get("/inbox").status == 302, "a failed login must leave no session"
    want.check(reply.error)
    assert want.at_least <= reply.elapsed < LOGIN_LIMIT + MARGIN, (
        f"the login page answered after {reply.elapsed:.2f} s: {reply.error}"
    )
    hammer.assert_served_fast()
    assert memory.max_growth_mib < MAX_GROWTH_MIB, (
        f"a worker's peak memory grew by {memory.max_growth_mib:.0f} MiB "
        f"(the server sent {server.sent_bytes / 2**20:.0f} MiB): {memory.growth_kib}"
    )


# -- a fetch job against a hostile server -------------------------------------------------------

FETCH_POINT = {
    "refused": "greeting", "silent": "greeting", "endless_line": "LIST",
    "huge_reply": "RETR", "hangup": "RETR", "bad_cert": "greeting", "trickle": "CAPA",
}


def _fetch_params() -> list[object]:
    params = []
    for behaviour in FETCH_POINT:
        params.append(pytest.param(behaviour, id=behaviour))
    return params


@pytest.mark.parametrize("behaviour", _fetch_params())
def test_fetch_job_against_hostile_pop3_ends_failed(
    app: LiveApp, bystander: WebUser, real_servers: RealServers, trust: Trust, behaviour: str,
) -> None:
    """The login check meets an honest server; the fetch that follows meets the hostile one."""
    tls = behaviour == "bad_cert"
    server = HostileServer(
        "pop3", behaviour, at=FETCH_POINT[behaviour], honest_sessions=1,
        tls=trust.trusted if tls else None, rogue_tls=trust.rogue,  # type: ignore[arg-type]
        interval=MAIL_TIMEOUT * 0.75,
    )
    with server:
        user = WebUser(app.url)
        fields = login_fields(
            ALICE, real_servers.users[ALICE], keep_on_server=False,
            pop3=("127.0.0.1", server.port, "tls" if tls else "none"),
            smtp=real_smtp(real_servers),
        )
        login = user.log_in(fields)
        assert login.status == 303, login.error or login.text[:800]
        with Hammer(app, bystander) as hammer, PeakMemory(app) as memory:
            started = time.monotonic()
            job_id = user.start_fetch()
            job = user.wait_for_job(job_id, FETCH_BOUND)
            elapsed = time.monotonic() - started
    assert server.errors == []

    assert job["state"] == "failed", f"after {elapsed:.1f} s the job reads {job}"
    expected(behaviour, "pop3", server.port).check(job["error"] or "")
    assert job["new"] == 0
    with Store(app.data_dir) as store:
        assert store.mailbox(_key(server.port)).count() == 0
    hammer.assert_served_fast()
    assert memory.max_growth_mib < MAX_GROWTH_MIB, (
        f"a worker's peak memory grew by {memory.max_growth_mib:.0f} MiB "
        f"(the server sent {server.sent_bytes / 2**20:.0f} MiB): {memory.growth_kib}"
    )


def _key(port: int) -> AccountKey:
    return AccountKey("127.0.0.1", port, ALICE)


# -- sending through a hostile server -----------------------------------------------------------


def test_send_through_trickling_smtp_is_cut_by_the_send_time_limit(
    app: LiveApp, bystander: WebUser, real_servers: RealServers,
) -> None:
    """The login's AUTH check meets an honest SMTP server; the send that follows is held by
    one answering EHLO a line at a time, each just before the timeout."""
    server = HostileServer("smtp", "trickle", at="EHLO", honest_sessions=1,
                           interval=MAIL_TIMEOUT * 0.75)
    limit = SEND_TIME_LIMIT * MAIL_TIMEOUT
    with server:
        user = WebUser(app.url, timeout=limit * 2 + 15)
        fields = login_fields(ALICE, real_servers.users[ALICE], pop3=real_pop3(real_servers),
                              smtp=("127.0.0.1", server.port, "none"))
        assert user.log_in(fields).status == 303
        with Hammer(app, bystander) as hammer:
            reply = user.post_form("/compose", {
                "to": BOB, "subject": "held by a trickle", "body": "never sent",
            })
    assert server.errors == []
    assert reply.status == 502, f"{reply.status}: {reply.text[:800]}"
    Expected((f"The SMTP server 127.0.0.1:{server.port} did not answer in time",)).check(
        reply.error
    )
    assert limit * 0.9 <= reply.elapsed < limit + MARGIN, f"answered after {reply.elapsed:.1f} s"
    assert "held by a trickle" in reply.text, "the typed message must be kept"
    hammer.assert_served_fast()
