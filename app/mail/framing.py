"""How message data is framed on the wire, as pure functions over bytes.

SMTP DATA (RFC 5321, 4.5.2) and POP3 multiline responses (RFC 1939, 3) share one framing:
CRLF-terminated lines, a leading "." doubled, and a line holding only "." as the end. Getting
this wrong is how "SMTP smuggling" works (a body that ends DATA early with a bare-LF
"\\n.\\n" and starts a second message), so both directions live here, apart from sockets,
where they can be tested byte for byte.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass

CRLF = b"\r\n"
END_OF_DATA = b".\r\n"

_ANY_EOL = re.compile(rb"\r\n|\r|\n")


def _has_bare_eol(chunk: bytes) -> bool:
    """True when some CR or LF in `chunk` is not part of a CRLF pair (counting is far cheaper
    than a regex substitution on clean data, which is nearly all data)."""
    pairs = chunk.count(CRLF)
    return chunk.count(b"\r") != pairs or chunk.count(b"\n") != pairs


def smtp_data_chunks(chunks: Iterable[bytes]) -> Iterator[bytes]:
    """Encode message bytes for SMTP DATA, chunk by chunk, ending with CRLF.CRLF.

    Every bare CR and bare LF becomes CRLF, every line that starts with "." gets a second
    one, and the data always ends with CRLF before the final ".": so no content can end the
    transaction early or be read by the server as a command. A CR at the end of one chunk is
    held back until the next chunk shows whether an LF follows it.
    """
    at_line_start = True
    held_cr = False
    for chunk in chunks:
        if held_cr:
            chunk = b"\r" + chunk
            held_cr = False
        if chunk.endswith(b"\r"):
            chunk = chunk[:-1]
            held_cr = True
        if not chunk:
            continue
        if _has_bare_eol(chunk):
            chunk = _ANY_EOL.sub(CRLF, chunk)
        if at_line_start and chunk.startswith(b"."):
            chunk = b"." + chunk
        chunk = chunk.replace(b"\n.", b"\n..")
        at_line_start = chunk.endswith(b"\n")
        yield chunk
    if held_cr or not at_line_start:
        yield CRLF
    yield END_OF_DATA


def header_section(head: bytes) -> bytes:
    """The header lines at the start of a message, up to the first empty line, whatever mix
    of CRLF, CR and LF ends them (the server will see them normalized to CRLF)."""
    normalized = _ANY_EOL.sub(b"\n", head)
    end = normalized.find(b"\n\n")
    return normalized if end < 0 else normalized[:end]


def encode_smtp_data(message: bytes) -> bytes:
    """The whole of `smtp_data_chunks` for a message already in memory (tests, small mail)."""
    return b"".join(smtp_data_chunks([message]))


@dataclass(frozen=True, slots=True)
class Scanned:
    """What one pass over a POP3 multiline buffer found.

    `data` is unstuffed content from whole lines, `consumed` how many buffer bytes it used
    (including the terminating ".CRLF" when `done`), `done` whether the end was reached.
    """

    data: bytes | bytearray
    consumed: int
    done: bool


def _terminator(buffer: bytes | bytearray, end: int) -> tuple[int, int] | None:
    """Where the "." line is among the whole lines `buffer[:end]`: (its start, its end).

    The common CRLF marker is looked for first, and the bare-LF one only before it, so a
    buffer holding many pipelined responses is not scanned to its end for every message.
    """
    if buffer.startswith(b".\r\n"):
        return 0, 3
    if buffer.startswith(b".\n"):
        return 0, 2
    crlf = buffer.find(b"\n.\r\n", 0, end)
    bare = buffer.find(b"\n.\n", 0, crlf if crlf >= 0 else end)
    if bare >= 0:
        return bare + 1, bare + 3
    if crlf >= 0:
        return crlf + 1, crlf + 4
    return None


def scan_multiline(buffer: bytes | bytearray) -> Scanned:
    """Take whole lines of a POP3 multiline body from `buffer`, which starts at a line start.

    Lines that begin with ".." lose one dot; the content keeps its own line endings, so the
    bytes of the message are preserved exactly. A partial last line stays in the buffer for
    the next pass, as does anything after the terminator (the next pipelined response).
    """
    end = buffer.rfind(b"\n") + 1
    if end == 0:
        return Scanned(b"", 0, False)
    found = _terminator(buffer, end)
    if found is None:
        content, consumed, done = buffer[:end], end, False
    else:
        content, consumed, done = buffer[: found[0]], found[1], True
    # Big bodies pass through here in 256 KB pieces: copy only what must change.
    unstuffed = content.replace(b"\n..", b"\n.") if b"\n.." in content else content
    if unstuffed.startswith(b".."):
        unstuffed = unstuffed[1:]
    return Scanned(unstuffed, consumed, done)
