"""Writing and sending mail through the web app, read back from the demo server's maildrops."""

from __future__ import annotations

import email.policy
import io
import os
import re
import time
from email.message import EmailMessage
from email.parser import BytesParser
from html import unescape

import pytest
from werkzeug.datastructures import FileStorage, MultiDict
from werkzeug.test import encode_multipart

from app import create_app
from app.store import AccountKey
from tests.web.conftest import app_config, csrf_token, fetch_and_wait, log_in

DOMAIN = "demo.pochta.test"
KEEP_FIELD = re.compile(r'name="keep_attachment" value="([^"]+)"')


# -- helpers ----------------------------------------------------------------------------


def send_form(client, data: dict, files=(), *, token: str | None = None):
    """POST /compose like a browser: multipart, with the page's CSRF token and any files
    as (name, bytes) or (name, bytes, content type)."""
    form = MultiDict({"csrf_token": token or csrf_token(client, "/compose")})
    for name, value in data.items():
        for item in value if isinstance(value, list) else [value]:
            form.add(name, item)
    for name, content, *kind in files:
        form.add("attachments", FileStorage(io.BytesIO(content), name, "attachments",
                                            kind[0] if kind else None))
    # Encoded here, in memory: the test client would spool a big body to a temporary file
    # that nobody closes when the app refuses it unread (413).
    boundary, body = encode_multipart(form)
    return client.post("/compose", data=body,
                       content_type=f"multipart/form-data; boundary={boundary}")


def delivered(server, user: str) -> list[EmailMessage]:
    """Every message in a demo maildrop, oldest first, parsed by the standard library."""
    parser = BytesParser(policy=email.policy.default)
    return [parser.parsebytes(server.mailboxes.read(user, m.uid))
            for m in server.mailboxes.list(user)]


def raw_delivered(server, user: str) -> list[bytes]:
    return [server.mailboxes.read(user, m.uid) for m in server.mailboxes.list(user)]


def page_text(response) -> str:
    return unescape(response.get_data(as_text=True))


def field_value(html: str, name: str) -> str:
    match = re.search(rf'<input[^>]*name="{name}"[^>]*value="([^"]*)"', html)
    if match is None:
        match = re.search(rf'<input[^>]*value="([^"]*)"[^>]*name="{name}"', html)
    return unescape(match.group(1)) if match else ""


def textarea(html: str, name: str) -> str:
    match = re.search(rf'<textarea[^>]*name="{name}"[^>]*>\r?\n?(.*?)</textarea>', html, re.S)
    assert match, f"no textarea {name}"
    return unescape(match.group(1))


def flashes(client) -> str:
    html = client.get("/inbox").get_data(as_text=True)
    return unescape(" ".join(re.findall(r'<p class="alert [^"]*"[^>]*>(.*?)</p>', html, re.S)))


def address(user: str) -> str:
    return f"{user}@{DOMAIN}"


def original_mail(subject: str = "Вопрос о лабе", *, sender: str = "carol", to: str = "alice",
                  cc: str | None = None, message_id: str = "<orig-1@demo.pochta.test>",
                  body: str = "Когда сдавать?\nСпасибо.\n", attachment: bytes | None = None,
                  references: str | None = None) -> bytes:
    message = EmailMessage()
    message["From"] = f"Carol Кэрол <{address(sender)}>"
    message["To"] = address(to)
    if cc:
        message["Cc"] = cc
    message["Subject"] = subject
    message["Date"] = "Mon, 02 Jun 2025 10:00:00 +0000"
    message["Message-ID"] = message_id
    if references:
        message["References"] = references
    message.set_content(body)
    if attachment is not None:
        message.add_attachment(attachment, maintype="application", subtype="octet-stream",
                               filename="схема.bin")
    return message.as_bytes()


def stored_id(app, server, user: str = "alice") -> str:
    """The id of the newest message in the user's Pochta store."""
    mailbox = app.extensions["pochta.store"].mailbox(
        AccountKey("localhost", server.pop3_port, user))
    items = mailbox.page(1).items
    assert items, "nothing stored"
    return items[0].id


def receive(client, app, server, raw: bytes, user: str = "alice") -> str:
    """Deliver `raw` to the user's demo maildrop, fetch it into Pochta, return its id."""
    server.mailboxes.deliver(user, raw)
    assert fetch_and_wait(client)["state"] == "done"
    return stored_id(app, server, user)


def stash_entries(app) -> list[str]:
    root = app.extensions["pochta.store"].data_dir / "drafts"
    return sorted(p.name for p in root.glob("*/*")) if root.exists() else []


# -- the form ---------------------------------------------------------------------------


def test_compose_needs_a_login(client):
    response = client.get("/compose")
    assert response.status_code == 302
    assert response.headers["Location"].startswith("/login")


def test_form_has_labelled_fields_size_guard_and_no_inline_code(logged_in):
    response = logged_in.get("/compose")
    assert response.status_code == 200
    html = response.get_data(as_text=True)
    for name in ("to", "cc", "bcc", "subject", "body"):
        assert f'<label for="{name}"' in html
        assert f'name="{name}"' in html
    assert re.search(r'<input[^>]*multiple[^>]*name="attachments"|'
                     r'<input[^>]*name="attachments"[^>]*multiple', html)
    assert 'enctype="multipart/form-data"' in html
    assert f'data-max-bytes="{40 * 1024 * 1024}"' in html
    assert 'class="upload-note' in html
    assert 'name="csrf_token"' in html
    assert "css/compose.css" in html
    assert "Name &lt;address&gt;, comma-separated" in html
    assert " style=" not in html
    assert "<script>" not in html and "onclick" not in html


# -- sending ----------------------------------------------------------------------------


def test_cyrillic_subject_and_attachments_reach_bob_and_bcc_stays_hidden(
    logged_in, mail_server
):
    pdf = os.urandom(30_000)
    text = "Привет, Боб!\n".encode()
    response = send_form(logged_in, {
        "to": f"Боб Бобров <{address('bob')}>",
        "bcc": address("carol"),
        "subject": "Отчёт по лабораторной №3",
        "body": "Привет!\r\nОтчёт во вложении.\r\n",
    }, [("отчёт.pdf", pdf, "application/pdf"), ("notes.txt", text, "text/plain")])
    assert response.status_code == 303
    assert response.headers["Location"] == "/inbox"

    [message] = delivered(mail_server, "bob")
    assert message["Subject"] == "Отчёт по лабораторной №3"
    assert message["From"].addresses[0].addr_spec == address("alice")
    assert message["To"].addresses[0].addr_spec == address("bob")
    assert message["To"].addresses[0].display_name == "Боб Бобров"
    assert message["Date"] is not None and message["Date"].datetime is not None
    assert re.fullmatch(r"<[^<>@\s]+@[^<>@\s]+>", message["Message-ID"])
    assert message["Bcc"] is None
    assert all("carol" not in str(value) for value in message.values())
    assert message.get_body(("plain",)).get_content() == "Привет!\r\nОтчёт во вложении.\r\n"
    files = {part.get_filename(): part for part in message.iter_attachments()}
    assert set(files) == {"отчёт.pdf", "notes.txt"}
    assert files["отчёт.pdf"].get_content() == pdf
    assert files["отчёт.pdf"].get_content_type() == "application/pdf"
    assert files["notes.txt"].get_payload(decode=True) == text

    [copy] = delivered(mail_server, "carol")
    assert copy["Message-ID"] == message["Message-ID"]
    assert copy["Bcc"] is None and "carol" not in copy["To"]

    shown = flashes(logged_in)
    assert f"Message sent to {address('bob')}, {address('carol')}." in shown


def test_bcc_only_message_gets_undisclosed_recipients(logged_in, mail_server):
    response = send_form(logged_in, {"bcc": address("bob"), "subject": "s", "body": "b"})
    assert response.status_code == 303
    [raw] = raw_delivered(mail_server, "bob")
    headers = raw.split(b"\r\n\r\n", 1)[0]
    assert b"\r\nTo: undisclosed-recipients:;" in headers
    assert b"\r\nBcc" not in headers


def test_partial_failure_names_the_accepted_and_the_refused(logged_in, mail_server):
    response = send_form(logged_in, {
        "to": f"{address('bob')}, Никто <nobody@{DOMAIN}>",
        "cc": "Анна <anna@пример.рф>",
        "subject": "partial", "body": "hi",
    })
    assert response.status_code == 303
    assert len(delivered(mail_server, "bob")) == 1
    shown = flashes(logged_in)
    assert f"Message sent to {address('bob')}." in shown
    assert f"The server refused: nobody@{DOMAIN} (550 5.1.1" in shown
    assert "User unknown" in shown
    assert "anna@пример.рф (550 5.7.1" in shown  # shown as typed, not as punycode


def test_every_recipient_refused_keeps_the_form_and_the_files(logged_in, mail_server, app):
    data = {
        "to": f"Никто <nobody@{DOMAIN}>",
        "cc": f"ghost@{DOMAIN}",
        "bcc": f"phantom@{DOMAIN}",
        "subject": "Не потеряй меня",
        "body": "Длинный текст,\r\nкоторый жалко потерять.",
    }
    pdf = os.urandom(5000)
    response = send_form(logged_in, data, [("план.pdf", pdf)])
    assert response.status_code == 502
    html = page_text(response)
    assert "The server refused every recipient, so the message was not sent:" in html
    assert f"nobody@{DOMAIN}" in html and f"ghost@{DOMAIN}" in html and "550 5.1.1" in html
    assert field_value(html, "to") == data["to"]
    assert field_value(html, "cc") == data["cc"]
    assert field_value(html, "bcc") == data["bcc"]
    assert field_value(html, "subject") == data["subject"]
    assert textarea(html, "body").replace("\r\n", "\n") == data["body"].replace("\r\n", "\n")
    assert "Show the protocol log" in html and "RCPT TO:" in html
    assert "план.pdf" in html
    [token] = KEEP_FIELD.findall(html)
    assert len(stash_entries(app)) == 1

    # Sending again with the kept file (no new upload) delivers it, then forgets it.
    response = send_form(logged_in, {**data, "to": address("bob"), "cc": "", "bcc": "",
                                     "keep_attachment": token, "offered_attachment": token})
    assert response.status_code == 303
    [message] = delivered(mail_server, "bob")
    [part] = message.iter_attachments()
    assert part.get_filename() == "план.pdf" and part.get_content() == pdf
    assert stash_entries(app) == []


def test_stopped_smtp_server_keeps_everything_and_explains(logged_in, mail_server):
    mail_server.stop()
    response = send_form(logged_in, {"to": address("bob"), "subject": "offline",
                                     "body": "typed"}, [("a.txt", b"abc")])
    assert response.status_code == 502
    html = page_text(response)
    assert "Cannot connect to the SMTP server" in html
    assert field_value(html, "subject") == "offline"
    assert textarea(html, "body") == "typed"
    assert len(KEEP_FIELD.findall(html)) == 1


def test_unticked_kept_file_is_left_out_and_deleted(logged_in, mail_server, app):
    response = send_form(logged_in, {"to": f"nobody@{DOMAIN}", "subject": "s", "body": "b"},
                         [("one.txt", b"1"), ("two.txt", b"2")])
    first, second = KEEP_FIELD.findall(response.get_data(as_text=True))
    response = send_form(logged_in, {"to": address("bob"), "subject": "s", "body": "b",
                                     "keep_attachment": second,
                                     "offered_attachment": [first, second]})
    assert response.status_code == 303
    [message] = delivered(mail_server, "bob")
    assert [p.get_filename() for p in message.iter_attachments()] == ["two.txt"]
    assert stash_entries(app) == []


def test_another_accounts_kept_file_cannot_be_used(client, mail_server, app):
    log_in(client, mail_server, "alice")
    response = send_form(client, {"to": f"nobody@{DOMAIN}", "subject": "s", "body": "b"},
                         [("secret.txt", b"alice's secret")])
    [token] = KEEP_FIELD.findall(response.get_data(as_text=True))
    other = app.test_client()
    log_in(other, mail_server, "bob")
    response = send_form(other, {"to": address("carol"), "subject": "s", "body": "b",
                                 "keep_attachment": token, "offered_attachment": token})
    assert response.status_code == 400
    html = page_text(response)
    assert "1 of the files kept for this message is no longer on the server" in html
    assert "secret.txt" not in html
    assert delivered(mail_server, "carol") == []
    assert len(stash_entries(app)) == 1  # bob could not discard it either


def test_a_second_click_on_send_does_not_send_without_the_files(logged_in, mail_server):
    response = send_form(logged_in, {"to": f"nobody@{DOMAIN}", "subject": "s", "body": "b"},
                         [("a.txt", b"a")])
    [token] = KEEP_FIELD.findall(response.get_data(as_text=True))
    again = {"to": address("bob"), "subject": "s", "body": "b",
             "keep_attachment": token, "offered_attachment": token}
    assert send_form(logged_in, again).status_code == 303
    response = send_form(logged_in, again)
    assert response.status_code == 400
    assert "no longer on the server" in page_text(response)
    assert field_value(page_text(response), "subject") == "s"
    assert len(delivered(mail_server, "bob")) == 1


# -- what may not pass ------------------------------------------------------------------


def test_line_break_in_subject_is_a_field_error(logged_in, mail_server):
    response = send_form(logged_in, {"to": address("bob"),
                                     "subject": "Hi\r\nBcc: evil@example.org", "body": "b"})
    assert response.status_code == 400
    assert "The subject may not contain line breaks" in page_text(response)
    assert delivered(mail_server, "bob") == []


def test_line_break_in_a_display_name_is_a_field_error(logged_in, mail_server):
    response = send_form(logged_in, {
        "to": f'"Bob\r\nX-Injected: yes" <{address("bob")}>', "subject": "s", "body": "b"})
    assert response.status_code == 400
    html = page_text(response)
    assert 'id="to-error"' in html and "contains a line break" in html
    assert delivered(mail_server, "bob") == []


def test_line_breaks_in_a_file_name_add_no_header(logged_in, mail_server):
    # Browsers escape CR and LF in a multipart file name; these other line breaks (those
    # Python's str.splitlines() knows) reach the server as they are.
    name = "evil\u2028X-One: 1\x0bX-Two: 2\x85X-Three: 3\x1cX-Four: 4\x00.txt"
    response = send_form(logged_in, {"to": address("bob"), "subject": "s", "body": "b"},
                         [(name, b"data")])
    assert response.status_code == 303
    [raw] = raw_delivered(mail_server, "bob")
    assert not re.search(rb"(?im)^X-(One|Two|Three|Four)", raw)
    [message] = delivered(mail_server, "bob")
    for part in message.walk():
        assert all(part[h] is None for h in ("X-One", "X-Two", "X-Three", "X-Four"))
    [part] = message.iter_attachments()
    assert part.get_filename() == "evil X-One: 1 X-Two: 2 X-Three: 3 X-Four: 4 .txt"
    assert part.get_payload(decode=True) == b"data"


def test_invalid_address_is_a_field_error_naming_it(logged_in, mail_server):
    response = send_form(logged_in, {"to": f"{address('bob')}, not-an-address",
                                     "cc": "x@-bad-.example", "subject": "s", "body": "b"})
    assert response.status_code == 400
    html = page_text(response)
    to_error = re.search(r'id="to-error"[^>]*>(.*?)</small>', html, re.S).group(1)
    assert "not-an-address" in to_error
    cc_error = re.search(r'id="cc-error"[^>]*>(.*?)</small>', html, re.S).group(1)
    assert "-bad-.example" in cc_error
    assert 'aria-invalid="true"' in html
    assert field_value(html, "to") == f"{address('bob')}, not-an-address"
    assert delivered(mail_server, "bob") == []


def test_no_recipient_at_all_is_a_field_error(logged_in):
    response = send_form(logged_in, {"to": " ", "subject": "s", "body": "b"})
    assert response.status_code == 400
    assert "Add at least one recipient" in page_text(response)


def test_idn_and_quoted_names_are_accepted(logged_in, mail_server):
    response = send_form(logged_in, {
        "to": f'"Бобров, Боб" <{address("bob")}>, Анна <anna@пример.рф>',
        "subject": "s", "body": "b"})
    assert response.status_code == 303  # anna is refused (relay), bob gets it
    [message] = delivered(mail_server, "bob")
    names = {a.addr_spec: a.display_name for a in message["To"].addresses}
    assert names[address("bob")] == "Бобров, Боб"
    assert names["anna@xn--e1afmkfd.xn--p1ai"] == "Анна"


def test_post_without_csrf_token_is_refused(logged_in, mail_server):
    response = logged_in.post("/compose", data={"to": address("bob"), "subject": "s"})
    assert response.status_code == 400
    assert delivered(mail_server, "bob") == []


# -- size limits ------------------------------------------------------------------------


@pytest.fixture
def small_app(tmp_path, mail_server):
    application = create_app(app_config(tmp_path, mail_server,
                                        POCHTA_MAX_MESSAGE_BYTES="200000"))
    yield application
    application.extensions["pochta.store"].close()


def test_upload_over_the_request_limit_is_413(small_app, mail_server):
    client = small_app.test_client()
    log_in(client, mail_server)
    assert small_app.config["MAX_CONTENT_LENGTH"] < 1_300_000
    response = send_form(client, {"to": address("bob"), "subject": "big"},
                         [("big.bin", os.urandom(1_300_000))])
    assert response.status_code == 413
    assert delivered(mail_server, "bob") == []


def test_message_over_the_limit_is_a_form_error_with_files_kept(small_app, mail_server):
    client = small_app.test_client()
    log_in(client, mail_server)
    html = client.get("/compose").get_data(as_text=True)
    assert 'data-max-bytes="200000"' in html
    # 300 KB of files: refused before building.
    response = send_form(client, {"to": address("bob"), "subject": "big", "body": "b"},
                         [("big.bin", os.urandom(300_000))])
    assert response.status_code == 400
    text = page_text(response)
    assert "The message would be 293 KB, and the limit is 195 KB." in text
    assert len(KEEP_FIELD.findall(text)) == 1
    # 160 KB grows past 200,000 bytes in base64: refused after building.
    response = send_form(client, {"to": address("bob"), "subject": "big", "body": "b"},
                         [("mid.bin", os.urandom(160_000))])
    assert response.status_code == 400
    assert "and the limit is 195 KB" in page_text(response)
    assert delivered(mail_server, "bob") == []


# -- reply and forward ------------------------------------------------------------------


def test_reply_is_prefilled_and_threads_the_sent_message(logged_in, mail_server, app):
    message_id = receive(logged_in, app, mail_server, original_mail(
        references="<root@demo.pochta.test>"))
    response = logged_in.get(f"/compose?reply={message_id}")
    assert response.status_code == 200
    html = page_text(response)
    assert field_value(html, "to") == f"Carol Кэрол <{address('carol')}>"
    assert field_value(html, "cc") == ""
    assert field_value(html, "subject") == "Re: Вопрос о лабе"
    body = textarea(html, "body")
    assert "> Когда сдавать?\n> Спасибо." in body
    assert field_value(html, "reply_to_id") == message_id

    response = send_form(logged_in, {"to": field_value(html, "to"),
                                     "subject": field_value(html, "subject"),
                                     "body": "Завтра.\n" + body,
                                     "reply_to_id": message_id})
    assert response.status_code == 303
    [sent] = delivered(mail_server, "carol")
    assert sent["In-Reply-To"] == "<orig-1@demo.pochta.test>"
    assert sent["References"].split() == ["<root@demo.pochta.test>",
                                          "<orig-1@demo.pochta.test>"]
    assert sent["Subject"] == "Re: Вопрос о лабе"
    assert "> Когда сдавать?" in sent.get_body(("plain",)).get_content()


def test_reply_all_copies_everyone_but_me(logged_in, mail_server, app):
    message_id = receive(logged_in, app, mail_server, original_mail(
        cc=f"Bob <{address('bob')}>, {address('alice')}"))
    html = page_text(logged_in.get(f"/compose?reply={message_id}&all=1"))
    assert field_value(html, "to") == f"Carol Кэрол <{address('carol')}>"
    assert field_value(html, "cc") == f"Bob <{address('bob')}>"
    plain = page_text(logged_in.get(f"/compose?reply={message_id}"))
    assert field_value(plain, "cc") == ""


def test_forward_inline_quotes_the_original_and_its_files(logged_in, mail_server, app):
    blob = os.urandom(2000)
    message_id = receive(logged_in, app, mail_server, original_mail(attachment=blob))
    html = page_text(logged_in.get(f"/compose?forward={message_id}"))
    assert field_value(html, "subject") == "Fwd: Вопрос о лабе"
    assert field_value(html, "forward_id") == message_id
    body = textarea(html, "body")
    assert "---------- Forwarded message ----------" in body and "Когда сдавать?" in body
    assert re.search(r'name="forward_mode"[^>]*value="inline"[^>]*checked|'
                     r'checked[^>]*name="forward_mode"[^>]*value="inline"', html)
    assert "схема.bin" in html

    response = send_form(logged_in, {"to": address("bob"), "subject": "Fwd: Вопрос о лабе",
                                     "body": "Смотри ниже." + body, "forward_id": message_id,
                                     "forward_mode": "inline", "forward_attachments": "y"})
    assert response.status_code == 303
    [sent] = delivered(mail_server, "bob")
    text = sent.get_body(("plain",)).get_content()
    assert text.startswith("Смотри ниже.") and "Когда сдавать?" in text
    assert text.count("---------- Forwarded message ----------") == 1
    [part] = sent.iter_attachments()
    assert part.get_filename() == "схема.bin" and part.get_content() == blob
    assert sent["In-Reply-To"] is None


def test_forward_inline_without_the_quote_in_the_text_appends_it(logged_in, mail_server, app):
    message_id = receive(logged_in, app, mail_server, original_mail())
    response = send_form(logged_in, {"to": address("bob"), "subject": "Fwd", "body": "FYI",
                                     "forward_id": message_id, "forward_mode": "inline"})
    assert response.status_code == 303
    [sent] = delivered(mail_server, "bob")
    text = sent.get_body(("plain",)).get_content()
    assert text.startswith("FYI") and "Когда сдавать?" in text


def test_a_stray_forward_mode_without_a_forward_is_ignored(logged_in, mail_server):
    response = send_form(logged_in, {"to": address("bob"), "subject": "s", "body": "b",
                                     "forward_mode": "bogus"})
    assert response.status_code == 303
    assert len(delivered(mail_server, "bob")) == 1


def test_forward_as_attachment_carries_the_original_message(logged_in, mail_server, app):
    message_id = receive(logged_in, app, mail_server, original_mail(attachment=b"x" * 100))
    html = page_text(logged_in.get(f"/compose?forward={message_id}&mode=attachment"))
    assert textarea(html, "body") == ""
    response = send_form(logged_in, {"to": address("bob"), "subject": "Fwd: Вопрос о лабе",
                                     "body": "see attached", "forward_id": message_id,
                                     "forward_mode": "attachment"})
    assert response.status_code == 303
    [sent] = delivered(mail_server, "bob")
    [part] = sent.iter_attachments()
    assert part.get_content_type() == "message/rfc822"
    inner = part.get_content()
    assert inner["Subject"] == "Вопрос о лабе"
    assert inner["Message-ID"] == "<orig-1@demo.pochta.test>"
    assert "Когда сдавать?" not in sent.get_body(("plain",)).get_content()


def test_another_accounts_message_cannot_be_answered_or_forwarded(client, mail_server, app):
    bob = app.test_client()
    log_in(bob, mail_server, "bob")
    bobs_id = receive(bob, app, mail_server,
                      original_mail("Секрет Боба", to="bob"), user="bob")
    log_in(client, mail_server, "alice")
    assert client.get(f"/compose?reply={bobs_id}").status_code == 404
    assert client.get(f"/compose?reply={bobs_id}&all=1").status_code == 404
    assert client.get(f"/compose?forward={bobs_id}").status_code == 404
    assert client.get("/compose?reply=no-such-id").status_code == 404
    response = send_form(client, {"to": address("carol"), "subject": "s", "body": "b",
                                  "forward_id": bobs_id, "forward_mode": "attachment"})
    assert response.status_code == 400
    html = page_text(response)
    assert "no longer stored" in html and "Секрет Боба" not in html
    assert field_value(html, "forward_id") == ""
    assert delivered(mail_server, "carol") == []
    # Sending again sends it as typed, without anything of bob's.
    response = send_form(client, {"to": address("carol"), "subject": "s", "body": "b"})
    assert response.status_code == 303
    [sent] = delivered(mail_server, "carol")
    assert list(sent.iter_attachments()) == []


# -- the log ----------------------------------------------------------------------------


def test_sends_appear_on_the_protocol_log(logged_in, mail_server):
    send_form(logged_in, {"to": f"nobody@{DOMAIN}", "subject": "s", "body": "b"})
    send_form(logged_in, {"to": address("bob"), "subject": "s", "body": "b"})
    text = logged_in.get("/log?format=text").get_data(as_text=True)
    records = re.findall(r"^# send \S+ (ok|failed)$", text, re.M)
    assert records == ["ok", "failed"]
    assert f"RCPT TO:<{address('bob')}>" in text
    assert "alice-pw" not in text


# -- memory and housekeeping ------------------------------------------------------------


def test_twenty_megabyte_attachment_is_not_held_twice_while_sending(
    logged_in, mail_server, monkeypatch
):
    import tracemalloc

    import app.web.compose as compose_view

    size = 20 * 1024 * 1024
    real_send = compose_view.send
    seen = {}

    def measuring_send(account, password, settings, outgoing):
        seen["current"], seen["peak"] = tracemalloc.get_traced_memory()
        tracemalloc.stop()  # the demo server in this process receives the message next
        seen["size"] = len(outgoing.data)
        return real_send(account, password, settings, outgoing)

    monkeypatch.setattr(compose_view, "send", measuring_send)
    token = csrf_token(logged_in, "/compose")
    form = MultiDict({"csrf_token": token, "to": address("bob"), "subject": "big"})
    form.add("attachments", FileStorage(io.BytesIO(os.urandom(size)), "big.bin"))
    boundary, body = encode_multipart(form)
    del form
    tracemalloc.start()
    try:
        response = logged_in.post("/compose", data=body,
                                  content_type=f"multipart/form-data; boundary={boundary}")
    finally:
        tracemalloc.stop()
    assert response.status_code == 303
    # While sending, only the finished message (base64: 4/3 of the file) is alive: the
    # upload went to disk in chunks and the file's bytes were dropped after building.
    assert seen["size"] > 1.3 * size
    assert seen["current"] < 1.6 * size
    assert seen["peak"] < 7 * size
    [raw] = raw_delivered(mail_server, "bob")
    assert len(raw) > 1.3 * size


def test_expired_kept_files_are_swept(logged_in, mail_server, app):
    response = send_form(logged_in, {"to": f"nobody@{DOMAIN}", "subject": "s", "body": "b"},
                         [("old.txt", b"old")])
    assert response.status_code == 502
    [entry] = (app.extensions["pochta.store"].data_dir / "drafts").glob("*/*")
    day_ago = time.time() - 25 * 3600
    os.utime(entry, (day_ago, day_ago))
    app.extensions["pochta.compose_sweep"]["at"] -= 3600  # the last sweep was long ago
    send_form(logged_in, {"to": "", "subject": "s"})
    assert not entry.exists()
