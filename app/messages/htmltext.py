"""HTML mail as plain text: for search, for snippets, and for quoting in a reply.

nh3 (html5ever underneath) parses the HTML as a browser would, drops script, style and
comments, and strips every tag except a few block-level ones, without attributes. Its output
is canonical, so those few tags appear in exactly one spelling (`<p>`, `</p>`, `<br>`), which
are then turned into line breaks before the entities are decoded. White space is collapsed
as a browser does (pre-formatted text included). This is several times faster than
`html.parser`, and `index_fields` runs it on every fetched HTML message.
"""

from __future__ import annotations

import html as html_lib
import re

import nh3

# Block elements end a line; these also end a paragraph (a blank line follows).
_LINE_TAGS = ("div", "li", "tr", "dt", "dd", "section", "article", "header", "footer",
              "address", "center", "figure", "figcaption", "details", "summary", "caption")
_PARAGRAPH_TAGS = ("p", "h1", "h2", "h3", "h4", "h5", "h6", "blockquote", "pre", "table",
                   "ul", "ol", "dl", "hr")
_CELL_TAGS = ("td", "th")
_LINE, _PARAGRAPH, _BREAK = "\x01", "\x02", "\x03"  # markers; removed from the input first

_CLEANER = nh3.Cleaner(
    tags={*_LINE_TAGS, *_PARAGRAPH_TAGS, *_CELL_TAGS, "br"},
    clean_content_tags={"script", "style", "title", "textarea", "select"},
    attributes={},
    url_schemes=set(),
    link_rel=None,
    strip_comments=True,
)
# What each tag the cleaner lets through becomes, spelled exactly as nh3 writes it.
_REPLACEMENTS = {f"<{slash}{tag}>": _LINE for tag in _LINE_TAGS for slash in ("", "/")}
_REPLACEMENTS |= {f"<{slash}{tag}>": _PARAGRAPH for tag in _PARAGRAPH_TAGS for slash in ("", "/")}
_REPLACEMENTS |= {"<br>": _BREAK, "<li>": _LINE + "- ", "<td>": " ", "</td>": "", "<th>": " ",
                  "</th>": ""}
_KEPT_TAG = re.compile("|".join(re.escape(tag) for tag in _REPLACEMENTS))
_MARKERS = f"{_LINE}{_PARAGRAPH}{_BREAK}"
# A run of markers, possibly separated by the single spaces left between tags.
_BREAKS = re.compile(f"[{_MARKERS}](?: ?[{_MARKERS}])*")

# html5ever (inside nh3) takes time quadratic in the nesting depth of some block elements:
# 40,000 nested <div>s cost seconds. Real mail stays far below this many tags.
MAX_TAGS = 10_000


def cut_markup(html: str, max_tags: int = MAX_TAGS) -> tuple[str, bool]:
    """`html` up to its `max_tags`-th tag, and whether anything was cut."""
    position = -1
    for _ in range(max_tags):
        position = html.find("<", position + 1)
        if position < 0:
            return html, False
    return html[:position], True


def html_to_text(html: str, *, limit: int = 1_000_000) -> str:
    """The readable text of an HTML document or fragment, at most `limit` characters."""
    cleaned = _CLEANER.clean(cut_markup(html[: limit * 8])[0])
    for marker in _MARKERS:
        cleaned = cleaned.replace(marker, "")
    flowed = _KEPT_TAG.sub(_replacement, " ".join(cleaned.split()))
    text = html_lib.unescape(_BREAKS.sub(_breaks, flowed)).replace("\u00a0", " ")
    return "\n".join(line.strip(" ") for line in text.strip().split("\n"))[:limit]


def _replacement(match: re.Match[str]) -> str:
    return _REPLACEMENTS[match.group(0)]


def _breaks(match: re.Match[str]) -> str:
    """A run of block boundaries and <br>s: each <br> counts, boundaries collapse into one
    line break, or a blank line when a paragraph ends there."""
    run = match.group(0)
    return "\n" * max(run.count(_BREAK), 2 if _PARAGRAPH in run else 1)
