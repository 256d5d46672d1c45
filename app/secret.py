"""The instance's secret key, generated once into the data dir and shared by all workers.

Every gunicorn worker must sign and encrypt sessions with the same key, and a restart must
not log everyone out, so the key lives in a file. It is written to a temporary file first and
then hard-linked into place: the link either wins (this process made the key) or fails
because another worker got there first, and nobody ever reads a half-written key.
"""

from __future__ import annotations

import contextlib
import os
import secrets
from pathlib import Path

KEY_FILE = "secret_key"


def load_or_create_secret_key(data_dir: Path) -> str:
    data_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
    path = data_dir / KEY_FILE
    if not path.exists():
        _create(path)
    key = path.read_text("ascii").strip()
    if len(key) < 32:
        raise RuntimeError(f"{path} holds no usable secret key; delete it to make a new one")
    return key


def _create(path: Path) -> None:
    temporary = path.with_name(f".{KEY_FILE}.{os.getpid()}.{secrets.token_hex(4)}")
    fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(fd, "w", encoding="ascii") as handle:
            handle.write(secrets.token_urlsafe(48) + "\n")
            handle.flush()
            os.fsync(handle.fileno())
        with contextlib.suppress(FileExistsError):
            os.link(temporary, path)
    finally:
        temporary.unlink(missing_ok=True)
