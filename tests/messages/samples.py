"""Raw messages as bytes, written out the way real mailers send them."""

from __future__ import annotations

import base64


def raw(*header_lines: str, body: bytes = b"Hello.\r\n") -> bytes:
    """A message from header lines (already encoded as they travel) and a body."""
    head = "\r\n".join(header_lines).encode("utf-8", "surrogateescape")
    return head + b"\r\n\r\n" + body


def encoded_word(text: str, charset: str, encoding: str = "B") -> str:
    """An RFC 2047 encoded-word, built independently of the code under test."""
    data = text.encode(charset)
    if encoding == "B":
        return f"=?{charset}?B?{base64.b64encode(data).decode()}?="
    quoted = "".join(chr(b) if b < 128 and chr(b).isalnum() else f"={b:02X}" for b in data)
    return f"=?{charset}?Q?{quoted}?="


def crlf(text: str) -> bytes:
    """Multi-line text with CRLF line endings, as bytes."""
    return text.replace("\n", "\r\n").encode("utf-8")


def multipart(subtype: str, boundary: str, *parts: bytes, headers: tuple[str, ...] = ()) -> bytes:
    """A multipart entity: its headers, then each part between boundary lines."""
    head = [*headers, f'Content-Type: multipart/{subtype}; boundary="{boundary}"']
    body = b"".join(b"--" + boundary.encode() + b"\r\n" + part + b"\r\n" for part in parts)
    body = b"This is a multi-part message in MIME format.\r\n" + body
    return raw(*head, body=body + b"--" + boundary.encode() + b"--\r\n")


def part(*header_lines: str, body: bytes) -> bytes:
    """One body part: headers, blank line, content."""
    return "\r\n".join(header_lines).encode() + b"\r\n\r\n" + body


def koi8r_message() -> bytes:
    return raw(
        f"From: {encoded_word('Иван Петров', 'koi8-r')} <ivan@example.ru>",
        "To: maria@example.ru",
        f"Subject: {encoded_word('Отчёт за март', 'koi8-r')}",
        "Date: Tue, 12 Mar 2024 10:15:00 +0300",
        "Message-ID: <koi8.1@example.ru>",
        "MIME-Version: 1.0",
        "Content-Type: text/plain; charset=koi8-r",
        "Content-Transfer-Encoding: 8bit",
        body="Добрый день!\r\nОтчёт во вложении.\r\n".encode("koi8-r"),
    )


def html_with_images() -> bytes:
    html = (
        '<html><body><p>Смотри <b>картинку</b>:</p>'
        '<img src="cid:logo@example.ru" alt="logo">'
        '<img src="https://tracker.example.com/pixel.gif">'
        "<script>alert(1)</script></body></html>"
    ).encode()
    png = base64.b64encode(b"\x89PNG\r\n\x1a\nfake-image-bytes").decode()
    related = multipart(
        "related", "rel-boundary",
        part("Content-Type: text/html; charset=utf-8",
             "Content-Transfer-Encoding: base64",
             body=base64.encodebytes(html).replace(b"\n", b"\r\n")),
        part("Content-Type: image/png", "Content-Transfer-Encoding: base64",
             "Content-ID: <logo@example.ru>", "Content-Disposition: inline",
             body=png.encode()),
    )
    alternative = multipart(
        "alternative", "alt-boundary",
        part("Content-Type: text/plain; charset=utf-8", body="Смотри картинку.".encode()),
        related,
    )
    return multipart(
        "mixed", "mixed-boundary",
        alternative,
        part("Content-Type: application/pdf; name=\"report.pdf\"",
             "Content-Transfer-Encoding: base64",
             "Content-Disposition: attachment;",
             " filename*=utf-8''%D0%BE%D1%82%D1%87%D1%91%D1%82.pdf",
             body=base64.b64encode(b"%PDF-1.4 report")),
        headers=("From: Мария <maria@example.ru>", "To: ivan@example.ru",
                 "Subject: =?utf-8?B?0JrQsNGA0YLQuNC90LrQsA==?=",
                 "Date: Wed, 13 Mar 2024 09:00:00 +0300", "Message-ID: <html.1@example.ru>",
                 "MIME-Version: 1.0"),
    )


def nested(depth: int) -> bytes:
    """`depth` multiparts, each holding the next, with a text part at the bottom."""
    inner = part("Content-Type: text/plain", body=b"bottom")
    for level in reversed(range(depth)):
        inner = multipart("mixed", f"b{level}", inner)
    return b"From: a@example.com\r\nSubject: deep\r\n" + inner
