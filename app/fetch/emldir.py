"""A directory of raw .eml files as a fetch destination: the lab's console POP3 client.

Each message is written to a temporary file, fsynced and renamed into place, and only then
is its UID added to the directory's UID list (itself replaced atomically). A crash between
the two re-downloads the message next time into the same file name: never a duplicate.
"""

from __future__ import annotations

import hashlib
import os
import re
from collections.abc import Sequence
from pathlib import Path

from app.fetch.policy import Downloaded

UID_LIST = ".pochta-uids"
_UNSAFE = re.compile(r"[^A-Za-z0-9._-]")


def file_name(uid: str) -> str:
    """A file name that is the same for the same UID, whatever characters the server used."""
    readable = _UNSAFE.sub("_", uid)[:60].lstrip(".") or "message"
    digest = hashlib.sha256(uid.encode()).hexdigest()[:12]
    return f"{readable}-{digest}.eml"


def _fsync_directory(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _write_durably(path: Path, chunks: Sequence[bytes] | Downloaded) -> None:
    temporary = path.with_name(f".{path.name}.part")
    with temporary.open("wb") as handle:
        if isinstance(chunks, Downloaded):
            chunks.spool.seek(0)
            while block := chunks.spool.read(1024 * 1024):
                handle.write(block)
        else:
            for chunk in chunks:
                handle.write(chunk)
        handle.flush()
        os.fsync(handle.fileno())
    temporary.replace(path)


class EmlDirectory:
    """Saves each new message as DIR/<uid>-<hash>.eml."""

    def __init__(self, directory: Path):
        self.directory = directory
        directory.mkdir(parents=True, exist_ok=True)
        self.saved: list[Path] = []

    def known_uids(self) -> set[str]:
        uid_list = self.directory / UID_LIST
        if not uid_list.exists():
            return set()
        return {line for line in uid_list.read_text("utf-8").splitlines() if line}

    def prepare(self, batch: Sequence[Downloaded]) -> Sequence[Downloaded]:
        return batch

    def deliver(self, prepared: Sequence[Downloaded]) -> int:
        known = self.known_uids()
        fresh = [item for item in prepared if item.uid not in known]
        for item in fresh:
            path = self.directory / file_name(item.uid)
            _write_durably(path, item)
            self.saved.append(path)
        if fresh:
            lines = sorted(known | {item.uid for item in fresh})
            _write_durably(self.directory / UID_LIST, [f"{uid}\n".encode() for uid in lines])
            _fsync_directory(self.directory)
        return len(fresh)

    def spool_dir(self) -> Path | None:
        return self.directory
