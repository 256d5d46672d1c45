from __future__ import annotations

from email.parser import BytesParser

import pytest
from hypothesis import given
from hypothesis import strategies as st

from app.messages import structure
from app.messages.structure import POLICY, _load_single_part
from tests.messages.samples import html_with_images, multipart, part, raw


def test_parts_are_numbered_depth_first_with_containers():
    loaded = structure.load(html_with_images())
    types = [node.part.get_content_type() for node in loaded.nodes]
    assert types == ["multipart/mixed", "multipart/alternative", "text/plain",
                     "multipart/related", "text/html", "image/png", "application/pdf"]
    assert [node.index for node in loaded.nodes] == list(range(7))
    assert [node.depth for node in loaded.nodes] == [0, 1, 2, 2, 3, 3, 1]


def test_raw_8bit_headers_stay_recoverable():
    loaded = structure.load("Subject: Привет\r\n\r\nx".encode())
    value = loaded.message["Subject"]
    assert isinstance(value, str)
    assert value.encode("ascii", "surrogateescape").decode() == "Привет"


def test_unparsed_multipart_reads_as_text():
    loaded = structure.load(raw('Content-Type: multipart/mixed; boundary="x"', body=b"plain"))
    assert structure.content_type(loaded.message) == "text/plain"
    assert structure.is_body_candidate(loaded.message)


def test_text_with_a_file_name_is_an_attachment_not_a_body():
    loaded = structure.load(multipart("mixed", "b", part("Content-Type: text/plain", body=b"x"),
                                      part('Content-Disposition: inline; filename="a.txt"',
                                           body=b"y")))
    candidates = [structure.is_body_candidate(node.part) for node in loaded.nodes[1:]]
    assert candidates == [True, False]


@pytest.mark.parametrize(
    ("headers", "expected"),
    [
        (('Content-Disposition: attachment; filename="report.pdf"',), "report.pdf"),
        (("Content-Type: application/pdf; name=report.pdf",), "report.pdf"),
        (("Content-Type: application/pdf; NAME=REPORT.PDF",), "REPORT.PDF"),
        (("Content-Disposition: attachment;",
          " filename*0*=utf-8''%D0%BE%D1%82%D1%87%D1%91%D1%82;",
          " filename*1*=.pdf"), "отчёт.pdf"),
        (("Content-Type: text/plain; charset=utf-8", "Content-Disposition: inline"), None),
        ((), None),
    ],
)
def test_a_file_name_is_found_in_every_spelling_and_only_there(headers, expected):
    """The quick look for "name" in the headers (before the library parses them) must never
    hide a file name."""
    loaded = structure.load(raw(*headers, body=b"x"))
    assert structure.filename(loaded.message) == expected


def test_suggested_filename_is_made_up_from_the_type():
    loaded = structure.load(raw("Content-Type: image/png", body=b"x"))
    assert structure.suggested_filename(loaded.message, 0) == "part-0.png"


# -- the single-part fast path gives what the full parser gives ----------------------------


_header_lines = st.lists(
    st.sampled_from([
        b"Subject: hello", b"From: A <a@example.org>", b"Content-Type: text/plain; charset=koi8-r",
        b"Content-Transfer-Encoding: base64", b"Content-Transfer-Encoding: quoted-printable",
        b"X-Folded: one\r\n two", b"Subject: =?utf-8?b?0J/RgNC40LLQtdGC?=", b"Bad header line",
        b"Content-Type: multipart/mixed; boundary=x", b"Content-Type: message/rfc822",
        b"X-8bit: \xd0\xbf\xd1\x80", b"Content-Type: text/html",
    ]),
    max_size=6,
)
_bodies = st.lists(st.sampled_from([b"text", b"\r\n", b"\n", b".", b"\xff", b"--x", b"=41"]),
                   max_size=30).map(b"".join)


@given(_header_lines, st.sampled_from([b"\r\n", b"\n"]), _bodies)
def test_single_part_fast_path_matches_the_full_parser(headers, eol, body):
    raw = b"".join(h + eol for h in headers) + eol + body
    fast = _load_single_part(raw)
    full = BytesParser(policy=POLICY).parsebytes(raw)
    if fast is None:
        return  # the full parser handles it
    assert fast.items() == full.items()
    assert fast.get_payload() == full.get_payload()
    assert fast.get_payload(decode=True) == full.get_payload(decode=True)


def test_fast_path_leaves_multipart_and_unclean_headers_to_the_full_parser():
    assert _load_single_part(b"Content-Type: multipart/mixed; boundary=b\r\n\r\n--b\r\n") is None
    assert _load_single_part(b"Subject: x\r\nnot a header\r\n\r\nbody") is None
    assert _load_single_part(b"Subject: no body and no blank line") is None
    assert _load_single_part(b"Subject: x\r\n\r\nbody").get_payload() == "body"
