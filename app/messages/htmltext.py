"""HTML mail as plain text: for search, for snippets, and for quoting in a reply.

nh3 (html5ever underneath) parses the HTML as a browser would, drops script, style and
comments, and strips every tag except a few block-level ones, without attributes. Its output
is canonical, so those few tags appear in exactly one spelling (`<p>`, `</p>`, `<br>`), which
are then turned into line breaks before the entities are decoded. This is several times faster
than `html.parser`, and `index_fields` runs it on every fetched HTML message.
"""

from __future__ import annotations

import html as html_lib
import re

import nh3

_LINE_TAGS = ("p", "div", "br", "li", "tr", "h1", "h2", "h3", "h4", "h5", "h6", "blockquote",
              "pre", "table", "ul", "ol", "dl", "dt", "dd", "hr", "section", "article",
              "header", "footer", "address", "center", "figure", "figcaption", "details",
              "summary", "caption")
_CELL_TAGS = ("td", "th")

_CLEANER = nh3.Cleaner(
    tags=set(_LINE_TAGS + _CELL_TAGS),
    clean_content_tags={"script", "style", "title", "textarea", "select"},
    attributes={},
    url_schemes=set(),
    link_rel=None,
    strip_comments=True,
)
# What each tag the cleaner lets through becomes, spelled exactly as nh3 writes it.
_REPLACEMENTS = {f"<{tag}>": "\n" for tag in _LINE_TAGS} | {f"</{tag}>": "\n" for tag in _LINE_TAGS}
_REPLACEMENTS |= {"<li>": "\n- ", "</li>": "", "<td>": " ", "</td>": "", "<th>": " ", "</th>": ""}
_KEPT_TAG = re.compile("|".join(re.escape(tag) for tag in _REPLACEMENTS))
_BLANK_LINES = re.compile(r"\n{3,}")


def html_to_text(html: str, *, limit: int = 1_000_000) -> str:
    """The readable text of an HTML document or fragment, at most `limit` characters."""
    cleaned = _CLEANER.clean(html[: limit * 8])
    flowed = _KEPT_TAG.sub(_replacement, " ".join(cleaned.split()))
    text = html_lib.unescape(flowed).replace("\u00a0", " ")
    text = "\n".join(line.strip(" ") for line in text.split("\n"))
    return _BLANK_LINES.sub("\n\n", text).strip()[:limit]


def _replacement(match: re.Match[str]) -> str:
    return _REPLACEMENTS[match.group(0)]
