"""SMTP DATA encoding and POP3 multiline decoding, byte for byte and under any chunking."""

from __future__ import annotations

import itertools
import re

from hypothesis import given
from hypothesis import strategies as st

from app.mail.framing import encode_smtp_data, scan_multiline, smtp_data_chunks

# Bytes rich in what matters here: dots, CR, LF, and line starts.
wire_bytes = st.lists(
    st.sampled_from([b".", b"..", b"\r", b"\n", b"\r\n", b"a", b"\xff", b" ", b".\r\n"]),
    max_size=60,
).map(b"".join)


def chunked(data: bytes, cuts: list[int]) -> list[bytes]:
    points = sorted({c % (len(data) + 1) for c in cuts})
    edges = [0, *points, len(data)]
    return [data[a:b] for a, b in itertools.pairwise(edges)]


def normalized(message: bytes) -> bytes:
    """What a receiving server must reconstruct: CRLF everywhere, ending with CRLF."""
    text = re.sub(rb"\r\n|\r|\n", b"\r\n", message)
    return text if text.endswith(b"\r\n") or not text else text + b"\r\n"


def server_side_decode(wire: bytes) -> bytes:
    """A strict RFC 5321 receiver: CRLF lines, "." ends, a leading dot is removed."""
    lines = wire.split(b"\r\n")
    out = []
    for line in lines:
        if line == b".":
            return b"".join(part + b"\r\n" for part in out)
        out.append(line[1:] if line.startswith(b".") else line)
    raise AssertionError("no end of data")


def test_data_gets_crlf_and_final_dot():
    assert encode_smtp_data(b"hello") == b"hello\r\n.\r\n"
    assert encode_smtp_data(b"hello\r\n") == b"hello\r\n.\r\n"
    assert encode_smtp_data(b"") == b".\r\n"


def test_leading_dots_are_doubled():
    assert encode_smtp_data(b".\r\n.x\r\n..y") == b"..\r\n..x\r\n...y\r\n.\r\n"


def test_bare_cr_and_lf_become_crlf():
    assert encode_smtp_data(b"a\rb\nc\r\n") == b"a\r\nb\r\nc\r\n.\r\n"


def test_cr_at_a_chunk_edge_pairs_with_lf_in_the_next_chunk():
    assert b"".join(smtp_data_chunks([b"a\r", b"\n.b"])) == b"a\r\n..b\r\n.\r\n"
    assert b"".join(smtp_data_chunks([b"a\r", b".b"])) == b"a\r\n..b\r\n.\r\n"
    assert b"".join(smtp_data_chunks([b"a\r"])) == b"a\r\n.\r\n"


@given(wire_bytes, st.lists(st.integers(min_value=0, max_value=200), max_size=8))
def test_chunking_never_changes_the_encoding(message, cuts):
    assert b"".join(smtp_data_chunks(chunked(message, cuts))) == encode_smtp_data(message)


@given(wire_bytes)
def test_a_strict_server_reads_back_exactly_the_normalized_message(message):
    wire = encode_smtp_data(message)
    assert server_side_decode(wire) == normalized(message)
    assert not re.search(rb"\r(?!\n)|(?<!\r)\n", wire), "bare CR or LF on the wire"
    end = b".\r\n" if wire == b".\r\n" else b"\r\n.\r\n"
    assert wire.endswith(end) and wire.count(b"\r\n.\r\n") == (0 if wire == b".\r\n" else 1)


def stuff(body: bytes) -> bytes:
    return re.sub(rb"(?m)^\.", b"..", body) + b".\r\n"


def scan_all(chunks: list[bytes]) -> tuple[bytes, bytes]:
    """Feed chunks to the scanner as a socket would; return (content, what followed)."""
    buffer = bytearray()
    out = bytearray()
    for index, chunk in enumerate(chunks):
        buffer += chunk
        result = scan_multiline(buffer)
        del buffer[: result.consumed]
        out += result.data
        if result.done:
            return bytes(out), bytes(buffer) + b"".join(chunks[index + 1 :])
    raise AssertionError("terminator never found")


crlf_lines = st.lists(
    st.lists(st.sampled_from([b".", b"a", b"\xfe", b"\r", b" ", b"\x00"]), max_size=6).map(
        b"".join
    ),
    max_size=12,
).map(lambda lines: b"".join(line + b"\r\n" for line in lines if not line.endswith(b"\r")))


@given(crlf_lines, st.lists(st.integers(min_value=0, max_value=300), max_size=8))
def test_multiline_body_is_restored_exactly_under_any_chunking(body, cuts):
    wire = stuff(body) + b"+OK next response\r\n"
    content, rest = scan_all(chunked(wire, cuts))
    assert content == body
    assert rest == b"+OK next response\r\n"


def test_scanner_waits_for_a_whole_line():
    result = scan_multiline(bytearray(b"partial line"))
    assert (result.data, result.consumed, result.done) == (b"", 0, False)


def test_scanner_accepts_a_bare_lf_terminator():
    result = scan_multiline(b"line\n.\n+OK")
    assert (result.data, result.done) == (b"line\n", True)
    assert result.consumed == len(b"line\n.\n")
