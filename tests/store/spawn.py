"""Starting `tests.store.children` commands as real processes."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def start(*args: object) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "tests.store.children", *map(str, args)],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def finish(process: subprocess.Popen[str], timeout: float = 120) -> tuple[int, list[object]]:
    """Wait for the child; its exit code and the JSON values it printed."""
    out, err = process.communicate(timeout=timeout)
    values = [json.loads(line) for line in out.splitlines() if line.strip()]
    if process.returncode not in (0, -9):
        raise AssertionError(f"child failed ({process.returncode}):\n{err}")
    return process.returncode, values
