"""Gunicorn settings for Pochta: the Docker image and `pochta serve` both run with these.

Threaded workers (gthread), so one user's long fetch or send never blocks another's pages;
the numbers come from the environment so an admin can size them without a new image.
Forwarded headers are left to the app (POCHTA_TRUST_PROXY), never trusted by default here.
"""

from __future__ import annotations

import os
import signal
from pathlib import Path


def _number(name: str, default: int) -> int:
    raw = os.environ.get(name, "").strip()
    return int(raw) if raw.isdigit() and int(raw) > 0 else default


bind = os.environ.get("POCHTA_BIND", "127.0.0.1:8000")
workers = _number("POCHTA_WORKERS", 2)
worker_class = "gthread"
threads = _number("POCHTA_THREADS", 8)
# A request may wait on a slow mail server (login checks, sending a big message).
timeout = _number("POCHTA_WORKER_TIMEOUT", 120)
graceful_timeout = _number("POCHTA_GRACEFUL_TIMEOUT", 30)
keepalive = 5
# The workers' heartbeat files go to memory: on a container's overlay (or any disk-backed)
# file system touching them can stall a worker, and /tmp may be read-only there.
# gunicorn makes each with mkstemp and unlinks it at once, so the shared directory is safe.
_SHM = Path("/dev/shm")  # noqa: S108
worker_tmp_dir = str(_SHM) if _SHM.is_dir() else None
forwarded_allow_ips = ""
proxy_allow_ips = ""
accesslog = "-"
errorlog = "-"
loglevel = os.environ.get("POCHTA_LOG_LEVEL", "info")
# The path without the query string: search terms are the user's business, not the log's.
access_log_format = '%(h)s "%(m)s %(U)s" %(s)s %(B)s %(M)sms "%(a)s"'
wsgi_app = "app:create_app()"
# No control socket: every instance would share $HOME/.gunicorn/gunicorn.ctl (a demo beside a
# served instance would fight over it), and nothing here uses it.
control_socket_disable = True


def post_worker_init(worker: object) -> None:
    """Ignore SIGINT in workers: a terminal's Ctrl-C reaches them as well as the master,
    which passes it on as SIGQUIT, and a second quit signal can deadlock a gthread worker's
    shutdown (it re-enters its thread pool's shutdown)."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
