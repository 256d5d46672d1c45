"""Turning a parsed message into what the message pages show and serve.

Plain text becomes markup here, with quotes nested by depth and links made clickable; every
piece of the mail's own text goes through `markupsafe.escape` on its way, so nothing it says
can become a tag. Downloads get their safe type and RFC 6266 file name here too.
"""

from __future__ import annotations

import re
import unicodedata
import urllib.parse
from collections.abc import Iterator

from flask_babel import gettext as _
from flask_babel import ngettext
from markupsafe import Markup, escape

# A link in plain text: http(s) URLs and mailto: addresses, up to white space or a character
# that cannot end a URL written in prose. Trailing punctuation is trimmed afterwards.
_LINK = re.compile(r"(?:https?://|mailto:)[^\s<>\"'`\x00-\x1f\x7f]+", re.IGNORECASE)
_TRAILING = ".,;:!?'\"»…"
_QUOTE_PREFIX = re.compile(r"^(?:[ \t]{0,3}>)+")
MAX_QUOTE_CLASS = 5
MAX_TEXT_CHARS = 2_000_000

RASTER_IMAGE_TYPES = frozenset({"image/png", "image/jpeg", "image/gif", "image/webp"})
# Types a browser could run or render as a document from our origin (with a script inside):
# whatever their claims, these are served as opaque bytes.
_ACTIVE_MARKERS = ("html", "xml", "svg", "script", "xsl", "css", "x-shockwave",
                   "futuresplash", "mathml", "vnd.wap", "x-httpd")
_MEDIA_TYPE = re.compile(r"^[a-z0-9][a-z0-9!#$&^_.+-]{0,62}/[a-z0-9][a-z0-9!#$&^_.+-]{0,126}$")
_SAFE_TEXT_TYPES = frozenset({"text/plain", "text/csv", "text/calendar", "text/vcard",
                              "text/x-vcard", "text/tab-separated-values", "text/rtf"})
_SAFE_MAJOR_TYPES = ("image/", "audio/", "video/", "application/", "font/", "model/")


# -- plain text --------------------------------------------------------------------------------


def quote_depth(line: str) -> int:
    """How many `>` levels a line is quoted at ("> > text" and ">>text" are both 2)."""
    match = _QUOTE_PREFIX.match(line)
    return match.group(0).count(">") if match else 0


def linkify(line: str) -> Markup:
    """One line of text, escaped, with its http(s) and mailto links as anchors."""
    pieces: list[Markup] = []
    position = 0
    for match in _LINK.finditer(line):
        url = _trim_url(match.group(0))
        if len(url) <= len(match.group(0).split(":", 1)[0]) + 3:  # a bare "https://"
            continue
        pieces.append(escape(line[position:match.start()]))
        pieces.append(Markup(
            '<a href="{url}" rel="noopener noreferrer nofollow" target="_blank">{text}</a>'
        ).format(url=url, text=url))
        position = match.start() + len(url)
    pieces.append(escape(line[position:]))
    return Markup("").join(pieces)


def _trim_url(url: str) -> str:
    """Drop punctuation that ends the sentence rather than the URL; keep balanced brackets."""
    while url and (url[-1] in _TRAILING or _unbalanced(url, "(", ")")
                   or _unbalanced(url, "[", "]")):
        url = url[:-1]
    return url


def _unbalanced(url: str, opening: str, closing: str) -> bool:
    """The URL ends with a closing bracket that it never opened (prose around it did)."""
    return url.endswith(closing) and url.count(opening) < url.count(closing)


def _runs(lines: list[str]) -> Iterator[tuple[int, list[str]]]:
    """Consecutive lines at the same quote depth, grouped."""
    current: list[str] = []
    depth = 0
    for line in lines:
        line_depth = quote_depth(line)
        if current and line_depth != depth:
            yield depth, current
            current = []
        depth = line_depth
        current.append(line)
    if current:
        yield depth, current


def render_text(text: str) -> Markup:
    """A plain-text body as markup: quoted runs inside nested blockquotes (styled by depth),
    each run's lines kept as written (the page shows them with `white-space: pre-wrap`)."""
    out: list[Markup] = []
    open_depth = 0
    lines = text.replace("\r\n", "\n").replace("\r", "\n").split("\n")
    while lines and lines[-1] == "":
        lines.pop()
    for depth, run in _runs(lines):
        while open_depth < depth:
            open_depth += 1
            out.append(Markup('<blockquote class="quote quote-{}">').format(
                min(open_depth, MAX_QUOTE_CLASS)))
        while open_depth > depth:
            open_depth -= 1
            out.append(Markup("</blockquote>"))
        body = Markup("\n").join(linkify(line) for line in run)
        if run[-1] == "":
            body += Markup("\n")  # a trailing blank line in pre-wrap needs a second break
        out.append(Markup('<div class="text-run">{}</div>').format(body))
    out.extend(Markup("</blockquote>") for _ in range(open_depth))
    return Markup("").join(out)


# -- downloads ------------------------------------------------------------------------------------


def download_type(content_type: str) -> str:
    """The Content-Type to serve an attachment with: its own when that is inert in a browser,
    else application/octet-stream (HTML, SVG, XML, scripts and anything malformed)."""
    ctype = content_type.strip().lower()
    if not _MEDIA_TYPE.match(ctype) or any(marker in ctype for marker in _ACTIVE_MARKERS):
        return "application/octet-stream"
    if ctype.startswith("text/"):
        return ctype if ctype in _SAFE_TEXT_TYPES else "application/octet-stream"
    if ctype.startswith(_SAFE_MAJOR_TYPES):
        return ctype
    return "application/octet-stream"


def _clean_name(name: str) -> str:
    """The file name without control characters, path separators or surrounding dots."""
    name = unicodedata.normalize("NFC", name)
    name = "".join(ch for ch in name if unicodedata.category(ch)[0] != "C")
    name = name.replace("/", "_").replace("\\", "_").strip().strip(".").strip()
    return name[:200]


def _ascii_fallback(name: str) -> str:
    """The name in plain ASCII for clients that ignore `filename*`: accents dropped, other
    letters, quotes and backslashes become "_"; "attachment.ext" when nothing readable is left."""
    def ascii_only(text: str) -> str:
        decomposed = unicodedata.normalize("NFKD", text)
        text = "".join(ch for ch in decomposed if not unicodedata.combining(ch))
        text = "".join(ch if 32 <= ord(ch) < 127 and ch not in '"\\' else "_" for ch in text)
        return re.sub(r"_{2,}", "_", text).strip(" ._")

    stem, dot, extension = name.rpartition(".")
    if not dot:
        stem, extension = name, ""
    stem, extension = ascii_only(stem), ascii_only(extension)
    if not any(ch.isalnum() for ch in stem):
        stem = "attachment"
    return f"{stem}.{extension}" if extension.isalnum() else stem


def content_disposition(kind: str, filename: str) -> str:
    """`attachment` or `inline` with an RFC 6266 file name: a plain-ASCII `filename` for old
    clients and the exact name as UTF-8 in `filename*`."""
    name = _clean_name(filename) or "attachment"
    fallback = _ascii_fallback(name)
    encoded = urllib.parse.quote(name, safe="")
    return f"{kind}; filename=\"{fallback}\"; filename*=UTF-8''{encoded}"


# -- delivery path --------------------------------------------------------------------------------


def duration(seconds: float | None) -> str:
    """A delay as people read it: "0 s", "42 s", "3 min 5 s", "2 h 14 min", "3 d 4 h";
    a negative one (clocks that disagree) keeps its minus sign."""
    if seconds is None:
        return ""
    sign = "−" if seconds < 0 else ""
    total = round(abs(seconds))
    days, rest = divmod(total, 86400)
    hours, rest = divmod(rest, 3600)
    minutes, secs = divmod(rest, 60)
    if days:
        text = _("%(d)s d %(h)s h", d=days, h=hours)
    elif hours:
        text = _("%(h)s h %(m)s min", h=hours, m=minutes)
    elif minutes:
        text = _("%(m)s min %(s)s s", m=minutes, s=secs)
    else:
        text = _("%(s)s s", s=secs)
    return sign + text


def verdict_class(result: str) -> str:
    """The CSS class for an SPF/DKIM/DMARC result word."""
    if result == "pass":
        return "verdict-pass"
    if result in ("fail", "softfail", "permerror", "temperror", "policy"):
        return "verdict-fail"
    return "verdict-neutral"


def blocked_images_note(count: int) -> str:
    return ngettext(
        "%(num)s remote image was blocked to protect your privacy.",
        "%(num)s remote images were blocked to protect your privacy.",
        count,
    )


def header_end(data: bytes) -> int | None:
    """Where the header section of a raw message ends: just after the line break that
    closes its last field, before the blank line; None while no blank line has been seen."""
    ends = [i + 2 for i in (data.find(b"\r\n\r\n"),) if i >= 0]
    ends += [i + 1 for i in (data.find(b"\n\n"),) if i >= 0]
    return min(ends) if ends else None
