"""English sentences written by the pure packages, kept translatable without knowing Flask.

`app.messages` and `app.fetch` write their sentences for the reader in English. `N_` marks
each template for the translation catalogue (pybabel extracts `N_("...")` calls); a
`Sentence` is the English text that also remembers its template and parameters, so the web
layer (`app.web.texts.say`) can say it again in the user's language, dates included.
"""

from __future__ import annotations

from datetime import datetime

ENGLISH_DATE = "%a, %d %b %Y at %H:%M"  # a date among the parameters, in the English text


def N_(template: str) -> str:  # noqa: N802 - the name gettext tools look for
    """Mark `template` for extraction into the catalogue; it is returned unchanged."""
    return template


class Sentence(str):
    """An English sentence that remembers its template and parameters.

    To everything that only reads it (the CLI, logs, tests) it is a plain `str`.
    """

    template: str
    params: dict[str, object]

    def __new__(cls, template: str, **params: object) -> Sentence:
        shown = {k: v.strftime(ENGLISH_DATE) if isinstance(v, datetime) else v
                 for k, v in params.items()}
        sentence = super().__new__(cls, template % shown if params else template)
        sentence.template = template
        sentence.params = params
        return sentence
