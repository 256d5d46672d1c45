"""The image's exact command line, run outside a container: it serves /healthz and the login
page, passes the image's own HEALTHCHECK, and stops cleanly on SIGTERM (`docker stop`).

The command and the environment come from the Dockerfile itself, so this breaks when they
drift; only the data dir (a temp dir) and the address (a free port on loopback) differ.
"""

from __future__ import annotations

import os
import runpy
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.deploy.dockerfile import final_stage

START_TIMEOUT = 30.0


@dataclass
class Server:
    process: subprocess.Popen[bytes]
    env: dict[str, str]
    url: str
    log: Path
    graceful_timeout: float

    def output(self) -> str:
        return self.log.read_text(encoding="utf-8", errors="replace")


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _image_env(tmp_path: Path) -> dict[str, str]:
    """The image's ENV, the base image's LANG, and this venv first on PATH (where the
    image has /usr/local/bin): nothing of the developer's own POCHTA_* settings."""
    env = {
        "PATH": os.pathsep.join([str(Path(sys.executable).parent), os.environ.get("PATH", "")]),
        "HOME": str(tmp_path),
        "LANG": "C.UTF-8",
        **final_stage().env,
    }
    env["POCHTA_DATA_DIR"] = str(tmp_path / "data")
    env["POCHTA_BIND"] = f"127.0.0.1:{_free_port()}"
    return env


def _gunicorn_settings(env: dict[str, str], monkeypatch: pytest.MonkeyPatch) -> dict:
    """app/gunicorn_conf.py evaluated afresh in exactly the server's environment."""
    with monkeypatch.context() as patch:
        for name in [n for n in os.environ if n.startswith("POCHTA_")]:
            patch.delenv(name)
        for name, value in env.items():
            if name.startswith("POCHTA_"):
                patch.setenv(name, value)
        return runpy.run_module("app.gunicorn_conf")


def _get(url: str, headers: dict[str, str] | None = None) -> tuple[int, dict, str]:
    request = urllib.request.Request(url, headers=headers or {})
    with urllib.request.urlopen(request, timeout=10) as response:
        return response.status, dict(response.headers), response.read().decode()


def _wait_until_serving(server: Server) -> None:
    deadline = time.monotonic() + START_TIMEOUT
    while time.monotonic() < deadline:
        if server.process.poll() is not None:
            pytest.fail(f"gunicorn exited with {server.process.returncode}:\n{server.output()}")
        try:
            _get(server.url + "/healthz")
        except (urllib.error.URLError, ConnectionError):
            time.sleep(0.1)
        else:
            return
    pytest.fail(f"no answer within {START_TIMEOUT}s:\n{server.output()}")


@pytest.fixture
def server(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Server]:
    env = _image_env(tmp_path)
    settings = _gunicorn_settings(env, monkeypatch)
    assert settings["bind"] == env["POCHTA_BIND"]
    workdir = tmp_path / "workdir"  # like the image's empty WORKDIR: no checkout on sys.path
    workdir.mkdir()
    log = tmp_path / "gunicorn.log"
    with log.open("wb") as sink:
        process = subprocess.Popen(
            final_stage().command, env=env, cwd=workdir, stdout=sink, stderr=subprocess.STDOUT
        )
    running = Server(
        process, env, f"http://{env['POCHTA_BIND']}", log, float(settings["graceful_timeout"])
    )
    try:
        _wait_until_serving(running)
        yield running
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()


def _health_check(server: Server) -> subprocess.CompletedProcess[str]:
    _, command = final_stage().healthcheck
    return subprocess.run(
        command, env=server.env, capture_output=True, text=True, timeout=30, check=False
    )


def test_image_command_serves_health_and_login_and_stops_on_sigterm(server: Server):
    status, _, body = _get(server.url + "/healthz")
    assert (status, body) == (200, "ok")

    status, headers, page = _get(server.url + "/login")
    assert status == 200
    assert 'action="/login"' in page
    assert 'name="password"' in page and 'name="csrf_token"' in page
    assert "Secure" not in headers["Set-Cookie"], "no proxy is trusted by default"
    status, _, css = _get(server.url + "/static/css/pochta.css")
    assert status == 200 and css

    key = Path(server.env["POCHTA_DATA_DIR"]) / "secret_key"
    assert key.stat().st_mode & 0o777 == 0o600, "the key is made in POCHTA_DATA_DIR"

    checked = _health_check(server)
    assert checked.returncode == 0, checked.stderr

    started = time.monotonic()
    server.process.send_signal(signal.SIGTERM)
    try:
        code = server.process.wait(timeout=server.graceful_timeout)
    except subprocess.TimeoutExpired:
        pytest.fail(f"still running {server.graceful_timeout}s after SIGTERM:\n{server.output()}")
    assert code == 0, server.output()
    assert time.monotonic() - started < server.graceful_timeout
    assert "Shutting down" in server.output()

    assert _health_check(server).returncode != 0, "the health check fails once it is gone"
