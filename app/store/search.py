"""Turning what a user types into an FTS5 query that can never be a syntax error.

Every whitespace-separated word becomes a quoted FTS5 phrase (inside quotes only `"` is
special, and it is doubled), so `AND`, `NEAR(`, `*`, `-`, `:` and stray quotes are searched
as text, never obeyed as operators. Words with no letter or digit are dropped (the
tokenizer would find nothing in them), the words are ANDed, and the last one matches as a
prefix, so results follow the user's typing. The same folding is applied to indexed text
and to queries: Cyrillic yo reads as ie (U+0451 as U+0435), as Russian writers use them
interchangeably.
"""

from __future__ import annotations

MAX_TERMS = 16
MAX_TERM_LENGTH = 100

# Cyrillic yo -> ie, small and capital (written as escapes: the letters look alike).
_FOLD = str.maketrans({"\u0451": "\u0435", "\u0401": "\u0415"})


def fold(text: str) -> str:
    """Normalise text the same way for indexing and for searching."""
    return text.translate(_FOLD)


def match_expression(query: str) -> str | None:
    """The FTS5 MATCH expression for a user's search text, or None if it has no words."""
    terms = [t[:MAX_TERM_LENGTH] for t in fold(query).split() if _searchable(t)]
    if not terms:
        return None
    phrases = [_quote(term) for term in terms[:MAX_TERMS]]
    phrases[-1] += "*"
    return " ".join(phrases)


def _searchable(term: str) -> bool:
    return any(ch.isalnum() for ch in term)


def _quote(term: str) -> str:
    return '"' + term.replace('"', '""') + '"'
