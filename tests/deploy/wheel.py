"""Building the wheel that `pip install .` and the Docker build make, from a copy of this
checkout (so no build/ or egg-info lands in the shared tree, and nothing generated comes
along: compiled catalogues must come from the build itself)."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

from tests.deploy.dockerfile import REPO

# What the build does not need but a checkout piles up (cf. .dockerignore).
LEFT_OUT = shutil.ignore_patterns(
    ".git", ".venv", "venv", "build", "dist", "*.egg-info", "__pycache__", "*.py[cod]", "*.mo",
    ".pytest_cache", ".ruff_cache", ".hypothesis", ".test-servers", "instance", "pochta-demo",
    "tests", "bench", "deploy", "node_modules",
)


def build_wheel(work: Path) -> Path:
    """Copy the checkout into `work`/source, build the wheel into `work`/dist, return it."""
    source = work / "source"
    shutil.copytree(REPO, source, ignore=LEFT_OUT, symlinks=True)
    assert not list(source.rglob("*.mo")), "compiled catalogues must come from the build"
    result = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps",
         "--disable-pip-version-check", "--wheel-dir", str(work / "dist"), str(source)],
        capture_output=True, text=True, check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    [built] = (work / "dist").glob("pochta-*.whl")
    return built
