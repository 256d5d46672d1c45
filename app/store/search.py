"""Turning what a user types into an FTS5 query that can never be a syntax error.

The query is cut into words the way the index tokenizer cuts text (runs of letters and
digits), and each word becomes a quoted FTS5 string, so `AND`, `NEAR(`, `*`, `-`, `:` and
stray quotes are searched as text, never obeyed as operators. The words are ANDed, one by
one: the index keeps which column a word is in but not where (`detail=column`, cheaper to
build for every fetched message), so `alice@example.org` finds mail with `alice`,
`example` and `org` in it rather than that exact spelling. The last word also matches
as a prefix when it ends in at least `MIN_PREFIX` letters: results follow the user's
typing and Russian inflections (`отчёт` finds `отчёта`), while one- and two-letter
prefixes, which would expand to thousands of terms, match whole words only. (A broad
3-letter prefix costs a few hundred milliseconds at 100,000 messages.)

The same folding is applied to indexed text and to queries: Cyrillic yo reads as ie
(U+0451 as U+0435), since Russian writers use them interchangeably.
"""

from __future__ import annotations

import re

MAX_TERMS = 16
MAX_TERM_LENGTH = 100
MIN_PREFIX = 3

# Cyrillic yo -> ie, small and capital (written as escapes: the letters look alike).
_FOLDS = (("\u0451", "\u0435"), ("\u0401", "\u0415"))
_WORD = re.compile(r"[^\W_]+")  # a run of letters and digits: what the tokenizer keeps


def fold(text: str) -> str:
    """Normalise text the same way for indexing and for searching."""
    for letter, replacement in _FOLDS:  # str.replace: ten times faster than translate
        text = text.replace(letter, replacement)
    return text


def match_expression(query: str) -> str | None:
    """The FTS5 MATCH expression for a user's search text, or None if it has no words."""
    # No lone surrogates (SQLite wants UTF-8) and no NUL (FTS5 parses C strings).
    text = fold(query.encode("utf-8", "replace").decode("utf-8").replace("\x00", " "))
    words = [word[:MAX_TERM_LENGTH] for word in _WORD.findall(text)][:MAX_TERMS]
    if not words:
        return None
    phrases = [_quote(word) for word in words]
    if len(words[-1]) >= MIN_PREFIX:
        phrases[-1] += "*"
    return " ".join(phrases)


def _quote(term: str) -> str:
    return '"' + term.replace('"', '""') + '"'
