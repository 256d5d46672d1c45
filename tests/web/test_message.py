"""The message view: decoded headers and bodies, inert HTML, downloads, raw source, delete."""

from __future__ import annotations

import base64
import re
import urllib.parse

import pytest
from flask import Flask
from flask.testing import FlaskClient

from app.demo.server import DemoMailServer
from app.store import AccountKey
from tests.messages.samples import (
    encoded_word,
    html_with_images,
    koi8r_message,
    multipart,
    part,
    raw,
)
from tests.web.conftest import csrf_token, fetch_and_wait, log_in


def store_ids(app: Flask, server: DemoMailServer, user: str = "alice") -> dict[str, str]:
    """Message-ID header -> the store's opaque id, for every message the user has."""
    key = AccountKey("localhost", server.pop3_port, user)
    items = app.extensions["pochta.store"].mailbox(key).page(1, 500).items
    return {item.message_id.strip("<>"): item.id for item in items}


def deliver(app: Flask, client: FlaskClient, server: DemoMailServer, *messages: bytes,
            user: str = "alice") -> list[str]:
    """Deliver `messages` to `user`'s maildrop, fetch them, and return their store ids (each
    message must carry a distinct Message-ID)."""
    wanted = []
    for message in messages:
        match = re.search(rb"^Message-ID: <([^>]+)>", message, re.MULTILINE | re.IGNORECASE)
        assert match, "sample messages need a Message-ID"
        wanted.append(match.group(1).decode())
        server.mailboxes.deliver(user, message)
    state = fetch_and_wait(client)
    assert state["state"] == "done", state
    ids = store_ids(app, server, user)
    return [ids[message_id] for message_id in wanted]


def page(client: FlaskClient, url: str) -> str:
    response = client.get(url)
    assert response.status_code == 200, (url, response.status_code)
    return response.get_data(as_text=True)


# -- samples -------------------------------------------------------------------------------------


def windows1251_message() -> bytes:
    return raw(
        f"From: {encoded_word('Ольга Смирнова', 'windows-1251', 'Q')} <olga@example.ru>",
        "To: alice@pochta.test",
        f"Cc: {encoded_word('Пётр', 'windows-1251')} <petr@example.ru>",
        f"Subject: {encoded_word('Счёт на оплату', 'windows-1251', 'Q')}",
        "Date: Mon, 11 Mar 2024 08:30:00 +0300",
        "Message-ID: <cp1251.1@example.ru>",
        "MIME-Version: 1.0",
        "Content-Type: text/plain; charset=windows-1251",
        "Content-Transfer-Encoding: quoted-printable",
        body=b"".join(f"={b:02X}".encode() for b in "Оплатите счёт".encode("windows-1251")),
    )


def hostile_text_message() -> bytes:
    body = (
        "Hi <b>there</b> & welcome.\n"
        "See https://example.com/a?b=1&c=2, or write to mailto:bob@example.com.\n"
        "Not a link: javascript:alert(1) nor <img src=x onerror=alert(1)>\n"
        "\n"
        "> I said this\n"
        "> > and before that\n"
        ">> this too\n"
        "Back at the top.\n"
    )
    text = part("Content-Type: text/plain; charset=utf-8", body=body.encode())
    attachment = part(
        "Content-Type: text/plain; name=\"<img src=x onerror=alert(2)>.txt\"",
        "Content-Disposition: attachment; filename=\"<img src=x onerror=alert(2)>.txt\"",
        body=b"file",
    )
    return multipart(
        "mixed", "hostile-b", text, attachment,
        headers=(
            "From: \"<script>alert('name')</script>\" <evil@example.com>",
            "To: alice@pochta.test",
            "Subject: <script>alert('subject')</script>",
            "Date: Thu, 14 Mar 2024 12:00:00 +0000",
            "Message-ID: <hostile.1@example.com>",
            "MIME-Version: 1.0",
        ),
    )


def attachments_message() -> bytes:
    pdf = base64.b64encode(b"%PDF-1.4 report").decode()
    return multipart(
        "mixed", "att-b",
        part("Content-Type: text/plain; charset=utf-8", body=b"Files attached."),
        part("Content-Type: application/pdf",
             "Content-Transfer-Encoding: base64",
             "Content-Disposition: attachment;",
             " filename*=utf-8''%D0%9E%D1%82%D1%87%D1%91%D1%82%20%22Q1%22.pdf",
             body=pdf.encode()),
        part("Content-Type: text/html; charset=utf-8",
             "Content-Disposition: attachment; filename=\"page.html\"",
             body=b"<script>alert(document.cookie)</script>"),
        part("Content-Type: image/svg+xml",
             "Content-Disposition: inline; filename=\"logo.svg\"",
             body=b'<svg xmlns="http://www.w3.org/2000/svg" onload="alert(1)"/>'),
        headers=("From: files@example.com", "To: alice@pochta.test", "Subject: Files",
                 "Date: Fri, 15 Mar 2024 10:00:00 +0000", "Message-ID: <files.1@example.com>",
                 "MIME-Version: 1.0"),
    )


def part_number(html: str, name: str) -> int:
    """The n of the download link whose text is `name`."""
    match = re.search(r'href="/message/[^/"]+/part/(\d+)"[^>]*>(?:<span[^>]*>[^<]*</span>)?'
                      + re.escape(name) + "<", html)
    assert match, f"no download link for {name}"
    return int(match.group(1))


# -- headers and text bodies ---------------------------------------------------------------------


def test_koi8r_and_windows1251_headers_and_bodies_are_decoded(app, logged_in, mail_server):
    koi8, cp1251 = deliver(app, logged_in, mail_server, koi8r_message(), windows1251_message())

    html = page(logged_in, f"/message/{koi8}")
    assert "<h1 id=\"message-subject\">Отчёт за март</h1>" in html
    assert "Иван Петров" in html
    assert "&lt;ivan@example.ru&gt;" in html
    assert "Добрый день!\nОтчёт во вложении." in html
    assert "maria@example.ru" in html

    html = page(logged_in, f"/message/{cp1251}")
    assert "Счёт на оплату" in html
    assert "Ольга Смирнова" in html
    assert "Пётр" in html and "petr@example.ru" in html
    assert "Оплатите счёт" in html
    assert 'datetime="2024-03-11T08:30:00+03:00"' in html


def test_viewing_marks_the_message_seen(app, logged_in, mail_server):
    (message_id,) = deliver(app, logged_in, mail_server, koi8r_message())
    mailbox = app.extensions["pochta.store"].mailbox(
        AccountKey("localhost", mail_server.pop3_port, "alice"))
    assert mailbox.get(message_id).seen is False
    page(logged_in, f"/message/{message_id}")
    assert mailbox.get(message_id).seen is True


def test_text_links_are_clickable_and_markup_is_escaped(app, logged_in, mail_server):
    (message_id,) = deliver(app, logged_in, mail_server, hostile_text_message())
    html = page(logged_in, f"/message/{message_id}")

    assert ('<a href="https://example.com/a?b=1&amp;c=2" rel="noopener noreferrer nofollow" '
            'target="_blank">https://example.com/a?b=1&amp;c=2</a>,') in html
    assert '<a href="mailto:bob@example.com" rel="noopener noreferrer nofollow"' in html
    assert 'href="javascript' not in html
    assert "Hi &lt;b&gt;there&lt;/b&gt; &amp; welcome." in html
    assert "&lt;img src=x onerror=alert(1)&gt;" in html
    assert "<img src=x" not in html
    # the subject, the display name and the file name are text, never markup
    assert "<script>alert" not in html
    assert "&lt;script&gt;alert(&#39;subject&#39;)&lt;/script&gt;" in html
    assert "&lt;script&gt;alert(&#39;name&#39;)&lt;/script&gt;" in html
    assert "&lt;img src=x onerror=alert(2)&gt;.txt" in html
    assert "<img src=x onerror=alert(2)>" not in html


def test_quoted_lines_are_nested_by_depth(app, logged_in, mail_server):
    (message_id,) = deliver(app, logged_in, mail_server, hostile_text_message())
    html = page(logged_in, f"/message/{message_id}")
    assert re.search(
        r'<blockquote class="quote quote-1"><div class="text-run">&gt; I said this</div>'
        r'<blockquote class="quote quote-2"><div class="text-run">&gt; &gt; and before that\n'
        r"&gt;&gt; this too</div></blockquote></blockquote>"
        r'<div class="text-run">Back at the top.</div>',
        html,
    ), html


def test_page_offers_reply_forward_raw_headers_delete_and_navigation(app, logged_in, mail_server):
    older, middle, newer = deliver(app, logged_in, mail_server, koi8r_message(),
                                   windows1251_message(), hostile_text_message())
    # inbox order is by Date: hostile (14 Mar) > koi8 (12 Mar) > cp1251 (11 Mar)
    html = page(logged_in, f"/message/{older}?page=2&q=счёт")
    assert f'href="/compose?reply={older}"' in html
    assert f'href="/compose?reply={older}&amp;all=1"' in html
    assert f'href="/compose?forward={older}"' in html
    assert f'href="/message/{older}/raw"' in html
    assert f'href="/message/{older}/headers' in html
    assert re.search(rf'<form method="post" action="/message/{older}/delete"[^>]*data-confirm="',
                     html)
    assert f'rel="prev" href="/message/{newer}?page=2&amp;q=' in html
    assert f'rel="next" href="/message/{middle}?page=2&amp;q=' in html
    assert 'href="/inbox?page=2&amp;q=%D1%81%D1%87%D1%91%D1%82"' in html
    assert '<input type="hidden" name="q" value="счёт">' in html


def test_another_accounts_message_is_not_found_on_every_route(app, logged_in, mail_server):
    (message_id,) = deliver(app, logged_in, mail_server, html_with_images())
    bob = app.test_client()
    log_in(bob, mail_server, "bob")
    for url in ("", "/body", "/raw", "/part/6", "/headers"):
        assert bob.get(f"/message/{message_id}{url}").status_code == 404, url
        assert logged_in.get(f"/message/{message_id}{url}").status_code == 200, url
    token = csrf_token(bob, "/inbox")
    response = bob.post(f"/message/{message_id}/delete", data={"csrf_token": token})
    assert response.status_code == 404
    assert logged_in.get(f"/message/{message_id}").status_code == 200


def test_unknown_id_is_not_found(logged_in):
    for url in ("", "/body", "/raw", "/part/0", "/headers"):
        assert logged_in.get(f"/message/nope{url}").status_code == 404, url


def test_every_route_needs_a_login(client):
    for url in ("", "/body", "/raw", "/part/0", "/headers"):
        response = client.get(f"/message/x{url}")
        assert response.status_code == 302, url
        assert "/login" in response.headers["Location"]


# -- HTML mail ------------------------------------------------------------------------------------


def test_html_mail_is_framed_sandboxed_with_a_text_alternative(app, logged_in, mail_server):
    (message_id,) = deliver(app, logged_in, mail_server, html_with_images())
    html = page(logged_in, f"/message/{message_id}")
    frame = re.search(r"<iframe[^>]*>", html).group(0)
    assert 'sandbox="allow-popups allow-popups-to-escape-sandbox"' in frame
    assert f'src="/message/{message_id}/body"' in frame
    assert "title=" in frame
    assert "allow-scripts" not in html and "allow-same-origin" not in html
    assert "tracker.example.com" not in html
    assert "1 remote image was blocked" in html
    assert f'href="/message/{message_id}?images=1"' in html
    assert f'href="/message/{message_id}?view=text"' in html

    text = page(logged_in, f"/message/{message_id}?view=text")
    assert "<iframe" not in text
    assert "Смотри картинку." in text


def test_html_body_is_sanitized_with_its_own_strict_policy(app, logged_in, mail_server):
    (message_id,) = deliver(app, logged_in, mail_server, html_with_images())
    response = logged_in.get(f"/message/{message_id}/body")
    assert response.status_code == 200
    assert response.headers["Content-Type"] == "text/html; charset=utf-8"
    csp = response.headers["Content-Security-Policy"]
    assert csp == ("default-src 'none'; img-src 'self' data:; style-src 'unsafe-inline'; "
                   "font-src 'none'; form-action 'none'; frame-ancestors 'self'; "
                   "base-uri 'none'; sandbox allow-popups allow-popups-to-escape-sandbox")
    assert response.headers["X-Frame-Options"] == "SAMEORIGIN"
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    body = response.get_data(as_text=True)
    assert '<meta charset="utf-8">' in body
    assert "<b>картинку</b>" in body
    assert "<script" not in body and "alert(1)" not in body
    assert "tracker.example.com" not in body
    assert "<base" not in body


def test_remote_images_load_only_when_asked(app, logged_in, mail_server):
    (message_id,) = deliver(app, logged_in, mail_server, html_with_images())
    html = page(logged_in, f"/message/{message_id}?images=1")
    assert f'src="/message/{message_id}/body?images=1"' in html
    assert "remote image was blocked" not in html
    response = logged_in.get(f"/message/{message_id}/body?images=1")
    assert 'src="https://tracker.example.com/pixel.gif"' in response.get_data(as_text=True)
    assert "img-src 'self' data: http: https:;" in response.headers["Content-Security-Policy"]


def test_event_handlers_and_active_content_are_removed(app, logged_in, mail_server):
    html_part = part(
        "Content-Type: text/html; charset=utf-8",
        body=(b'<p onclick="steal()">Hi <a href="javascript:alert(1)">x</a>'
              b'<a href="https://example.org/">ok</a></p><form action="https://evil.example/">'
              b'<input name="p"></form><iframe src="https://evil.example/"></iframe>'
              b'<img src="x" onerror="alert(2)"><svg onload="alert(3)"></svg>'
              b'<div style="background:url(https://evil.example/t.png)">bg</div>'),
    )
    message = multipart("mixed", "ev-b", html_part, headers=(
        "From: a@example.com", "Subject: handlers", "Message-ID: <handlers.1@example.com>",
        "MIME-Version: 1.0"))
    (message_id,) = deliver(app, logged_in, mail_server, message)
    body = logged_in.get(f"/message/{message_id}/body").get_data(as_text=True)
    for gone in ("onclick", "javascript:", "<form", "<input", "<iframe", "onerror", "<svg",
                 "onload", "evil.example"):
        assert gone not in body, gone
    assert '<a href="https://example.org/" target="_blank"' in body


def test_cid_image_travels_inside_the_body_document(app, logged_in, mail_server):
    """The sandboxed frame has an opaque origin and sends no session cookie, so an embedded
    image must come inside the document, not from a part URL."""
    (message_id,) = deliver(app, logged_in, mail_server, html_with_images())
    body = logged_in.get(f"/message/{message_id}/body").get_data(as_text=True)
    match = re.search(r'<img src="data:image/png;base64,([A-Za-z0-9+/=]+)"', body)
    assert match, body
    assert base64.b64decode(match.group(1)) == b"\x89PNG\r\n\x1a\nfake-image-bytes"
    # the embedded image is shown in the body, so it is not listed again as an attachment
    html = page(logged_in, f"/message/{message_id}")
    assert "image/png" not in html


def test_cid_reference_to_an_svg_part_is_dropped(app, logged_in, mail_server):
    message = multipart(
        "related", "svg-rel",
        part("Content-Type: text/html; charset=utf-8",
             body=b'<p>logo</p><img src="cid:logo@x" alt="logo">'),
        part("Content-Type: image/svg+xml", "Content-ID: <logo@x>",
             body=b'<svg xmlns="http://www.w3.org/2000/svg" onload="alert(1)"/>'),
        headers=("From: a@example.com", "Subject: svg", "Message-ID: <svgcid.1@example.com>",
                 "MIME-Version: 1.0"),
    )
    (message_id,) = deliver(app, logged_in, mail_server, message)
    body = logged_in.get(f"/message/{message_id}/body").get_data(as_text=True)
    assert "/part/" not in body and "data:image/svg" not in body
    response = logged_in.get(f"/message/{message_id}/part/2")
    assert response.headers["Content-Type"] == "application/octet-stream"
    assert response.headers["Content-Disposition"].startswith("attachment;")


def test_text_only_message_has_no_body_document(app, logged_in, mail_server):
    (message_id,) = deliver(app, logged_in, mail_server, koi8r_message())
    assert logged_in.get(f"/message/{message_id}/body").status_code == 404
    assert "<iframe" not in page(logged_in, f"/message/{message_id}")


# -- attachments ----------------------------------------------------------------------------------


def test_attachments_are_listed_with_name_type_and_size(app, logged_in, mail_server):
    (message_id,) = deliver(app, logged_in, mail_server, attachments_message())
    html = page(logged_in, f"/message/{message_id}")
    assert "3 attachments" in html
    assert "Отчёт &#34;Q1&#34;.pdf" in html
    assert "application/pdf · 15 B" in html
    assert "page.html" in html and "logo.svg" in html


def test_attachment_downloads_with_an_rfc6266_filename(app, logged_in, mail_server):
    (message_id,) = deliver(app, logged_in, mail_server, attachments_message())
    html = page(logged_in, f"/message/{message_id}")
    n = part_number(html, "Отчёт &#34;Q1&#34;.pdf")
    response = logged_in.get(f"/message/{message_id}/part/{n}")
    assert response.status_code == 200
    assert response.data == b"%PDF-1.4 report"
    assert response.headers["Content-Type"] == "application/pdf"
    disposition = response.headers["Content-Disposition"]
    assert disposition.startswith("attachment; ")
    fallback = re.search(r'filename="([^"]*)"', disposition).group(1)
    assert fallback.isascii() and fallback.endswith(".pdf") and '"' not in fallback
    encoded = re.search(r"filename\*=UTF-8''(\S+)$", disposition).group(1)
    assert urllib.parse.unquote(encoded) == 'Отчёт "Q1".pdf'
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    assert response.headers["Content-Security-Policy"] == "sandbox; default-src 'none'"


@pytest.mark.parametrize("name", ["page.html", "logo.svg"])
def test_active_attachments_are_served_as_opaque_downloads(app, logged_in, mail_server, name):
    (message_id,) = deliver(app, logged_in, mail_server, attachments_message())
    n = part_number(page(logged_in, f"/message/{message_id}"), name)
    for query in ("", "?download=1"):
        response = logged_in.get(f"/message/{message_id}/part/{n}{query}")
        assert response.status_code == 200
        assert response.headers["Content-Type"] == "application/octet-stream"
        assert response.headers["Content-Disposition"] == (
            f"attachment; filename=\"{name}\"; filename*=UTF-8''{name}")
        assert response.headers["X-Content-Type-Options"] == "nosniff"
        assert "sandbox" in response.headers["Content-Security-Policy"]


def test_bad_part_numbers_are_not_found(app, logged_in, mail_server):
    (message_id,) = deliver(app, logged_in, mail_server, attachments_message())
    assert logged_in.get(f"/message/{message_id}/part/0").status_code == 404  # the multipart
    assert logged_in.get(f"/message/{message_id}/part/99").status_code == 404
    assert logged_in.get(f"/message/{message_id}/part/-1").status_code == 404
    assert logged_in.get(f"/message/{message_id}/part/x").status_code == 404


# -- raw source -----------------------------------------------------------------------------------


def test_raw_source_is_byte_identical_to_the_servers_copy(app, logged_in, mail_server):
    message = raw("From: a@example.com", "Subject: 8bit", "Message-ID: <raw.1@example.com>",
                  "Content-Type: text/plain; charset=koi8-r",
                  "Content-Transfer-Encoding: 8bit",
                  body="Привет\r\n".encode("koi8-r") + bytes(range(128, 256)) + b"\r\n")
    (message_id,) = deliver(app, logged_in, mail_server, message)
    (served,) = [mail_server.mailboxes.read("alice", m.uid)
                 for m in mail_server.mailboxes.list("alice")]
    response = logged_in.get(f"/message/{message_id}/raw")
    assert response.status_code == 200
    assert response.data == served
    assert "Привет".encode("koi8-r") in response.data
    assert response.mimetype == "text/plain"
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    assert response.headers["Content-Disposition"].startswith('inline; filename="message.eml"')
    assert response.headers["Content-Length"] == str(len(served))

    download = logged_in.get(f"/message/{message_id}/raw?download=1")
    assert download.headers["Content-Disposition"].startswith('attachment; filename="message.eml"')
    assert download.data == served


def test_raw_source_of_a_big_message_streams_in_chunks(app, logged_in, mail_server):
    filler = (b"x" * 998 + b"\r\n") * 3000  # 3 MB
    message = raw("From: a@example.com", "Subject: big", "Message-ID: <big.1@example.com>",
                  body=filler)
    (message_id,) = deliver(app, logged_in, mail_server, message)
    response = logged_in.get(f"/message/{message_id}/raw", buffered=False)
    chunks = list(response.response)
    response.close()
    assert len(chunks) > 1
    assert b"".join(chunks).endswith(filler)


# -- delete ---------------------------------------------------------------------------------------


def test_delete_needs_post_with_a_csrf_token_and_removes_the_message(app, logged_in, mail_server):
    (message_id,) = deliver(app, logged_in, mail_server, koi8r_message())
    assert logged_in.get(f"/message/{message_id}/delete").status_code == 405
    assert logged_in.post(f"/message/{message_id}/delete").status_code == 400
    assert logged_in.get(f"/message/{message_id}").status_code == 200

    token = csrf_token(logged_in, f"/message/{message_id}")
    response = logged_in.post(f"/message/{message_id}/delete",
                              data={"csrf_token": token, "page": "2", "q": "отчёт"})
    assert response.status_code == 303
    assert response.headers["Location"] == "/inbox?page=2&q=%D0%BE%D1%82%D1%87%D1%91%D1%82"
    assert "Message deleted." in page(logged_in, "/inbox")
    assert logged_in.get(f"/message/{message_id}").status_code == 404
    assert message_id not in store_ids(app, mail_server).values()
