"""Running the web app under gunicorn with the package's own configuration module.

`pochta serve`, `pochta demo` and the Docker image all start the same command line, so what
is tested outside a container is what runs inside one.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
from collections.abc import Mapping


def gunicorn_command(bind: str) -> list[str]:
    return [
        sys.executable, "-m", "gunicorn",
        "--config", "python:app.gunicorn_conf",
        "--bind", bind,
        "app:create_app()",
    ]


def start_gunicorn(bind: str, env: Mapping[str, str] | None = None) -> subprocess.Popen[bytes]:
    """Start gunicorn in a child process (its output goes to ours), in a session of its own:
    a terminal's Ctrl-C reaches only us, and we stop gunicorn as a whole."""
    return subprocess.Popen(
        gunicorn_command(bind), env={**os.environ, **(env or {})}, start_new_session=True
    )


def stop_gunicorn(process: subprocess.Popen[bytes], grace: float = 15.0) -> None:
    """SIGTERM (gunicorn's graceful stop); after `grace` seconds, kill its whole process
    group, so no worker outlives it still holding the port."""
    if process.poll() is None:
        process.terminate()
        with contextlib.suppress(subprocess.TimeoutExpired):
            process.wait(timeout=grace)
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGKILL)
    process.wait()


def exec_gunicorn(bind: str) -> None:
    """Become gunicorn (for `pochta serve`: signals then reach it directly)."""
    command = gunicorn_command(bind)
    os.execv(command[0], command)  # noqa: S606 - a fixed command line, no shell
