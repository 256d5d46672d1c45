"""The project's real Dovecot and Postfix for one benchmark run, with an account per case.

Every case logs in as a user of its own, so one case's mail never shows in another's
mailbox; the twenty `crowd` users are the simultaneous browsers of case 7.
"""

from __future__ import annotations

import contextlib
import shutil
import ssl
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

from app.mail.security import make_tls_context
from tests.support.realservers import DOMAIN, RealServers, start_servers, unavailable_reason

HOST = "127.0.0.1"  # the protocol cases connect here; the web login form says "localhost"
CROWD = 20
ROLES = ("fetch", "keep", "inbox", "memory", "send", "sink")


def address(name: str) -> str:
    return f"{name}@{DOMAIN}"


def password(name: str) -> str:
    return f"{name}-password"


def crowd_names(n: int = CROWD) -> list[str]:
    return [f"user{k:02d}" for k in range(1, n + 1)]


def all_users() -> dict[str, str]:
    names = [*ROLES, *crowd_names()]
    return {address(name): password(name) for name in names}


@contextlib.contextmanager
def running_servers() -> Iterator[RealServers]:
    """Start the servers in a fresh /tmp work directory; always stop them and remove it."""
    reason = unavailable_reason()
    if reason:
        raise SystemExit(f"bench: the real mail servers cannot run here: {reason}")
    workdir = Path(tempfile.mkdtemp(prefix="pochta-bench-servers-", dir="/tmp"))
    workdir.chmod(0o755)
    running = None
    try:
        print(f"starting Dovecot and Postfix in {workdir} ...", file=sys.stderr, flush=True)
        running = start_servers(workdir, users=all_users())
        yield running.servers
    finally:
        if running is not None:
            running.stop()
        shutil.rmtree(workdir, ignore_errors=True)


def tls_context(servers: RealServers) -> ssl.SSLContext:
    """Pochta's own verifying context, trusting the run's CA."""
    return make_tls_context(servers.ca_file)


def plain_tls_context(servers: RealServers) -> ssl.SSLContext:
    """What a poplib/smtplib user would write: the default context plus the CA."""
    return ssl.create_default_context(cafile=str(servers.ca_file))
