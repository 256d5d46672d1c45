"""The app under gunicorn for reliability tests, and the login forms that reach mail servers.

`running_app()` wraps `tests.support.liveapp.start_live_app` so that every app a reliability
test starts is stopped afterwards and its log tail lands in the report of a failing test
(see conftest.py).
"""

from __future__ import annotations

import contextlib
import re
from collections.abc import Iterator, Mapping
from pathlib import Path

from tests.support.liveapp import LiveApp, real_servers_env, start_live_app
from tests.support.realservers import RealServers

RUNNING: list[LiveApp] = []
# What must never show in the log of an app that did its job.
LOG_TROUBLE = re.compile(r"Traceback|database is locked|\[CRITICAL\]|WORKER TIMEOUT")


@contextlib.contextmanager
def running_app(
    workdir: Path, env: Mapping[str, str], *, workers: int, threads: int
) -> Iterator[LiveApp]:
    app = start_live_app(workdir / "data", env, workers=workers, threads=threads)
    RUNNING.append(app)
    try:
        yield app
    finally:
        RUNNING.remove(app)
        app.stop()


def app_env(servers: RealServers, **overrides: str) -> dict[str, str]:
    """The login form's defaults at the real servers; any POCHTA_* override on top."""
    return {**real_servers_env(servers, host="127.0.0.1"), **overrides}


def login_fields(
    email: str,
    password: str,
    *,
    pop3: tuple[str, int, str],
    smtp: tuple[str, int, str],
    keep_on_server: bool = True,
) -> dict[str, object]:
    """The login form as a browser posts it (the hidden "0" backs the checkbox)."""
    return {
        "email": email,
        "password": password,
        "username": email,
        "pop3_host": pop3[0],
        "pop3_port": pop3[1],
        "pop3_security": pop3[2],
        "smtp_host": smtp[0],
        "smtp_port": smtp[1],
        "smtp_security": smtp[2],
        "keep_on_server": "y" if keep_on_server else "0",
    }


def real_pop3(servers: RealServers) -> tuple[str, int, str]:
    return (servers.host, servers.pop3_tls_port, "tls")


def real_smtp(servers: RealServers) -> tuple[str, int, str]:
    return (servers.host, servers.smtp_starttls_port, "starttls")


def log_trouble(app: LiveApp) -> list[str]:
    """The lines of the app's log that show a traceback, a locked database or a dead worker."""
    text = app.log_path.read_text(errors="replace")
    return [line for line in text.splitlines() if LOG_TROUBLE.search(line)]
