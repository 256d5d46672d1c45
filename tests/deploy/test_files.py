"""The deployment files agree with each other and with the app: one health check, one size
limit, timeouts in the right order, no secret in the example, every setting documented."""

from __future__ import annotations

import re
from pathlib import Path

from app.config import MIB, Settings
from tests.deploy.dockerfile import REPO, final_stage

COMPOSE = (REPO / "compose.yaml").read_text(encoding="utf-8")
NGINX = (REPO / "deploy" / "nginx.conf.example").read_text(encoding="utf-8")
DEFAULT_MAX_MESSAGE = Settings(data_dir=Path()).max_message_bytes
GUNICORN_DEFAULTS = {"POCHTA_WORKER_TIMEOUT": 120, "POCHTA_GRACEFUL_TIMEOUT": 30}


def _compose_setting(name: str) -> str:
    match = re.search(rf"^\s+{name}: \"?([^\"\n]*)\"?$", COMPOSE, re.MULTILINE)
    assert match, f"compose.yaml does not set {name}"
    return match.group(1)


def _nginx(directive: str) -> str:
    match = re.search(rf"^\s*{directive}\s+([^;]+);", NGINX, re.MULTILINE)
    assert match, f"deploy/nginx.conf.example has no {directive}"
    return match.group(1).strip()


def _seconds(value: str) -> int:
    number, unit = re.fullmatch(r"(\d+)([sm]?)", value).groups()
    return int(number) * (60 if unit == "m" else 1)


def _nginx_size(value: str) -> int:
    number, unit = re.fullmatch(r"(\d+)([kKmMgG]?)", value).groups()
    return int(number) * {"": 1, "k": 1024, "m": MIB, "g": 1024 * MIB}[unit.lower()]


def test_compose_runs_the_same_health_check_as_the_image():
    _, command = final_stage().healthcheck
    match = re.search(r"- -c\n\s+- \"(.*)\"\n", COMPOSE)
    assert match, "compose.yaml has no python -c health check"
    assert match.group(1) == command[2]


def test_nginx_accepts_a_full_size_message_plus_the_form_around_it():
    compose_limit = int(_compose_setting("POCHTA_MAX_MESSAGE_BYTES"))
    assert compose_limit == DEFAULT_MAX_MESSAGE
    body = _nginx_size(_nginx("client_max_body_size"))
    assert body == Settings(data_dir=Path()).max_upload_bytes == compose_limit + MIB


def test_nginx_waits_longer_than_a_worker_may_take():
    worker_timeout = int(_compose_setting("POCHTA_WORKER_TIMEOUT"))
    assert worker_timeout == GUNICORN_DEFAULTS["POCHTA_WORKER_TIMEOUT"]
    for directive in ("proxy_read_timeout", "proxy_send_timeout"):
        assert _seconds(_nginx(directive)) > worker_timeout, directive


def test_nginx_sends_the_forwarded_headers_the_app_reads():
    for header in ("X-Forwarded-For", "X-Forwarded-Proto", "X-Forwarded-Host"):
        assert re.search(rf"proxy_set_header {header} \$\w+;", NGINX), header
    assert "listen 443 ssl" in NGINX
    assert _nginx("server") == "127.0.0.1:8000", "the upstream is Pochta on loopback"


def test_compose_trusts_one_proxy_and_publishes_on_loopback_only():
    assert _compose_setting("POCHTA_TRUST_PROXY") == "1"
    ports = re.findall(r"^\s+- \"([\d.:]+)\"$", COMPOSE, re.MULTILINE)
    assert ports == ["127.0.0.1:8000:8000"]


def test_compose_gives_requests_in_flight_time_to_finish_on_stop():
    grace = int(_compose_setting("POCHTA_GRACEFUL_TIMEOUT"))
    stop = re.search(r"stop_grace_period: (\d+s)", COMPOSE)
    assert stop and _seconds(stop.group(1)) > grace


def test_compose_reads_the_secret_from_pochta_env_and_the_example_holds_none():
    assert re.search(r"^\s+env_file: pochta\.env$", COMPOSE, re.MULTILINE)
    assert "POCHTA_SECRET_KEY" not in COMPOSE
    example = (REPO / "pochta.env.example").read_text(encoding="utf-8")
    assert re.findall(r"^POCHTA_SECRET_KEY=(.*)$", example, re.MULTILINE) == [""]
    assert "secrets.token_urlsafe(48)" in example


def test_dockerignore_keeps_secrets_and_local_state_out_but_the_sources_in():
    lines = (REPO / ".dockerignore").read_text(encoding="utf-8").splitlines()
    patterns = [line.strip() for line in lines if line.strip() and not line.startswith("#")]
    for unwanted in (".git", ".venv", "pochta.env", "instance", "pochta-demo", "build"):
        assert unwanted in patterns, unwanted
    assert "**/__pycache__" in patterns
    for needed in ("app", "templates", "static", "pyproject.toml", "README.md", "setup.py"):
        assert not any(p.strip("/") == needed or p.startswith(f"{needed}/") for p in patterns)


def test_readme_documents_every_pochta_setting():
    readme = (REPO / "README.md").read_text(encoding="utf-8")
    section = readme.partition("## Deploy for your lab")[2]
    assert section, "README.md has no 'Deploy for your lab' section"
    read = set()
    for source in ("app/config.py", "app/gunicorn_conf.py"):
        read |= set(re.findall(r"\"(POCHTA_[A-Z0-9_]+)\"", (REPO / source).read_text()))
    missing = sorted(name for name in read if f"`{name}`" not in section)
    assert not missing, missing
