"""What templates can use beyond Jinja's own: the signed-in account, sizes, dates."""

from __future__ import annotations

import functools
from datetime import datetime

from flask import Flask
from flask_babel import format_datetime, format_decimal, get_locale, get_timezone
from flask_babel import gettext as _

from app.web.accounts import current_account
from app.web.extensions import LANGUAGES
from app.web.texts import say


def _number(value: float) -> str:
    return format_decimal(value, format="#,##0.#" if value < 10 else "#,##0")


# An inbox page formats fifty dates and sizes, again on every view; Babel takes tens of
# microseconds for each. The same value in the same language (and time zone) always reads
# the same, so the results are kept (the key carries everything the text depends on).
FORMAT_CACHE_SIZE = 8192


def filesize(size: int | None) -> str:
    """Bytes as people read them, in their language: 812 B, 4.1 KB, 12 MB."""
    if size is None:
        return ""
    return _filesize(size, str(get_locale()))


@functools.lru_cache(maxsize=FORMAT_CACHE_SIZE)
def _filesize(size: int, _locale: str) -> str:
    if size < 1024:
        return _("%(size)s B", size=size)
    if size < 1024 * 1024:
        return _("%(size)s KB", size=_number(size / 1024))
    return _("%(size)s MB", size=_number(size / (1024 * 1024)))


def when(moment: datetime | None, style: str = "short") -> str:
    """A message date in the user's language and the server's time zone."""
    if moment is None:
        return ""
    return _when(moment, style, str(get_locale()), str(get_timezone()))


@functools.lru_cache(maxsize=FORMAT_CACHE_SIZE)
def _when(moment: datetime, style: str, _locale: str, _timezone: str) -> str:
    return format_datetime(moment, style)


def init_templating(app: Flask) -> None:
    app.jinja_env.filters["filesize"] = filesize
    app.jinja_env.filters["when"] = when
    app.jinja_env.filters["say"] = say
    app.jinja_env.trim_blocks = True
    app.jinja_env.lstrip_blocks = True

    @app.context_processor
    def _globals() -> dict[str, object]:
        return {
            "current_account": current_account(),
            "languages": LANGUAGES,
            "current_language": str(get_locale() or "en"),
        }
