"""Malformed mail is shown as well as it can be, never as a server error."""

from __future__ import annotations

import pytest

from tests.messages.samples import multipart, nested, part, raw
from tests.web.test_message import deliver

ROUTES = ("", "/body", "/raw", "/headers", "/part/0", "/part/1", "/part/2", "/part/3",
          "?view=text", "?images=1")


def broken_base64() -> bytes:
    return multipart(
        "mixed", "b64-b",
        part("Content-Type: text/plain; charset=utf-8", "Content-Transfer-Encoding: base64",
             body=b"SGVsbG8g!!!not base64 at all===\xff\xfe"),
        part("Content-Type: image/png", "Content-Transfer-Encoding: base64",
             "Content-Disposition: attachment; filename=\"x.png\"", body=b"%%%%"),
        headers=("From: a@example.com", "Subject: broken base64",
                 "Message-ID: <mal.b64@example.com>", "MIME-Version: 1.0"),
    )


def missing_boundary() -> bytes:
    return raw("From: a@example.com", "Subject: no boundary",
               "Message-ID: <mal.boundary@example.com>", "MIME-Version: 1.0",
               "Content-Type: multipart/mixed",
               body=b"--x\r\nContent-Type: text/plain\r\n\r\nlost part\r\n--x--\r\n")


def unknown_charset() -> bytes:
    return multipart(
        "alternative", "cs-b",
        part("Content-Type: text/plain; charset=x-no-such-charset", body="Привет".encode()),
        part("Content-Type: text/html; charset=\"utf-8\x00\"", body=b"<p>\xd0\x9f\xff</p>"),
        headers=("From: =?x-unknown?B?0J/RgNC40LLQtdGC?= <a@example.com>",
                 "Subject: =?bogus?Q?=FF=FE?=", "Message-ID: <mal.charset@example.com>",
                 "MIME-Version: 1.0"),
    )


def deeply_nested(depth: int, name: str) -> bytes:
    return nested(depth).replace(b"Subject: deep", f"Message-ID: <{name}@example.com>\r\n"
                                 "Subject: deep".encode(), 1)


def garbage_headers() -> bytes:
    return (b"Message-ID: <mal.garbage@example.com>\r\nthis line has no colon\r\n"
            b"From: \"unterminated <a@\r\nSubject: =?utf-8?B?###?=\x00\r\n"
            b"Date: Feb 30 99999 25:61:61 +9999\r\n"
            b"Received: from ((((( by ;;;; ; ;\r\n"
            b"Authentication-Results: ; spf= ; =pass; dkim\r\n"
            b"Content-Type: text/html; charset=utf-8\r\n\r\n<p <<<>>><img src=cid:>")


MALFORMED = {
    "broken base64": (broken_base64(), "mal.b64"),
    "missing boundary": (missing_boundary(), "mal.boundary"),
    "unknown charset": (unknown_charset(), "mal.charset"),
    "nested deeper than the walk": (deeply_nested(80, "mal.nested"), "mal.nested"),
    "nested deeper than the parser": (deeply_nested(3000, "mal.deeper"), "mal.deeper"),
    "garbage headers": (garbage_headers(), "mal.garbage"),
}


@pytest.mark.parametrize("name", sorted(MALFORMED))
def test_malformed_message_never_gives_a_server_error(app, logged_in, mail_server, name):
    message, _ = MALFORMED[name]
    (message_id,) = deliver(app, logged_in, mail_server, message)
    response = logged_in.get(f"/message/{message_id}")
    assert response.status_code == 200
    for route in ROUTES:
        response = logged_in.get(f"/message/{message_id}{route}")
        assert response.status_code in (200, 404), (route, response.status_code)


def test_broken_base64_text_is_still_shown(app, logged_in, mail_server):
    (message_id,) = deliver(app, logged_in, mail_server, broken_base64())
    html = logged_in.get(f"/message/{message_id}").get_data(as_text=True)
    assert "broken base64" in html
    assert "x.png" in html


def test_multipart_without_boundary_is_shown_as_text(app, logged_in, mail_server):
    (message_id,) = deliver(app, logged_in, mail_server, missing_boundary())
    html = logged_in.get(f"/message/{message_id}").get_data(as_text=True)
    assert "lost part" in html


def test_unknown_charset_falls_back_to_readable_text(app, logged_in, mail_server):
    (message_id,) = deliver(app, logged_in, mail_server, unknown_charset())
    html = logged_in.get(f"/message/{message_id}?view=text").get_data(as_text=True)
    assert "Привет" in html


def test_too_deep_nesting_is_explained(app, logged_in, mail_server):
    (message_id,) = deliver(app, logged_in, mail_server, deeply_nested(80, "mal.nested"))
    html = logged_in.get(f"/message/{message_id}").get_data(as_text=True)
    assert "Parts nested deeper than" in html
