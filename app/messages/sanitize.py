"""Making received HTML inert before it is shown: an explicit allow-list, applied by nh3.

Only formatting survives: no script, no event handlers, no forms, frames, plugins, SVG or
MathML, no <style>, <meta>, <base> or <link>. Links may use http, https and mailto and open in
a new tab without a referrer. Images load only from `cid:` parts of the message itself
(rewritten to the app's own part URL by `cid_url`) or, when the user asked for it, from http(s);
otherwise each remote image is dropped and counted so the page can offer to show them. Inline
styles keep a fixed set of properties and lose any value that could fetch or run something.
"""

from __future__ import annotations

import urllib.parse
from collections.abc import Callable
from dataclasses import dataclass

import nh3

from app.messages.htmltext import cut_markup, html_to_text

__all__ = ["SanitizedHTML", "html_to_text", "sanitize_html"]

TAGS = frozenset({
    "a", "abbr", "acronym", "address", "article", "aside", "b", "bdi", "bdo", "big",
    "blockquote", "br", "caption", "center", "cite", "code", "col", "colgroup", "dd", "del",
    "details", "dfn", "div", "dl", "dt", "em", "figcaption", "figure", "font", "footer", "h1",
    "h2", "h3", "h4", "h5", "h6", "header", "hr", "i", "img", "ins", "kbd", "li", "mark", "nav",
    "ol", "p", "pre", "q", "rp", "rt", "ruby", "s", "samp", "section", "small", "span",
    "strike", "strong", "sub", "summary", "sup", "table", "tbody", "td", "tfoot", "th",
    "thead", "time", "tr", "tt", "u", "ul", "var", "wbr",
})

# Removed together with everything inside them (the rest of unknown tags keep their text).
DROPPED_WITH_CONTENT = frozenset({
    "script", "style", "title", "noscript", "template", "iframe", "frame", "frameset",
    "noframes", "object", "embed", "applet", "svg", "math", "textarea", "select", "xmp",
    "noembed", "head", "meta", "link", "base",
})

_CELL = {"align", "valign", "width", "height", "colspan", "rowspan", "bgcolor", "nowrap"}
ATTRIBUTES: dict[str, set[str]] = {
    "*": {"title", "lang", "dir", "style", "align"},
    "a": {"href"},
    "img": {"src", "alt", "width", "height", "border", "hspace", "vspace"},
    "font": {"color", "face", "size"},
    "table": {"width", "border", "cellpadding", "cellspacing", "bgcolor", "summary"},
    "td": _CELL,
    "th": _CELL,
    "tr": {"valign", "bgcolor"},
    "col": {"span", "width"},
    "colgroup": {"span", "width"},
    "ol": {"start", "type"},
    "ul": {"type"},
    "li": {"value"},
    "hr": {"width", "size", "noshade"},
}

URL_SCHEMES = frozenset({"http", "https", "mailto", "cid"})

STYLE_PROPERTIES = frozenset({
    "color", "background-color", "font", "font-family", "font-size", "font-style",
    "font-weight", "font-variant", "text-align", "text-decoration", "text-indent",
    "text-transform", "line-height", "letter-spacing", "word-spacing", "white-space",
    "vertical-align", "direction", "width", "height", "max-width", "min-width", "max-height",
    "min-height", "margin", "margin-top", "margin-right", "margin-bottom", "margin-left",
    "padding", "padding-top", "padding-right", "padding-bottom", "padding-left", "border",
    "border-top", "border-right", "border-bottom", "border-left", "border-color",
    "border-style", "border-width", "border-collapse", "border-spacing", "border-radius",
    "list-style-type", "table-layout", "word-break", "word-wrap", "overflow-wrap", "display",
})
# A style value containing any of these (spaces, comments and case ignored) is dropped whole.
_STYLE_DANGERS = ("url(", "expression", "javascript:", "vbscript:", "@import", "\\",
                  "image(", "image-set(", "-moz-binding", "behavior", "/*", "<", "&#")


_TAB_NEWLINE = dict.fromkeys(map(ord, "\t\n\r"))


@dataclass(frozen=True)
class SanitizedHTML:
    """HTML that is safe to put in the page, and how many remote images were held back."""

    html: str
    remote_images_blocked: int
    truncated: bool = False  # the original had more than MAX_TAGS tags; the rest is cut


def sanitize_html(
    html: str,
    *,
    allow_remote_images: bool,
    cid_url: Callable[[str], str | None] | None = None,
) -> SanitizedHTML:
    """Clean `html` for display. `cid_url` maps a Content-ID (without `cid:` or angle
    brackets) to the app URL of that part, or None to drop the reference."""
    rewriter = _Rewriter(allow_remote_images, cid_url)
    cleaner = nh3.Cleaner(
        tags=set(TAGS),
        clean_content_tags=set(DROPPED_WITH_CONTENT),
        attributes={tag: set(names) for tag, names in ATTRIBUTES.items()},
        attribute_filter=rewriter.filter,
        url_schemes=set(URL_SCHEMES),
        url_relative=rewriter.relative,
        filter_style_properties=set(STYLE_PROPERTIES),
        set_tag_attribute_values={"a": {"target": "_blank"}},
        link_rel="noopener noreferrer",
        strip_comments=True,
    )
    markup, truncated = cut_markup(html)
    return SanitizedHTML(cleaner.clean(markup), rewriter.blocked, truncated)


class _Rewriter:
    """nh3's attribute callback: rewrites cid: URLs, holds back remote images, drops
    dangerous styles. It must never raise (nh3 would report it as unraisable)."""

    def __init__(self, allow_remote: bool, cid_url: Callable[[str], str | None] | None):
        self.allow_remote = allow_remote
        self.cid_url = cid_url
        self.blocked = 0
        self.ours: set[str] = set()

    def filter(self, tag: str, attribute: str, value: str) -> str | None:
        if attribute == "style":
            return None if _dangerous_style(value) else value
        if attribute not in ("src", "href"):
            return value
        url = _as_browser_reads(value)
        scheme = url.split(":", 1)[0].lower() if ":" in url else ""
        if scheme == "cid":
            return self._cid(url[4:])
        if tag == "img" and attribute == "src" and (scheme in ("http", "https")
                                                    or url.startswith(("//", "\\\\"))):
            if not self.allow_remote:
                self.blocked += 1
                return None
            return url if scheme else "https:" + url
        return value

    def relative(self, url: str) -> str | None:
        """Relative URLs would point into the app itself: only our own part URLs may."""
        return url if url in self.ours else None

    def _cid(self, reference: str) -> str | None:
        if self.cid_url is None:
            return None
        content_id = urllib.parse.unquote(reference).strip().strip("<>")
        try:
            url = self.cid_url(content_id)
        except Exception:  # a failing callback must not break the page; drop the image
            return None
        if url is not None:
            self.ours.add(url)
        return url


def _as_browser_reads(url: str) -> str:
    """A URL as a browser's parser sees it (WHATWG: tabs and newlines anywhere are removed,
    leading and trailing controls and spaces are trimmed)."""
    return url.translate(_TAB_NEWLINE).strip("".join(map(chr, range(33))))


def _dangerous_style(value: str) -> bool:
    squeezed = "".join(value.split()).lower()
    return any(danger in squeezed for danger in _STYLE_DANGERS)
