"""The pure helpers behind the message pages: text to markup, download names and types."""

from __future__ import annotations

import urllib.parse

import pytest
from hypothesis import given
from hypothesis import strategies as st
from markupsafe import Markup

from app.web.message import body_csp
from app.web.message_render import (
    content_disposition,
    download_type,
    duration,
    header_end,
    linkify,
    quote_depth,
    render_text,
    verdict_class,
)


@pytest.mark.parametrize(("line", "depth"), [
    ("plain", 0), ("> one", 1), (">> two", 2), ("> > two", 2), ("  > one", 1),
    (">>> > four", 4), ("a > b", 0), ("", 0),
])
def test_quote_depth(line, depth):
    assert quote_depth(line) == depth


@pytest.mark.parametrize(("text", "url"), [
    ("see https://example.com/x.", "https://example.com/x"),
    ("(https://example.com/wiki/A_(b))", "https://example.com/wiki/A_(b)"),
    ("(at https://example.com/a)", "https://example.com/a"),
    ("HTTP://EXAMPLE.COM/!", "HTTP://EXAMPLE.COM/"),
    ("mailto:a@example.com;", "mailto:a@example.com"),
    ("<https://example.com/q?a=1&b=2>", "https://example.com/q?a=1&b=2"),
])
def test_linkify_finds_the_url_and_leaves_trailing_punctuation(text, url):
    html = str(linkify(text))
    escaped = str(Markup.escape(url))
    assert f'<a href="{escaped}" rel="noopener noreferrer nofollow" target="_blank">' in html


@pytest.mark.parametrize("text", ["javascript:alert(1)", "ftp://example.com/", "data:text/html,x",
                                  "https://", "www.example.com", "file:///etc/passwd"])
def test_linkify_links_only_http_https_and_mailto(text):
    assert "<a " not in str(linkify(text))


def test_linkify_escapes_a_url_that_tries_to_break_out_of_the_attribute():
    html = str(linkify('https://example.com/"onmouseover="alert(1)'))
    assert '"onmouseover' not in html
    assert "&#34;onmouseover=&#34;alert(1)" in html


@given(st.text(max_size=200))
def test_rendered_text_never_contains_markup_from_the_input(text):
    html = str(render_text(text))
    stripped = (html.replace('<div class="text-run">', "").replace("</div>", "")
                .replace("</blockquote>", "").replace("</a>", ""))
    for depth in range(1, 6):
        stripped = stripped.replace(f'<blockquote class="quote quote-{depth}">', "")
    stripped = stripped.replace(' rel="noopener noreferrer nofollow" target="_blank">', "")
    while '<a href="' in stripped:
        start = stripped.index('<a href="')
        end = stripped.index('"', start + 9)
        stripped = stripped[:start] + stripped[end + 1:]
    assert "<" not in stripped


def test_render_text_balances_blockquotes():
    html = str(render_text(">>> deep\nback\n> one\n>> two"))
    assert html.count("<blockquote") == html.count("</blockquote>") == 5
    assert 'class="quote quote-3"' in html


def test_render_text_caps_the_depth_class():
    assert 'class="quote quote-5"' in str(render_text(">>>>>>>>>> ten"))
    assert "quote-6" not in str(render_text(">>>>>>>>>> ten"))


@pytest.mark.parametrize(("declared", "served"), [
    ("application/pdf", "application/pdf"),
    ("image/png", "image/png"),
    ("text/plain", "text/plain"),
    ("text/html", "application/octet-stream"),
    ("image/svg+xml", "application/octet-stream"),
    ("application/xhtml+xml", "application/octet-stream"),
    ("text/xml", "application/octet-stream"),
    ("application/xml", "application/octet-stream"),
    ("application/javascript", "application/octet-stream"),
    ("text/javascript", "application/octet-stream"),
    ("text/css", "application/octet-stream"),
    ("text/x-unknown", "application/octet-stream"),
    ("multipart/mixed", "application/octet-stream"),
    ("TEXT/HTML", "application/octet-stream"),
    ("image/png\r\nX-Evil: 1", "application/octet-stream"),
    ("image/png; charset=x", "application/octet-stream"),
    ("", "application/octet-stream"),
])
def test_download_type(declared, served):
    assert download_type(declared) == served


def test_content_disposition_for_a_cyrillic_name():
    value = content_disposition("attachment", "Отчёт за март.pdf")
    assert value.startswith('attachment; filename="')
    fallback = value.split('filename="', 1)[1].split('"', 1)[0]
    assert fallback.isascii() and fallback.endswith(".pdf")
    encoded = value.split("filename*=UTF-8''", 1)[1]
    assert encoded == urllib.parse.quote("Отчёт за март.pdf", safe="")
    assert urllib.parse.unquote(encoded) == "Отчёт за март.pdf"


@pytest.mark.parametrize("name", ['a"b.txt', "a\\b.txt", "a\r\nX-Evil: 1.txt", "../../etc/passwd",
                                  "\x00\x1f.txt", "..", "", "é" * 500])
def test_content_disposition_fallback_is_safe(name):
    value = content_disposition("attachment", name)
    fallback = value.split('filename="', 1)[1].split('"; filename*=', 1)[0]
    assert fallback and fallback.isascii()
    assert not any(ch in fallback for ch in '"\\/\r\n\x00')
    assert all(32 <= ord(ch) < 127 for ch in value)
    assert "\r" not in value and "\n" not in value


def test_content_disposition_keeps_latin_letters_in_the_fallback():
    assert content_disposition("inline", "Café.png").startswith('inline; filename="Cafe.png"')


@pytest.mark.parametrize(("seconds", "text"), [
    (0, "0 s"), (42, "42 s"), (90, "1 min 30 s"), (3600, "1 h 0 min"), (7380, "2 h 3 min"),
    (90000, "1 d 1 h"), (-5, "−5 s"), (None, ""),
])
def test_duration(app, seconds, text):
    with app.test_request_context():
        assert duration(seconds) == text


def test_verdict_classes():
    assert verdict_class("pass") == "verdict-pass"
    assert verdict_class("fail") == verdict_class("softfail") == "verdict-fail"
    assert verdict_class("none") == verdict_class("neutral") == "verdict-neutral"


@pytest.mark.parametrize(("data", "end"), [
    (b"A: 1\r\nB: 2\r\n\r\nbody", 12), (b"A: 1\nB: 2\n\nbody", 10), (b"A: 1\r\n", None),
    (b"A: 1\n\nb\r\n\r\n", 5),
])
def test_header_end(data, end):
    assert header_end(data) == end


def test_body_policy_allows_remote_images_only_when_asked():
    assert "http:" not in body_csp(False)
    assert "img-src 'self' data: http: https:" in body_csp(True)
    for policy in (body_csp(False), body_csp(True)):
        assert "script-src" not in policy and "default-src 'none'" in policy
        assert "allow-scripts" not in policy and "allow-same-origin" not in policy
