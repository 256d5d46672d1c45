"""Pochta's server-side store behind one narrow API: accounts, mail, search, jobs, logs.

Pure storage on `sqlite3` and the file system; it knows nothing of Flask, sockets or MIME
(the fetcher hands over fields already decoded). Everything lives under the data dir:

    pochta.sqlite3              accounts, fetch jobs, protocol logs, sessions, login failures
    accounts/<sha256>.sqlite3   one account's mail: index, raw bytes, full-text search

Typical use::

    store = Store(settings.data_dir)
    inbox = store.mailbox(AccountKey("pop.example.org", 995, "ivan"))
    inbox.add_messages([NewMessage(uid=..., raw=..., size=..., subject=..., ...)])
    page = inbox.page(1, query="отчёт")
"""

from __future__ import annotations

from app.store.database import SchemaError
from app.store.mailbox import MAX_PER_PAGE, Mailbox
from app.store.models import (
    AccountKey,
    Job,
    LogRecord,
    MessageSummary,
    NewMessage,
    Page,
    PreparedBatch,
)
from app.store.store import Store

__all__ = [
    "MAX_PER_PAGE",
    "AccountKey",
    "Job",
    "LogRecord",
    "Mailbox",
    "MessageSummary",
    "NewMessage",
    "Page",
    "PreparedBatch",
    "SchemaError",
    "Store",
]
