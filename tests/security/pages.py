"""Reading the app's answers the way an attacker hopes a browser will: every element, every
attribute, every URL, with `html.parser`, and checks that nothing in them can run or leak.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from html.parser import HTMLParser

# What a sanitized mail body may contain: formatting only. Kept here, apart from the app's
# own list, so that widening the app's list (or dropping the sanitizer) fails these tests.
BODY_TAGS = frozenset({
    "a", "abbr", "acronym", "address", "article", "aside", "b", "bdi", "bdo", "big",
    "blockquote", "br", "caption", "center", "cite", "code", "col", "colgroup", "dd", "del",
    "details", "dfn", "div", "dl", "dt", "em", "figcaption", "figure", "font", "footer", "h1",
    "h2", "h3", "h4", "h5", "h6", "header", "hr", "i", "img", "ins", "kbd", "li", "mark", "nav",
    "ol", "p", "pre", "q", "rp", "rt", "ruby", "s", "samp", "section", "small", "span",
    "strike", "strong", "sub", "summary", "sup", "table", "tbody", "td", "tfoot", "th",
    "thead", "time", "tr", "tt", "u", "ul", "var", "wbr",
})
_CELL = {"align", "valign", "width", "height", "colspan", "rowspan", "bgcolor", "nowrap"}
BODY_ATTRIBUTES: dict[str, set[str]] = {
    "*": {"title", "lang", "dir", "style", "align"},
    "a": {"href", "rel", "target"},
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
# The frame document's own wrapper (templates/message_body.html): its head, and the <main>
# the sanitized body sits in.
FRAME_HEAD_TAGS = frozenset({"html", "head", "meta", "title", "style", "body"})
FRAME_BODY_TAGS = frozenset({"main"})
URL_ATTRIBUTES = frozenset({
    "href", "src", "action", "formaction", "poster", "background", "cite", "data", "codebase",
    "xlink:href", "ping", "lowsrc", "dynsrc", "srcset", "longdesc", "usemap", "profile",
    "manifest", "icon", "archive", "classid", "srcdoc",
})
SAFE_SCHEMES = ("http", "https", "mailto")
EMBEDDED_IMAGE = re.compile(r"^data:image/(png|jpeg|gif|webp);base64,[A-Za-z0-9+/=]+$")
_STYLE_DANGERS = ("url(", "expression", "javascript:", "vbscript:", "@import", "\\",
                  "behavior", "-moz-binding", "image-set(")
_CONTROLS = "".join(map(chr, range(33)))


@dataclass
class Element:
    tag: str
    attrs: list[tuple[str, str]]
    in_body: bool
    text: str = ""

    def get(self, name: str) -> str | None:
        return next((v for k, v in self.attrs if k == name), None)


@dataclass
class Document:
    """Every start tag of a page, in order, with its attributes (values unescaped)."""

    elements: list[Element] = field(default_factory=list)
    text: str = ""

    def find(self, tag: str) -> list[Element]:
        return [e for e in self.elements if e.tag == tag]

    @property
    def body(self) -> list[Element]:
        return [e for e in self.elements if e.in_body and e.tag != "body"]


class _Collector(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.document = Document()
        self._in_body = False
        self._open: list[Element] = []
        self._text: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "body":
            self._in_body = True
        element = Element(tag, [(k, v or "") for k, v in attrs], self._in_body)
        self.document.elements.append(element)
        if tag in ("script", "style", "title", "textarea"):
            self._open.append(element)

    def handle_endtag(self, tag: str) -> None:
        if tag == "body":
            self._in_body = False
        if self._open and self._open[-1].tag == tag:
            self._open.pop()

    def handle_data(self, data: str) -> None:
        if self._open:
            self._open[-1].text += data
        self._text.append(data)

    def close(self) -> None:
        super().close()
        self.document.text = "".join(self._text)


def parse(html: str) -> Document:
    collector = _Collector()
    collector.feed(html)
    collector.close()
    return collector.document


def browser_url(value: str) -> str:
    """A URL attribute as a browser reads it: tabs and newlines anywhere are dropped,
    controls and spaces around it trimmed (WHATWG URL parsing); entities are already decoded."""
    return re.sub(r"[\t\n\r]", "", value).strip(_CONTROLS)


def scheme_of(url: str) -> str:
    match = re.match(r"^([a-zA-Z][a-zA-Z0-9+.-]*):", url)
    return match.group(1).lower() if match else ""


def style_problem(style: str) -> str | None:
    squeezed = "".join(style.split()).lower()
    return next((d for d in _STYLE_DANGERS if d in squeezed), None)


def body_problems(html: str, *, embedded: set[str] | frozenset[str] = frozenset(),
                  remote_images: bool = False) -> list[str]:
    """Everything in a sanitized /body document outside the strict allow-list.

    `embedded` are the data: URLs the app made itself from cid: parts (the only data: URLs
    allowed); remote image URLs are allowed only with `remote_images`.
    """
    document = parse(html)
    problems = []
    for element in document.elements:
        if not element.in_body:
            if element.tag not in FRAME_HEAD_TAGS:
                problems.append(f"<{element.tag}> outside the body")
            if element.tag == "meta" and any(k == "http-equiv" for k, _ in element.attrs):
                problems.append("<meta http-equiv> in the frame document")
            continue
        if element.tag == "body":
            continue
        if element.tag not in BODY_TAGS | FRAME_BODY_TAGS:
            problems.append(f"<{element.tag}> is not allowed")
        allowed = BODY_ATTRIBUTES["*"] | BODY_ATTRIBUTES.get(element.tag, set())
        for name, value in element.attrs:
            if name.startswith("on"):
                problems.append(f"event handler {name}= on <{element.tag}>")
            elif name not in allowed:
                problems.append(f"attribute {name}= on <{element.tag}>")
            if name == "style" and (danger := style_problem(value)):
                problems.append(f"style with {danger!r} on <{element.tag}>")
            if name in URL_ATTRIBUTES:
                problems.extend(_url_problems(element.tag, name, value, embedded,
                                              remote_images))
        if element.tag == "a" and element.get("href") is not None:
            # A link opens a new window (the sandbox lets popups escape); without these
            # the new page could reach back through window.opener or learn the URL.
            rel = set((element.get("rel") or "").lower().split())
            if not {"noopener", "noreferrer"} <= rel or element.get("target") != "_blank":
                problems.append(f"link without rel=noopener noreferrer: {element.attrs!r}")
    return problems


def _url_problems(tag: str, name: str, value: str, embedded: set[str] | frozenset[str],
                  remote_images: bool) -> list[str]:
    url = browser_url(value)
    scheme = scheme_of(url)
    where = f"<{tag} {name}={value!r}>"
    if scheme == "data":
        ok = tag == "img" and name == "src" and url in embedded and EMBEDDED_IMAGE.match(url)
        return [] if ok else [f"data: URL {where}"]
    if scheme and scheme not in SAFE_SCHEMES:
        return [f"scheme {scheme}: {where}"]
    if not scheme:
        return [f"relative or scheme-less URL {where}"]
    if tag == "img" and not remote_images:
        return [f"remote image loaded without asking {where}"]
    if tag == "img" and scheme == "mailto":
        return [f"mailto image {where}"]
    return []


def app_page_problems(html: str) -> list[str]:
    """What must never be in a page of the app itself: inline script, event handlers,
    script URLs, plugins, mail markup let loose, or a frame that may run script."""
    document = parse(html)
    problems = []
    for element in document.elements:
        for name, value in element.attrs:
            if name.startswith("on"):
                problems.append(f"event handler {name}= on <{element.tag}>")
            if name in URL_ATTRIBUTES and scheme_of(browser_url(value)) not in ("", *SAFE_SCHEMES):
                problems.append(f"{name}={value!r} on <{element.tag}>")
            if name == "style":
                problems.append(f"inline style on <{element.tag}>")
        if element.tag == "script":
            src = element.get("src") or ""
            if not src.startswith("/static/") or element.text.strip():
                problems.append(f"inline or foreign script {element.attrs!r} {element.text[:80]!r}")
        if element.tag in ("object", "embed", "applet", "svg", "math", "base", "frame",
                           "frameset"):
            problems.append(f"<{element.tag}> in an app page")
        if element.tag == "form" and (element.get("action") or "/").startswith(("//", "http")):
            problems.append(f"form posting elsewhere: {element.attrs!r}")
        if element.tag == "meta" and (element.get("http-equiv") or "").lower() == "refresh" \
                and "url" in (element.get("content") or "").lower():
            problems.append(f"meta refresh to a URL: {element.attrs!r}")
        if element.tag == "img" and scheme_of(browser_url(element.get("src") or "")) != "":
            problems.append(f"image from elsewhere: {element.attrs!r}")
        if element.tag == "iframe":
            sandbox = element.get("sandbox")
            tokens = set((sandbox or "").split())
            if sandbox is None or tokens & {"allow-scripts", "allow-same-origin",
                                            "allow-forms", "allow-top-navigation"}:
                problems.append(f"iframe without a strict sandbox: {element.attrs!r}")
            if element.get("srcdoc") is not None:
                problems.append("iframe with srcdoc")
    return problems


def csp_directives(header: str) -> dict[str, list[str]]:
    directives: dict[str, list[str]] = {}
    for part in header.split(";"):
        words = part.split()
        if words:
            directives[words[0].lower()] = words[1:]
    return directives
