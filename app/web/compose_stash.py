"""Uploaded attachments kept on the server between tries, so a failed send loses no file.

A browser cannot refill a file input, so every file a compose form uploads is written here
first; the form then lists it as a "kept attachment" (a checkbox carrying its token) until
the message is sent, the user drops it, or it expires. Layout, all owner-only (0700/0600):

    <root>/<account hex>/<token>/data            the bytes, exactly as uploaded
    <root>/<account hex>/<token>/manifest.json   {"filename", "content_type", "size", "created"}

Tokens are random (`secrets`), checked against a strict pattern before they touch a path,
and looked up only under the signed-in account's directory: another account's token is
simply not found. An entry appears atomically (written under a temporary name, then
renamed), so a half-written upload is never offered. Knows files, not Flask.
"""

from __future__ import annotations

import json
import os
import re
import secrets
import shutil
import time
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from app.messages.addresses import FORBIDDEN_IN_HEADERS

MAX_AGE_SECONDS = 24 * 3600
MAX_FILENAME_CHARS = 200
COPY_CHUNK = 1024 * 1024

_TOKEN = re.compile(r"[A-Za-z0-9_-]{24}")
_ACCOUNT = re.compile(r"[0-9a-f]{64}")
_MIME_TOKEN = re.compile(r"[!#$%&'*+.^_`|~0-9A-Za-z-]+")
_INCOMING = ".incoming-"
_DATA = "data"
_MANIFEST = "manifest.json"


@dataclass(frozen=True)
class KeptFile:
    """One kept upload, as the form lists it."""

    token: str
    filename: str
    content_type: str | None
    size: int
    created: float


def safe_filename(name: str) -> str:
    """The name a file is sent under: no path, no control characters, not too long."""
    name = "".join(" " if c in FORBIDDEN_IN_HEADERS else c for c in name)
    name = name.replace("\\", "/").rsplit("/", 1)[-1].strip()
    if len(name) > MAX_FILENAME_CHARS:
        stem, dot, suffix = name.rpartition(".")
        if dot and 0 < len(suffix) <= 16:
            name = stem[: MAX_FILENAME_CHARS - len(suffix) - 1] + "." + suffix
        else:
            name = name[:MAX_FILENAME_CHARS]
    return name or "attachment"


def safe_content_type(declared: str | None) -> str | None:
    """`type/subtype` when the browser's claim is well-formed, else None (guess from the name)."""
    if not declared:
        return None
    maintype, slash, subtype = declared.split(";", 1)[0].strip().lower().partition("/")
    if slash and _MIME_TOKEN.fullmatch(maintype) and _MIME_TOKEN.fullmatch(subtype):
        return f"{maintype}/{subtype}"
    return None


class AttachmentStash:
    """One account's kept uploads under `<root>/<account hex>/`."""

    def __init__(self, root: Path, account_hex: str) -> None:
        if not _ACCOUNT.fullmatch(account_hex):
            raise ValueError("not an account key")
        self.root = Path(root)
        self.directory = self.root / account_hex

    def keep(self, stream: BinaryIO, filename: str, content_type: str | None) -> KeptFile:
        """Copy an upload into the stash (in chunks, never whole in memory)."""
        _private_dir(self.root)
        _private_dir(self.directory)
        token = secrets.token_urlsafe(18)
        incoming = self.directory / f"{_INCOMING}{token}"
        incoming.mkdir(mode=0o700)
        try:
            size = _write_stream(incoming / _DATA, stream)
            kept = KeptFile(
                token=token,
                filename=safe_filename(filename),
                content_type=safe_content_type(content_type),
                size=size,
                created=time.time(),
            )
            manifest = {
                "filename": kept.filename,
                "content_type": kept.content_type,
                "size": kept.size,
                "created": kept.created,
            }
            _write_bytes(incoming / _MANIFEST, json.dumps(manifest).encode("utf-8"))
            incoming.rename(self.directory / token)
        except BaseException:
            shutil.rmtree(incoming, ignore_errors=True)
            raise
        return kept

    def get(self, token: str) -> KeptFile | None:
        """The kept file with this token, or None (unknown, expired, malformed, not ours)."""
        path = self._entry(token)
        if path is None:
            return None
        try:
            manifest = json.loads((path / _MANIFEST).read_bytes())
            return KeptFile(
                token=token,
                filename=str(manifest["filename"]),
                content_type=manifest.get("content_type"),
                size=int(manifest["size"]),
                created=float(manifest["created"]),
            )
        except (OSError, ValueError, KeyError, TypeError):
            return None

    def find(self, tokens: Iterable[str]) -> list[KeptFile]:
        """The kept files among `tokens`, in order, each once; unknown tokens are skipped."""
        found = []
        for token in dict.fromkeys(tokens):
            kept = self.get(token)
            if kept is not None:
                found.append(kept)
        return found

    def path(self, kept: KeptFile) -> Path:
        """Where the file's bytes are, for reading them while the message is written out
        (FileNotFoundError if it was discarded meanwhile)."""
        path = self._entry(kept.token)
        if path is None or not (path / _DATA).is_file():
            raise FileNotFoundError(kept.token)
        return path / _DATA

    def discard(self, tokens: Iterable[str]) -> None:
        for token in tokens:
            path = self._entry(token)
            if path is not None:
                shutil.rmtree(path, ignore_errors=True)

    def entries(self) -> list[KeptFile]:
        """Every kept file of the account, oldest first."""
        try:
            names = [p.name for p in self.directory.iterdir()]
        except FileNotFoundError:
            return []
        kept = self.find(n for n in names if _TOKEN.fullmatch(n))
        return sorted(kept, key=lambda k: k.created)

    def limit(self, max_bytes: int, *, spare: Iterable[str] = ()) -> list[str]:
        """Drop the oldest kept files (except `spare`) until the account's total fits."""
        spared = set(spare)
        everything = self.entries()
        total = sum(k.size for k in everything)
        dropped = []
        for kept in everything:
            if total <= max_bytes:
                break
            if kept.token in spared:
                continue
            self.discard([kept.token])
            total -= kept.size
            dropped.append(kept.token)
        return dropped

    def _entry(self, token: str) -> Path | None:
        if not isinstance(token, str) or not _TOKEN.fullmatch(token):
            return None
        path = self.directory / token
        return path if path.is_dir() else None


def purge_expired(root: Path, max_age: float = MAX_AGE_SECONDS, now: float | None = None) -> int:
    """Remove every account's kept files (and abandoned partial uploads) older than `max_age`."""
    now = time.time() if now is None else now
    removed = 0
    try:
        accounts = [p for p in Path(root).iterdir() if _ACCOUNT.fullmatch(p.name)]
    except FileNotFoundError:
        return 0
    for account in accounts:
        try:
            entries = list(account.iterdir())
        except FileNotFoundError:
            continue
        for entry in entries:
            try:
                age = now - entry.stat().st_mtime
            except FileNotFoundError:
                continue
            if age > max_age:
                shutil.rmtree(entry, ignore_errors=True)
                removed += 1
    return removed


def _private_dir(path: Path) -> None:
    path.mkdir(mode=0o700, parents=True, exist_ok=True)


def _open_private(path: Path) -> int:
    return os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0), 0o600)


def _write_stream(path: Path, stream: BinaryIO) -> int:
    size = 0
    with os.fdopen(_open_private(path), "wb") as out:
        while chunk := stream.read(COPY_CHUNK):
            out.write(chunk)
            size += len(chunk)
    return size


def _write_bytes(path: Path, data: bytes) -> None:
    with os.fdopen(_open_private(path), "wb") as out:
        out.write(data)
