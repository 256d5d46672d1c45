"""Running the web app under gunicorn with the package's own configuration module.

`pochta serve`, `pochta demo` and the Docker image all start the same command line, so what
is tested outside a container is what runs inside one.
"""

from __future__ import annotations

import os
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
    """Start gunicorn in a child process (its output goes to ours)."""
    return subprocess.Popen(gunicorn_command(bind), env={**os.environ, **(env or {})})


def exec_gunicorn(bind: str) -> None:
    """Become gunicorn (for `pochta serve`: signals then reach it directly)."""
    command = gunicorn_command(bind)
    os.execv(command[0], command)  # noqa: S606 - a fixed command line, no shell
