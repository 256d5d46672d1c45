"""Every way of running code or fetching remote content from mail HTML must come out inert.

`assert_inert` re-parses the sanitized output as a browser-like tokenizer would and checks
what is left: only allowed tags, no event handlers, only safe URL schemes, no style that
could fetch or execute anything.
"""

from __future__ import annotations

from html.parser import HTMLParser

import pytest

from app.messages import html_to_text, sanitize_html
from app.messages.sanitize import TAGS

SAFE_SCHEMES = ("http:", "https:", "mailto:")


class _Collector(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.tags: list[tuple[str, dict[str, str | None]]] = []
        self.comments: list[str] = []
        self.text: list[str] = []

    def handle_starttag(self, tag, attrs):
        self.tags.append((tag, dict(attrs)))

    def handle_comment(self, data):
        self.comments.append(data)

    def handle_data(self, data):
        self.text.append(data)


def collect(html: str) -> _Collector:
    collector = _Collector()
    collector.feed(html)
    collector.close()
    return collector


def assert_inert(html: str) -> _Collector:
    found = collect(html)
    assert not found.comments
    for tag, attrs in found.tags:
        assert tag in TAGS, tag
        for name, value in attrs.items():
            assert not name.startswith("on"), name
            if name in ("href", "src"):
                url = "".join((value or "").split()).lower()
                assert url.startswith(SAFE_SCHEMES) or url.startswith("/message/"), url
            if name == "style":
                squeezed = "".join((value or "").split()).lower()
                assert "url(" not in squeezed and "expression" not in squeezed
    return found


def clean(html: str, **options) -> str:
    options.setdefault("allow_remote_images", False)
    return sanitize_html(html, **options).html


def test_script_is_removed_with_its_content():
    found = assert_inert(clean("<p>hi</p><script>alert('x')</script><SCRIPT SRC=//x.js></SCRIPT>"))
    assert "alert" not in "".join(found.text)


@pytest.mark.parametrize("html", [
    '<img src="https://x/a.png" onerror="alert(1)">',
    '<body onload="alert(1)"><p onclick=alert(1) onmouseover="x()">t</p>',
    '<a href="https://x" ONFOCUS="alert(1)" autofocus>x</a>',
])
def test_event_handlers_are_removed(html):
    assert "alert" not in clean(html, allow_remote_images=True)
    assert_inert(clean(html, allow_remote_images=True))


@pytest.mark.parametrize("url", [
    "javascript:alert(1)", "JaVaScRiPt:alert(1)", " javascript:alert(1)",
    "java\nscript:alert(1)", "java\tscript:alert(1)", "&#106;avascript:alert(1)",
    "&#x6A;&#x61;&#x76;&#x61;script:alert(1)", "javascript&colon;alert(1)",
    "\x01javascript:alert(1)", "data:text/html;base64,PHNjcmlwdD4=", "DATA:text/html,x",
    "vbscript:msgbox(1)", "VBScript:msgbox(1)", "jav&#x09;ascript:alert(1)",
])
def test_dangerous_url_schemes_are_removed_from_links_and_images(url):
    html = f'<a href="{url}">link</a><img src="{url}">'
    result = clean(html, allow_remote_images=True)
    assert_inert(result)
    assert "script" not in result.lower() and "data:" not in result.lower()


def test_links_open_in_a_new_tab_without_referrer():
    [(tag, attrs)] = collect(clean('<a href="https://example.com/">x</a>')).tags
    assert tag == "a"
    assert attrs["href"] == "https://example.com/"
    assert attrs["target"] == "_blank"
    assert set(attrs["rel"].split()) == {"noopener", "noreferrer"}


def test_mailto_links_are_kept():
    assert 'href="mailto:a@example.com"' in clean('<a href="mailto:a@example.com">m</a>')


def test_relative_links_into_the_app_are_removed():
    found = assert_inert(clean('<a href="/logout">x</a><img src="/message/1/delete">'))
    assert all("href" not in attrs and "src" not in attrs for _, attrs in found.tags)


@pytest.mark.parametrize("html", [
    '<svg onload="alert(1)"><script>alert(1)</script></svg>',
    '<svg><a xlink:href="javascript:alert(1)"><text>x</text></a></svg>',
    "<svg><style><img src=x onerror=alert(1)></style></svg>",
    '<math><maction actiontype="statusline" xlink:href="javascript:alert(1)">x</maction></math>',
    "<math><mtext><table><mglyph><style><img src=x onerror=alert(1)>",
    '<math href="javascript:alert(1)">click</math>',
])
def test_svg_and_mathml_are_inert(html):
    result = clean(html)
    assert_inert(result)
    assert "alert" not in result and "svg" not in result and "math" not in result


def test_meta_refresh_base_and_link_are_removed():
    result = clean('<meta http-equiv="refresh" content="0;url=https://evil/">'
                   '<base href="https://evil/"><link rel="stylesheet" href="https://evil/a.css">'
                   "<p>text</p>")
    assert_inert(result)
    assert result == "<p>text</p>"


def test_forms_inputs_and_buttons_are_removed():
    found = assert_inert(clean('<form action="https://evil/"><input name="password">'
                               '<button formaction="https://evil/">Send</button>'
                               '<textarea>secret</textarea><select><option>o</select></form>'))
    assert found.tags == []


@pytest.mark.parametrize("tag", [
    '<object data="https://evil/x.swf"></object>', '<embed src="https://evil/x.swf">',
    '<iframe src="https://evil/"></iframe>', '<frameset><frame src="https://evil/"></frameset>',
    '<iframe srcdoc="<script>alert(1)</script>"></iframe>', '<applet code="X"></applet>',
])
def test_plugins_and_frames_are_removed(tag):
    result = clean(f"{tag}<p>after</p>")
    assert result == "<p>after</p>"


def test_style_blocks_are_dropped_with_their_content():
    result = clean("<style>body { background: url(https://evil/) }</style><p>x</p>")
    assert result == "<p>x</p>"


@pytest.mark.parametrize("style", [
    "width: expression(alert(1))", "background: url(https://tracker/p.gif)",
    "background-image: URL( 'https://tracker/p.gif' )", "color: red; behavior: url(x.htc)",
    "-moz-binding: url(https://evil/x.xml#xss)", "background: u\\rl(https://evil/)",
    "color: exp/**/ression(alert(1))", "list-style: url(https://tracker/)",
])
def test_dangerous_css_in_style_attributes_is_removed(style):
    result = clean(f'<p style="{style}">t</p>')
    assert_inert(result)
    assert "style=" not in result


def test_harmless_inline_styles_survive_filtered():
    result = clean('<p style="color: red; font-weight: bold; position: fixed; top: 0">t</p>')
    [(_, attrs)] = collect(result).tags
    assert attrs["style"] == "color:red;font-weight:bold"


@pytest.mark.parametrize("html", [
    '<noscript><p title="</noscript><img src=x onerror=alert(1)>">',
    '<p><style><img src=x onerror=alert(1)></style></p>',
    '<form><math><mtext></form><form><mglyph><style></math><img src onerror=alert(1)>',
    '<table><td><textarea></table><img src=x onerror=alert(1)>',
    "<xmp><p title=\"</xmp><img src=x onerror=alert(1)>\">",
    '<svg></p><style><a id="</style><img src=1 onerror=alert(1)>">',
])
def test_mutation_xss_forms_are_inert(html):
    result = clean(html)
    assert_inert(result)
    # Whatever text survives, a browser re-parsing it finds no handler.
    assert_inert(clean(result))


def test_conditional_comments_are_removed():
    result = clean("<!--[if IE]><script>alert(1)</script><![endif]--><p>ok</p>"
                   "<![if !IE]><img src=x onerror=alert(1)><![endif]>")
    assert_inert(result)
    assert "alert" not in result


def test_remote_images_are_blocked_and_counted():
    sanitized = sanitize_html('<img src="https://t.example/a.gif"><img src="http://t/b.png">'
                              '<img src="//t.example/c.png"><img src="ht\ntps://t/d.png">',
                              allow_remote_images=False)
    assert sanitized.remote_images_blocked == 4
    found = assert_inert(sanitized.html)
    assert all("src" not in attrs for _, attrs in found.tags)


def test_remote_images_load_when_allowed():
    sanitized = sanitize_html('<img src="https://t.example/a.gif">', allow_remote_images=True)
    assert sanitized.remote_images_blocked == 0
    assert 'src="https://t.example/a.gif"' in sanitized.html


def test_cid_images_are_rewritten_to_part_urls():
    def cid_url(content_id):
        return {"logo@example.ru": "/message/abc/part/3"}.get(content_id)

    sanitized = sanitize_html('<img src="cid:logo@example.ru"><img src="CID:logo%40example.ru">'
                              '<img src="cid:unknown@x">', allow_remote_images=False,
                              cid_url=cid_url)
    srcs = [attrs.get("src") for _, attrs in collect(sanitized.html).tags]
    assert srcs == ["/message/abc/part/3", "/message/abc/part/3", None]
    assert sanitized.remote_images_blocked == 0


def test_cid_callback_failure_drops_the_image_quietly():
    def broken(content_id):
        raise RuntimeError("store unavailable")

    result = clean('<img src="cid:a@b">', cid_url=broken)
    assert "src" not in result


def test_data_image_is_not_allowed():
    assert "src" not in clean('<img src="data:image/png;base64,iVBORw0KGgo=">')


def test_ordinary_formatting_survives():
    html = ('<table border="1"><tr><td colspan="2" bgcolor="#eee"><b>Bold</b> <i>it</i>'
            '<font color="red">red</font></td></tr></table><ul><li>one</li></ul>')
    result = clean(html)
    assert result == html.replace("<tr>", "<tbody><tr>").replace("</table>", "</tbody></table>")


def test_html_to_text_is_reexported_for_quoting():
    assert html_to_text("<p>a</p><p>b &amp; c</p>") == "a\n\nb & c"


def test_pathologically_nested_html_is_cut_and_flagged():
    sanitized = sanitize_html("<blockquote>" * 50_000 + "x", allow_remote_images=False)
    assert sanitized.truncated
    assert not sanitize_html("<p>x</p>", allow_remote_images=False).truncated
