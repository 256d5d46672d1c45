from __future__ import annotations

import time

from app.messages.htmltext import MAX_TAGS, cut_markup, html_to_text


def test_entities_are_decoded():
    assert html_to_text("<p>Caf&eacute; &amp; &lt;tag&gt; &#1055;&#x440;&nbsp;x</p>") == (
        "Café & <tag> Пр x")


def test_script_style_and_title_text_is_dropped():
    html = ("<html><head><title>Title</title><style>p{color:red}</style></head>"
            "<body><script>var hidden = 1;</script><p>visible</p></body></html>")
    assert html_to_text(html) == "visible"


def test_blocks_and_breaks_become_lines():
    assert html_to_text("<div>one</div><div>two<br>three</div>") == "one\ntwo\nthree"


def test_paragraphs_are_separated_by_one_blank_line_at_most():
    assert html_to_text("<p>a</p>\n\n<p></p><p></p><p>b</p>") == "a\n\nb"


def test_source_newlines_inside_text_are_spaces():
    assert html_to_text("<p>one\ntwo   three</p>") == "one two three"


def test_list_items_get_dashes_and_cells_spaces():
    assert html_to_text("<ul><li>x</li><li>y</li></ul>") == "- x\n- y"
    assert html_to_text("<table><tr><td>a</td><td>b</td></tr></table>") == "a b"


def test_comments_and_unknown_tags_leave_only_text():
    assert html_to_text("a<!-- hidden -->b<blink>c</blink><custom-el>d</custom-el>") == "abcd"


def test_broken_markup_still_yields_text():
    assert html_to_text("<p>unclosed <b>bold <i>both") == "unclosed bold both"


def test_output_is_limited():
    assert len(html_to_text("<p>word</p>" * 10_000, limit=100)) == 100


def test_deeply_nested_blocks_are_cut_to_bound_the_work():
    html = "<div>" * 100_000 + "tail"
    cut, truncated = cut_markup(html)
    assert truncated and cut.count("<") == MAX_TAGS - 1
    start = time.perf_counter()
    html_to_text(html)
    assert time.perf_counter() - start < 5  # uncut, this takes tens of seconds


def test_short_markup_is_not_cut():
    assert cut_markup("<p>a</p>") == ("<p>a</p>", False)
