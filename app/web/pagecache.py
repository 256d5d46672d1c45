"""Rendered pages kept until what they show changes.

An inbox page is the same HTML as long as the mailbox has not changed (its version), the
request asks for the same page and search, and the session and language are the same (the
page carries the session's CSRF token and the account's address). Rendering fifty rows costs
several milliseconds; looking the page up costs one small database read. Pages that show
something transient (a running fetch, a flashed message) are never kept.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Hashable

from flask import current_app

MAX_PAGES = 256  # per worker process: a few MB of HTML


class PageCache:
    """A small thread-safe LRU map from a key that names everything a page depends on to
    its HTML."""

    def __init__(self, size: int = MAX_PAGES):
        self.size = size
        self._pages: OrderedDict[Hashable, str] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, key: Hashable) -> str | None:
        with self._lock:
            page = self._pages.get(key)
            if page is not None:
                self._pages.move_to_end(key)
            return page

    def put(self, key: Hashable, page: str) -> None:
        with self._lock:
            self._pages[key] = page
            self._pages.move_to_end(key)
            while len(self._pages) > self.size:
                self._pages.popitem(last=False)


def page_cache() -> PageCache:
    return current_app.extensions.setdefault("pochta.pages", PageCache())
