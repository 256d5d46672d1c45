"""The web app running for real: gunicorn with the package's own config, several workers.

Browser and reliability tests need what production runs, not the Flask test client: the
command line of `app.serving.gunicorn_command()`, threaded workers in separate processes
that share one data dir and one secret key, and real HTTP on a loopback port.

`start_live_app()` starts one on a free port and returns once it answers /healthz and every
worker has booted; `LiveApp.stop()` sends SIGTERM and waits (SIGKILL if it hangs). Gunicorn's
output goes to `<data dir>-gunicorn.log` beside the data dir; `LiveApp.log_tail()` is what a
failure report should show. The fixture `live_app` gives each test a fresh one (under a
second to start) wired to the session's real Dovecot and Postfix, so no test sees another's
stored mail.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path

import pytest

from app.serving import gunicorn_command
from tests.support.realservers import RealServers

HOST = "127.0.0.1"
START_TIMEOUT = 30.0
STOP_TIMEOUT = 15.0
REPO_ROOT = Path(__file__).resolve().parents[2]
# The same key in every worker from the first request on (before any key file exists).
TEST_SECRET_KEY = "pochta-live-app-test-key-not-secret"


LIVE_APP_KEY = pytest.StashKey["LiveApp"]()


class LiveAppError(Exception):
    """The app did not start or stop; the message carries gunicorn's output."""


@dataclass
class LiveApp:
    """A running gunicorn: where it listens, where it keeps its data and its output."""

    url: str
    port: int
    data_dir: Path
    log_path: Path
    workers: int
    process: subprocess.Popen[bytes]

    def log_tail(self, lines: int = 40) -> str:
        try:
            text = self.log_path.read_text(errors="replace")
        except OSError:
            return "(no gunicorn log)"
        return "\n".join(text.splitlines()[-lines:]) or "(empty)"

    def worker_pids(self) -> list[int]:
        """The worker processes gunicorn runs right now (children of the master)."""
        try:
            children = Path(f"/proc/{self.process.pid}/task/{self.process.pid}/children")
            return [int(pid) for pid in children.read_text().split()]
        except (OSError, ValueError):
            return []

    def stop(self) -> None:
        """SIGTERM, wait for a graceful end; SIGKILL the whole group if it hangs."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(STOP_TIMEOUT)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait(STOP_TIMEOUT)

    def __enter__(self) -> LiveApp:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind((HOST, 0))
        return sock.getsockname()[1]


def real_servers_env(servers: RealServers, host: str = "localhost") -> dict[str, str]:
    """POCHTA_* settings that point the login form's defaults at the real servers.

    `host` is what the form offers: their certificate names both localhost and 127.0.0.1.
    """
    return {
        "POCHTA_CA_FILE": str(servers.ca_file),
        "POCHTA_SMTP_HOST": host,
        "POCHTA_SMTP_PORT": str(servers.smtp_starttls_port),
        "POCHTA_SMTP_SECURITY": "starttls",
        "POCHTA_POP3_HOST": host,
        "POCHTA_POP3_PORT": str(servers.pop3_tls_port),
        "POCHTA_POP3_SECURITY": "tls",
        "POCHTA_MAIL_TIMEOUT": "10",
    }


def start_live_app(
    data_dir: Path,
    env_overrides: Mapping[str, str] | None = None,
    workers: int = 3,
    threads: int = 4,
) -> LiveApp:
    """Start gunicorn serving `app:create_app()` on a free loopback port; wait until it serves.

    The environment is ours plus POCHTA_DATA_DIR, POCHTA_WORKERS, POCHTA_THREADS, a fixed
    POCHTA_SECRET_KEY and `env_overrides` (which win). Raises LiveAppError with the log's tail
    when it does not come up.
    """
    data_dir = Path(data_dir)
    data_dir.mkdir(parents=True, exist_ok=True)
    log_path = data_dir.parent / f"{data_dir.name}-gunicorn.log"
    for attempt in (1, 2, 3):
        port = free_port()
        env = {
            **os.environ,
            "PYTHONPATH": os.pathsep.join(
                p for p in (str(REPO_ROOT), os.environ.get("PYTHONPATH", "")) if p
            ),
            "POCHTA_DATA_DIR": str(data_dir),
            "POCHTA_WORKERS": str(workers),
            "POCHTA_THREADS": str(threads),
            "POCHTA_SECRET_KEY": TEST_SECRET_KEY,
            "POCHTA_LOG_LEVEL": "info",
            # Gunicorn 23+ opens a control socket at one path per user (~/.gunicorn/), which
            # a second instance would take over: each live app gets its own.
            "GUNICORN_CMD_ARGS": f"--control-socket {data_dir.parent / (data_dir.name + '.ctl')}",
            **(env_overrides or {}),
        }
        with log_path.open("ab") as log:
            process = subprocess.Popen(
                gunicorn_command(f"{HOST}:{port}"),
                env=env, cwd=REPO_ROOT, stdin=subprocess.DEVNULL, stdout=log, stderr=log,
                start_new_session=True,  # its own process group: teardown can end it all
            )
        app = LiveApp(f"http://{HOST}:{port}", port, data_dir, log_path, workers, process)
        try:
            _wait_until_serving(app)
        except LiveAppError:
            app.stop()
            # Another process may have taken the port between our probe and gunicorn's bind.
            if attempt == 3 or "Address already in use" not in app.log_tail():
                raise
            continue
        return app
    raise AssertionError("unreachable")


def _wait_until_serving(app: LiveApp) -> None:
    deadline = time.monotonic() + START_TIMEOUT
    while True:
        if app.process.poll() is not None:
            raise LiveAppError(
                f"gunicorn exited with {app.process.returncode}:\n{app.log_tail()}"
            )
        if _healthy(app.url) and _booted_workers(app) >= app.workers:
            return
        if time.monotonic() > deadline:
            raise LiveAppError(
                f"gunicorn did not serve {app.url}/healthz with {app.workers} workers "
                f"within {START_TIMEOUT} s:\n{app.log_tail()}"
            )
        time.sleep(0.05)


def _healthy(url: str) -> bool:
    try:
        with urllib.request.urlopen(f"{url}/healthz", timeout=2) as response:
            return response.status == 200 and response.read() == b"ok"
    except (urllib.error.URLError, OSError):
        return False


def _booted_workers(app: LiveApp) -> int:
    return len(app.worker_pids())


class Stopper:
    """Stops live apps in the background: gunicorn's graceful stop takes about a second
    (its workers wake once a second), which the next test need not wait for. `join()` at the
    end of the session waits for every one of them."""

    def __init__(self) -> None:
        self._threads: list[threading.Thread] = []

    def stop(self, app: LiveApp, workdir: Path) -> None:
        def stop_and_remove() -> None:
            try:
                app.stop()
            finally:
                shutil.rmtree(workdir, ignore_errors=True)

        thread = threading.Thread(target=stop_and_remove, name=f"stop {app.url}")
        thread.start()
        self._threads.append(thread)

    def join(self) -> None:
        for thread in self._threads:
            thread.join()


@pytest.fixture(scope="session")
def live_app_stopper() -> Iterator[Stopper]:
    stopper = Stopper()
    yield stopper
    stopper.join()


def serve_for_test(
    request: pytest.FixtureRequest, stopper: Stopper, env: Mapping[str, str], **options: int
) -> Iterator[LiveApp]:
    """The body of a live-app fixture: start, stash for failure reports, stop in the background."""
    workdir = Path(tempfile.mkdtemp(prefix="pochta-live-"))
    try:
        app = start_live_app(workdir / "data", env, **options)
    except BaseException:
        shutil.rmtree(workdir, ignore_errors=True)
        raise
    request.node.stash[LIVE_APP_KEY] = app
    try:
        yield app
    finally:
        stopper.stop(app, workdir)


@pytest.fixture
def live_app(
    real_servers: RealServers, live_app_stopper: Stopper, request: pytest.FixtureRequest
) -> Iterator[LiveApp]:
    """A fresh Pochta under gunicorn (3 workers), its login form set to the real servers.

    Function-scoped: every test starts with an empty store (under a second of start-up), so
    a test never depends on what another one fetched. Gunicorn's log tail is attached to the
    report of a failing test (see `attach_log_on_failure`). Register it in a conftest.py with
    `from tests.support.liveapp import live_app, live_app_stopper`.
    """
    yield from serve_for_test(request, live_app_stopper, real_servers_env(real_servers))


def attach_log_on_failure(item: pytest.Item, report: pytest.TestReport) -> None:
    """Add gunicorn's output to a failed test's report (call from pytest_runtest_makereport)."""
    app = item.stash.get(LIVE_APP_KEY, None)
    if app is not None and report.failed and report.when != "teardown":
        report.sections.append(("gunicorn log (tail)", f"{app.log_path}\n{app.log_tail(60)}"))
