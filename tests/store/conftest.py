"""Fixtures for the store tests: a Store on a temp data dir (closed after), accounts, mail."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from app.store import AccountKey, Mailbox, NewMessage, Store

ALICE = AccountKey("pop.example.org", 995, "alice")
BOB = AccountKey("pop.example.org", 995, "bob")


def message(uid: str, **fields: object) -> NewMessage:
    """A NewMessage with plausible defaults; raw is derived from the uid unless given."""
    raw = fields.pop("raw", f"Subject: {uid}\r\n\r\nbody of {uid}\r\n".encode())
    values: dict[str, object] = {
        "uid": uid,
        "raw": raw,
        "size": len(raw) if isinstance(raw, bytes | bytearray | memoryview) else fields.pop("size"),
        "subject": f"subject {uid}",
        "from_name": "Sender",
        "from_addr": "sender@example.org",
        "to": "alice@example.org",
        "cc": "",
        "date": datetime(2024, 1, 1, tzinfo=UTC),
        "message_id": f"<{uid}@example.org>",
        "has_attachments": False,
        "body_text": f"body of {uid}",
        "snippet": f"body of {uid}",
    }
    values.update(fields)
    return NewMessage(**values)  # type: ignore[arg-type]


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    return tmp_path / "data"


@pytest.fixture
def store(data_dir: Path) -> Iterator[Store]:
    with Store(data_dir) as opened:
        yield opened


@pytest.fixture
def mailbox(store: Store) -> Mailbox:
    return store.mailbox(ALICE)
