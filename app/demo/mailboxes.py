"""The demo server's local mailboxes: one Maildir-like directory per user, shared by SMTP
delivery (aiosmtpd's asyncio thread) and POP3 sessions (one thread each).

Every message is one file whose name is its unique, stable id (used as the POP3 UIDL) and
whose size is its POP3 size: messages are stored with CRLF line endings, exactly as they go on
the wire before dot-stuffing. Delivery writes into `tmp/` and renames into `cur/`, so a reader
never sees half a message; the POP3 "maildrop lock" is an in-process lock per user.
"""

from __future__ import annotations

import hmac
import os
import re
import secrets
import threading
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

_BARE_LF = re.compile(rb"(?<!\r)\n")
_USER_NAME = re.compile(r"[^\s/\\+@\x00]+")


class MailboxError(Exception):
    """A mailbox operation was asked for something that does not exist."""


@dataclass(frozen=True)
class StoredMessage:
    """One message in a maildrop: `uid` is its file name, `size` its length in octets."""

    uid: str
    size: int
    path: Path


def normalize_line_endings(data: bytes) -> bytes:
    """Bare LFs become CRLF and the message ends with CRLF, as POP3 sends it."""
    data = _BARE_LF.sub(b"\r\n", data)
    if data and not data.endswith(b"\r\n"):
        data += b"\r\n"
    return data


def _new_uid() -> str:
    """Sortable by delivery time, unique across threads and restarts, UIDL-safe ASCII."""
    return f"{time.time_ns():020d}.{secrets.token_hex(6)}"


class Mailboxes:
    """Users, their passwords and their maildrops under `directory`.

    `users` maps user name to password. Addresses at `domain` map to the user of the same
    name, case-blind, with an optional `+detail` (`alice+lists@domain` → alice).
    """

    def __init__(
        self,
        directory: Path,
        users: Mapping[str, str],
        *,
        domain: str = "demo.pochta.test",
        recipient_delimiter: str = "+",
    ) -> None:
        for name in users:
            _check_user_name(name, recipient_delimiter)
        self.directory = Path(directory)
        self.domain = domain.lower().rstrip(".")
        self.recipient_delimiter = recipient_delimiter
        self._passwords = dict(users)
        self._by_folded = {name.casefold(): name for name in users}
        self._lock = threading.Lock()
        self._locked_users: set[str] = set()
        for name in users:
            for sub in ("tmp", "cur"):
                (self._user_dir(name) / sub).mkdir(parents=True, exist_ok=True)

    # -- users and addresses -------------------------------------------------------------

    @property
    def users(self) -> tuple[str, ...]:
        return tuple(self._passwords)

    def address_of(self, user: str) -> str:
        return f"{user}@{self.domain}"

    def is_local_domain(self, address: str) -> bool:
        _, at, domain = address.rpartition("@")
        return bool(at) and domain.lower().rstrip(".") == self.domain

    def user_for_address(self, address: str) -> str | None:
        """The local user an address delivers to, or None (another domain, no such user)."""
        local, at, _ = address.rpartition("@")
        if not at or not self.is_local_domain(address):
            return None
        if self.recipient_delimiter:
            local = local.split(self.recipient_delimiter, 1)[0]
        return self._by_folded.get(local.casefold())

    def user_for_login(self, login: str) -> str | None:
        """A login is either a user name or that user's address."""
        if login in self._passwords:
            return login
        return self.user_for_address(login) if "@" in login else None

    def authenticate(self, login: str, password: str) -> str | None:
        """The user name when the password is right, else None (constant-time compare)."""
        user = self.user_for_login(login)
        expected = self._passwords.get(user, "") if user else ""
        matches = hmac.compare_digest(expected.encode(), password.encode())
        return user if user is not None and matches else None

    def password_of(self, user: str) -> str:
        """For APOP, which needs the shared secret itself."""
        return self._passwords[user]

    # -- the maildrop lock -----------------------------------------------------------------

    def try_lock(self, user: str) -> bool:
        """Take the user's maildrop lock; False when another session holds it."""
        with self._lock:
            if user in self._locked_users:
                return False
            self._locked_users.add(user)
            return True

    def unlock(self, user: str) -> None:
        with self._lock:
            self._locked_users.discard(user)

    # -- messages --------------------------------------------------------------------------

    def deliver(self, user: str, data: bytes) -> str:
        """Store one message atomically (tmp + rename); returns its uid."""
        self._require(user)
        data = normalize_line_endings(data)
        uid = _new_uid()
        box = self._user_dir(user)
        tmp = box / "tmp" / uid
        with tmp.open("xb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        tmp.replace(box / "cur" / uid)
        return uid

    def list(self, user: str) -> list[StoredMessage]:
        """The user's messages in delivery order."""
        self._require(user)
        found = []
        with os.scandir(self._user_dir(user) / "cur") as entries:
            for entry in entries:
                if entry.name.startswith("."):
                    continue
                try:
                    size = entry.stat().st_size
                except FileNotFoundError:  # removed by a POP3 QUIT meanwhile
                    continue
                found.append(StoredMessage(entry.name, size, Path(entry.path)))
        return sorted(found, key=lambda message: message.uid)

    def count(self, user: str) -> int:
        return len(self.list(user))

    def read(self, user: str, uid: str) -> bytes:
        return self._path(user, uid).read_bytes()

    def delete(self, user: str, uids: Iterable[str]) -> list[str]:
        """Remove these messages; returns the uids that could not be removed."""
        failed = []
        for uid in uids:
            try:
                self._path(user, uid).unlink()
            except (OSError, MailboxError):
                failed.append(uid)
        return failed

    # -- one-time markers (idempotent seeding) ----------------------------------------------

    def has_marker(self, user: str, name: str) -> bool:
        self._require(user)
        return (self._user_dir(user) / f".{name}").exists()

    def set_marker(self, user: str, name: str) -> None:
        self._require(user)
        (self._user_dir(user) / f".{name}").touch()

    # -- helpers ---------------------------------------------------------------------------

    def _user_dir(self, user: str) -> Path:
        return self.directory / user

    def _require(self, user: str) -> None:
        if user not in self._passwords:
            raise MailboxError(f"no such user: {user!r}")

    def _path(self, user: str, uid: str) -> Path:
        self._require(user)
        if "/" in uid or uid.startswith("."):
            raise MailboxError(f"not a message id: {uid!r}")
        return self._user_dir(user) / "cur" / uid


def _check_user_name(name: str, delimiter: str) -> None:
    if not _USER_NAME.fullmatch(name) or name in {".", ".."} or (delimiter and delimiter in name):
        raise ValueError(f"unusable demo user name: {name!r}")
