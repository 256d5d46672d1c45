"""Sentences from the pure packages, said in the user's language.

`app.messages` and `app.fetch` write English `Sentence`s that remember their template and
parameters (see `app.sentences`). The catalogue holds every template (pybabel extracts the
`N_("...")` marks), so here the template is looked up and filled in again, with any date
among the parameters written the way the user's language writes it. Anything else (the
server's own words, data) passes through unchanged.
"""

from __future__ import annotations

from datetime import datetime

from babel.dates import format_skeleton, get_datetime_format
from flask_babel import get_locale
from flask_babel import gettext as _


def say(text: str) -> str:
    """`text` in the user's language when it is a `Sentence`, else `text` itself."""
    template = getattr(text, "template", None)
    if template is None:
        return text
    params = {name: _shown(value) for name, value in getattr(text, "params", {}).items()}
    return _(template, **params)


def _shown(value: object) -> object:
    if isinstance(value, datetime):
        return written_date(value)
    return value


def written_date(moment: datetime) -> str:
    """A date and time as written in a letter ("Tue, Mar 12, 2024, 10:15"; "вт, 12 мар.
    2024 г., 10:15"), in the time zone it carries."""
    locale = get_locale() or "en"
    pattern = get_datetime_format("medium", locale=locale)
    return (pattern.replace("{1}", format_skeleton("yMMMEd", moment, locale=locale))
            .replace("{0}", format_skeleton("Hm", moment, locale=locale)))
