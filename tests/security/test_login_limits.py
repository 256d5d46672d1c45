"""Password guessing (issue 5, item 9): failed logins are limited per account and per client
address, the counts shared by every worker (two apps on one data dir here, and gunicorn with
several workers below), refused with a clear 429 page before any connection is made.
"""

from __future__ import annotations

import http.cookiejar
import os
import re
import signal
import socket
import subprocess
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
from flask import Flask
from flask.testing import FlaskClient

from app import create_app
from app.demo.server import DemoMailServer
from app.serving import gunicorn_command
from app.web.auth import FAILURE_WINDOW, MAX_FAILURES_PER_ACCOUNT, MAX_FAILURES_PER_ADDRESS
from tests.security.fakes import FakeMailServer
from tests.web.conftest import app_config, csrf_token, login_data

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture
def fake() -> Iterator[FakeMailServer]:
    """A server that knows one account, victim/right, and counts every connection."""
    with FakeMailServer(passwords={"victim": "right"}) as server:
        yield server


def attempt(browser: FlaskClient, server: FakeMailServer, *, username: str = "victim",
            password: str = "wrong", address: str = "192.0.2.1",
            headers: dict[str, str] | None = None):
    browser.environ_base["REMOTE_ADDR"] = address
    form = {"email": f"{username}@evil.example" if "@" not in username else username,
            "username": username, "password": password,
            "pop3_host": "127.0.0.1", "pop3_port": server.pop3_port, "pop3_security": "none",
            "smtp_host": "127.0.0.1", "smtp_port": server.smtp_port, "smtp_security": "none",
            "csrf_token": csrf_token(browser)}
    return browser.post("/login", data=form, headers=headers or {})


@pytest.fixture
def workers(tmp_path: Path, mail_server: DemoMailServer) -> Iterator[tuple[Flask, Flask]]:
    """Two apps on one data dir: the state two gunicorn workers share, and nothing more."""
    first = create_app(app_config(tmp_path, mail_server))
    second = create_app(app_config(tmp_path, mail_server))
    yield first, second
    for application in (first, second):
        application.extensions["pochta.store"].close()


def test_the_limits_are_tight_enough_to_matter() -> None:
    """The tests below take their numbers from the app; these bound what they may be."""
    assert 1 <= MAX_FAILURES_PER_ACCOUNT <= 10
    assert MAX_FAILURES_PER_ACCOUNT <= MAX_FAILURES_PER_ADDRESS <= 50
    assert FAILURE_WINDOW >= 5 * 60


def assert_clear_429(response) -> None:
    assert response.status_code == 429
    page = response.get_data(as_text=True)
    assert "Too many attempts" in page and "Wait a few minutes" in page


def test_failures_per_account_are_limited_in_every_worker(
        workers: tuple[Flask, Flask], fake: FakeMailServer) -> None:
    browsers = [w.test_client() for w in workers]
    for n in range(MAX_FAILURES_PER_ACCOUNT):
        # From a different address each time: the account's limit does not care.
        response = attempt(browsers[n % 2], fake, address=f"192.0.2.{n + 1}")
        assert response.status_code == 403, n
    connections = fake.pop3_connections
    for browser in browsers:
        refused = attempt(browser, fake, password="right", address="198.51.100.77")
        assert_clear_429(refused)
        assert browser.get("/inbox").status_code == 302
    assert fake.pop3_connections == connections  # refused before any connection


def test_failures_per_address_are_limited_in_every_worker(
        workers: tuple[Flask, Flask], fake: FakeMailServer) -> None:
    browsers = [w.test_client() for w in workers]
    for n in range(MAX_FAILURES_PER_ADDRESS):
        response = attempt(browsers[n % 2], fake, username=f"guess{n}", address="203.0.113.7")
        assert response.status_code == 403, n
    connections = fake.pop3_connections
    for browser in browsers:
        assert_clear_429(attempt(browser, fake, username="fresh", address="203.0.113.7"))
        # A spoofed X-Forwarded-For does not make a new client without a trusted proxy.
        assert_clear_429(attempt(browser, fake, username="fresh", address="203.0.113.7",
                                 headers={"X-Forwarded-For": "198.51.100.1"}))
    assert fake.pop3_connections == connections
    # Another client is not punished for it, and the victim can still log in from there.
    assert attempt(browsers[0], fake, username="fresh", address="198.51.100.2").status_code == 403
    ok = attempt(browsers[1], fake, password="right", address="198.51.100.3")
    assert ok.status_code == 303


def test_behind_a_trusted_proxy_each_client_has_its_own_count(
        tmp_path: Path, mail_server: DemoMailServer, fake: FakeMailServer) -> None:
    application = create_app(app_config(tmp_path, mail_server, POCHTA_TRUST_PROXY="1"))
    try:
        browser = application.test_client()
        for n in range(MAX_FAILURES_PER_ADDRESS):
            response = attempt(browser, fake, username=f"guess{n}", address="10.0.0.1",
                               headers={"X-Forwarded-For": "203.0.113.9"})
            assert response.status_code == 403
        assert_clear_429(attempt(browser, fake, username="fresh", address="10.0.0.1",
                                 headers={"X-Forwarded-For": "203.0.113.9"}))
        other = attempt(browser, fake, username="fresh", address="10.0.0.1",
                        headers={"X-Forwarded-For": "198.51.100.4"})
        assert other.status_code == 403
    finally:
        application.extensions["pochta.store"].close()


def test_an_ipv6_client_cannot_rotate_within_its_own_network(
        workers: tuple[Flask, Flask], fake: FakeMailServer) -> None:
    browser = workers[0].test_client()
    for n in range(MAX_FAILURES_PER_ADDRESS):
        response = attempt(browser, fake, username=f"guess{n}", address=f"2001:db8:1:2::{n + 1:x}")
        assert response.status_code == 403, n
    assert_clear_429(attempt(browser, fake, username="fresh", address="2001:db8:1:2::ffff"))


def test_the_refusal_is_clear_in_json_too(workers: tuple[Flask, Flask],
                                          fake: FakeMailServer) -> None:
    browser = workers[0].test_client()
    for n in range(MAX_FAILURES_PER_ACCOUNT):
        attempt(browser, fake, address=f"192.0.2.{n + 1}")
    response = attempt(browser, fake, headers={"Accept": "application/json"})
    assert response.status_code == 429
    assert "too many failed logins" in response.get_json()["error"].lower()


def test_spelling_the_account_differently_does_not_reset_its_count(
        app: Flask, mail_server: DemoMailServer) -> None:
    browser = app.test_client()

    def guess(username: str, password: str, n: int, host: str = "localhost"):
        browser.environ_base["REMOTE_ADDR"] = f"192.0.2.{n + 1}"
        form = login_data(mail_server, "alice", username=username, password=password,
                          pop3_host=host, smtp_host=host)
        return browser.post("/login", data={**form, "csrf_token": csrf_token(browser)})

    for n in range(MAX_FAILURES_PER_ACCOUNT):
        assert guess("alice", "wrong", n).status_code == 403
    assert guess("alice", "alice-pw", 50).status_code == 429
    # The same mailbox, spelled as the demo server (like many real ones) also accepts it:
    assert guess("Alice@Demo.Pochta.Test", "alice-pw", 51, host="127.0.0.1").status_code == 429


def test_a_plus_detail_does_not_reset_the_count(app: Flask, mail_server: DemoMailServer) -> None:
    browser = app.test_client()

    def guess(username: str, password: str, n: int):
        browser.environ_base["REMOTE_ADDR"] = f"192.0.2.{n + 1}"
        form = login_data(mail_server, "alice", username=username, password=password)
        return browser.post("/login", data={**form, "csrf_token": csrf_token(browser)})

    for n in range(MAX_FAILURES_PER_ACCOUNT):
        assert guess("alice", "wrong", n).status_code == 403
    assert guess("alice+again@demo.pochta.test", "alice-pw", 60).status_code == 429


# -- gunicorn with several workers --------------------------------------------------------------

def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class Gunicorn:
    """`app:create_app()` under the package's own gunicorn config, as production runs it."""

    def __init__(self, data_dir: Path, workers: int = 3) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.workers = workers
        self.log = data_dir.parent / "gunicorn.log"
        env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, (
                   str(REPO), os.environ.get("PYTHONPATH", "")))),
               "POCHTA_DATA_DIR": str(data_dir), "POCHTA_WORKERS": str(workers),
               "POCHTA_THREADS": "2", "POCHTA_SECRET_KEY": "security-test-key",
               "POCHTA_MAIL_TIMEOUT": "5"}
        with self.log.open("ab") as log:
            self.process = subprocess.Popen(
                gunicorn_command(f"127.0.0.1:{self.port}"), env=env, cwd=REPO,
                stdin=subprocess.DEVNULL, stdout=log, stderr=log, start_new_session=True)
        self.wait_for(lambda pids: len(pids) >= workers)

    def worker_pids(self) -> set[int]:
        path = Path(f"/proc/{self.process.pid}/task/{self.process.pid}/children")
        try:
            return {int(pid) for pid in path.read_text().split()}
        except (OSError, ValueError):
            return set()

    def wait_for(self, ready, timeout: float = 30.0) -> set[int]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            assert self.process.poll() is None, self.log.read_text()[-3000:]
            pids = self.worker_pids()
            if ready(pids) and self.healthy():
                return pids
            time.sleep(0.1)
        raise AssertionError(f"gunicorn not ready:\n{self.log.read_text()[-3000:]}")

    def healthy(self) -> bool:
        try:
            with urllib.request.urlopen(f"{self.url}/healthz", timeout=2) as response:
                return response.status == 200
        except OSError:
            return False

    def restart_workers(self) -> set[int]:
        """Every worker replaced by a fresh process (SIGHUP), so no memory survives."""
        old = self.worker_pids()
        os.kill(self.process.pid, signal.SIGHUP)
        return self.wait_for(lambda pids: len(pids) == self.workers and not pids & old)

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(15)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait(15)


def http_attempt(app: Gunicorn, server: FakeMailServer, password: str) -> int:
    """One login in a fresh browser (its own cookie jar and connections)."""
    jar = http.cookiejar.CookieJar()
    opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(jar))
    with opener.open(f"{app.url}/login", timeout=10) as page:
        token = re.search(r'name="csrf_token"[^>]*value="([^"]+)"', page.read().decode())
    assert token
    form = urllib.parse.urlencode({
        "csrf_token": token.group(1), "email": "victim@evil.example", "username": "victim",
        "password": password, "pop3_host": "127.0.0.1", "pop3_port": server.pop3_port,
        "pop3_security": "none", "smtp_host": "127.0.0.1", "smtp_port": server.smtp_port,
        "smtp_security": "none"}).encode()

    class NoRedirect(urllib.request.HTTPRedirectHandler):
        def redirect_request(self, *args, **kwargs):
            return None

    opener.add_handler(NoRedirect())
    try:
        with opener.open(f"{app.url}/login", data=form, timeout=20) as response:
            return response.status
    except urllib.error.HTTPError as error:
        error.close()
        return error.code


@pytest.mark.slow
def test_gunicorn_workers_share_the_count_across_restarts(tmp_path: Path,
                                                          fake: FakeMailServer) -> None:
    server = Gunicorn(tmp_path / "data", workers=3)
    try:
        half = MAX_FAILURES_PER_ACCOUNT // 2
        assert [http_attempt(server, fake, "wrong") for _ in range(half)] == [403] * half
        # Fresh worker processes: nothing a worker kept in memory can count any more.
        server.restart_workers()
        rest = MAX_FAILURES_PER_ACCOUNT - half
        assert [http_attempt(server, fake, "wrong") for _ in range(rest)] == [403] * rest
        connections = fake.pop3_connections
        assert http_attempt(server, fake, "right") == 429
        assert fake.pop3_connections == connections
    finally:
        server.stop()
