from __future__ import annotations

from app.messages import structure
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


def test_suggested_filename_is_made_up_from_the_type():
    loaded = structure.load(raw("Content-Type: image/png", body=b"x"))
    assert structure.suggested_filename(loaded.message, 0) == "part-0.png"
