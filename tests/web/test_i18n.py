"""The interface in English and Russian: every page, error, flash message and date.

Each page is rendered in Russian and read as a person reads it (text, plus the attributes a
browser shows or speaks); once the data the test put in is taken out (Cyrillic messages,
addresses, host names, the server's own words), no English word may be left. The same page
in English must show the English original, so the check fails both ways.
"""

from __future__ import annotations

import io
import re
import time
from html.parser import HTMLParser

import pytest
from flask import abort
from werkzeug.datastructures import FileStorage, MultiDict
from werkzeug.test import encode_multipart

from app import create_app
from app.store import AccountKey
from app.web.extensions import server_timezone
from tests.messages.samples import multipart, part, raw
from tests.test_translations import LATIN_ALLOWED, catalogue, latin_words
from tests.web.conftest import app_config, csrf_token, log_in, post_form

# Data of the test setup, not words of the interface: the user name (shown in a tooltip)
# and the mail servers' host.
SETUP_WORDS = {"alice", "localhost"}
SHOWN_ATTRIBUTES = ("title", "aria-label", "placeholder", "alt", "data-confirm", "data-format")
SKIPPED_TAGS = {"script", "style", "pre", "code"}  # protocol dialogue, header syntax
SKIPPED_CLASSES = {"header-fields"}  # the message's own header fields, verbatim
VOID_TAGS = {"area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta",
             "source", "track", "wbr"}
QUOTED = re.compile(r"«[^»]*»")  # what someone else said (a server, the user's own input)


class _Reader(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []
        self.open: list[tuple[str, bool]] = []

    def _skipping(self) -> bool:
        return any(skip for _tag, skip in self.open)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        values = {name: value or "" for name, value in attrs}
        skip = tag in SKIPPED_TAGS or bool(set(values.get("class", "").split()) & SKIPPED_CLASSES)
        if not skip and not self._skipping():
            shown = [name for name in SHOWN_ATTRIBUTES if values.get(name)]
            if tag == "time":  # its tooltip is the Date field as the sender's program wrote it
                shown = [name for name in shown if name != "title"]
            self.parts += [values[name] for name in shown]
            if tag == "input" and values.get("type") in ("submit", "button"):
                self.parts.append(values.get("value", ""))
        if tag not in VOID_TAGS:
            self.open.append((tag, skip))

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.handle_starttag(tag, attrs)

    def handle_endtag(self, tag: str) -> None:
        for index in range(len(self.open) - 1, -1, -1):
            if self.open[index][0] == tag:
                del self.open[index:]
                return

    def handle_data(self, data: str) -> None:
        if not self._skipping():
            self.parts.append(data)


def visible_text(html: str) -> str:
    """What a person reads or hears on the page, white space collapsed."""
    reader = _Reader()
    reader.feed(html)
    reader.close()
    return re.sub(r"\s+", " ", " ".join(reader.parts))


def english_left(html: str, data: set[str] = frozenset()) -> set[str]:
    return latin_words(QUOTED.sub(" ", visible_text(html)), LATIN_ALLOWED | SETUP_WORDS | data)


def russian_sentences() -> list[str]:
    """The Russian translations of two words or more (placeholders aside), to be sure an
    English page shows none of them."""
    found = []
    for message in catalogue("ru"):
        for form in (message.string if message.pluralizable else (message.string,)):
            if not message.id:
                continue
            for piece in re.split(r"%\(\w+\)s|«|»", form):
                piece = piece.strip(" .,:;—()")
                if len(piece.split()) >= 2:
                    found.append(piece)
    return found


RUSSIAN = russian_sentences()


def in_language(client, language: str) -> None:
    client.environ_base["HTTP_ACCEPT_LANGUAGE"] = language


def render(client, language: str, url: str, status: int = 200, *, post: dict | None = None,
           files: tuple[tuple[str, bytes], ...] = ()) -> str:
    in_language(client, language)
    response = client.get(url) if post is None else _post(client, url, post, files)
    assert response.status_code == status, (url, language, response.status_code)
    return response.get_data(as_text=True)


def _post(client, url: str, data: dict, files: tuple[tuple[str, bytes], ...]):
    form = MultiDict({"csrf_token": csrf_token(client, "/compose" if url == "/compose" else
                                               "/login")})
    for name, value in data.items():
        form.add(name, value)
    for name, content in files:
        form.add("attachments", FileStorage(io.BytesIO(content), name, "attachments"))
    boundary, body = encode_multipart(form)
    return client.post(url, data=body, content_type=f"multipart/form-data; boundary={boundary}")


def check_russian(client, url: str, russian: str, *, status: int = 200,
                  data: set[str] = frozenset(), post: dict | None = None,
                  files: tuple[tuple[str, bytes], ...] = ()) -> str:
    """The page in Russian shows `russian` and has no English left; its HTML."""
    html = render(client, "ru", url, status, post=post, files=files)
    text = visible_text(html)
    assert '<html lang="ru">' in html
    assert russian in text, (url, text)
    assert not english_left(html, set(data)), (url, english_left(html, set(data)), text)
    return html


def check_page(client, url: str, english: str, russian: str, *, status: int = 200,
               data: set[str] = frozenset(), post: dict | None = None,
               files: tuple[tuple[str, bytes], ...] = ()) -> str:
    """`check_russian`, and in English the page shows `english` and no Russian sentence of
    the interface. The Russian page's HTML."""
    html = check_russian(client, url, russian, status=status, data=data, post=post,
                         files=files)
    english_html = render(client, "en", url, status, post=post, files=files)
    english_text = visible_text(english_html)
    assert english in english_text, (url, english_text)
    leaked = [sentence for sentence in RUSSIAN if sentence in english_text]
    assert not leaked, (url, leaked)
    in_language(client, "ru")
    return html


# -- mail to show ---------------------------------------------------------------------------


def report_message() -> bytes:
    return raw(
        "Received: from mail.example.ru (mail.example.ru [192.0.2.1])",
        " by mx.pochta.test with ESMTPS id 4F2; Tue, 12 Mar 2024 10:15:02 +0300",
        "Received: from laptop.example.ru (laptop.example.ru [192.0.2.7])",
        " by mail.example.ru with ESMTPSA; Tue, 12 Mar 2024 10:15:00 +0300",
        "Authentication-Results: mx.pochta.test; spf=pass smtp.mailfrom=example.ru;",
        " dkim=pass header.d=example.ru; dmarc=pass header.from=example.ru",
        "DKIM-Signature: v=1; a=rsa-sha256; d=example.ru; s=sel; h=from; bh=x; b=y",
        "From: =?utf-8?b?0JjQstCw0L0g0J/QtdGC0YDQvtCy?= <ivan@example.ru>",
        "To: alice@demo.pochta.test",
        "Subject: =?utf-8?b?0J7RgtGH0ZHRgiDQt9CwINC80LDRgNGC?=",
        "Date: Tue, 12 Mar 2024 10:15:00 +0300",
        "Message-ID: <report.1@example.ru>",
        "MIME-Version: 1.0",
        "Content-Type: text/plain; charset=utf-8",
        "Content-Transfer-Encoding: 8bit",
        body="Добрый день!\r\nОтчёт во вложении.\r\n".encode(),
    )


def html_message() -> bytes:
    html = ('<p>Смотрите <b>картинку</b>:</p><img src="https://tracker.example.com/p.gif">'
            ).encode()
    return raw(
        "From: ivan@example.ru", "Subject: =?utf-8?b?0JrQsNGA0YLQuNC90LrQsA==?=",
        "Date: Wed, 13 Mar 2024 09:00:00 +0300", "Message-ID: <html.1@example.ru>",
        "MIME-Version: 1.0", "Content-Type: text/html; charset=utf-8",
        "Content-Transfer-Encoding: 8bit", body=html,
    )


def files_message() -> bytes:
    return multipart(
        "mixed", "files-boundary",
        part("Content-Type: text/plain; charset=utf-8", "Content-Transfer-Encoding: 8bit",
             body="Файлы во вложении.".encode()),
        part("Content-Type: application/pdf",
             "Content-Disposition: attachment; filename*=utf-8''%D0%BE%D1%82%D1%87%D1%91%D1%82.pdf",
             body=b"%PDF-1.4"),
        part("Content-Type: text/plain",
             "Content-Disposition: attachment; filename*=utf-8''%D1%81%D0%BC%D0%B5%D1%82%D0%B0.txt",
             body=b"1;2;3"),
        headers=("From: ivan@example.ru", "Subject: =?utf-8?b?0KTQsNC50LvRiw==?=",
                 "Date: Thu, 14 Mar 2024 09:00:00 +0300", "Message-ID: <files.1@example.ru>",
                 "MIME-Version: 1.0"),
    )


def deep_message() -> bytes:
    inner = part("Content-Type: text/plain; charset=utf-8", body="дно".encode())
    for level in reversed(range(60)):
        inner = multipart("mixed", f"b{level}", inner)
    return (b"From: ivan@example.ru\r\nSubject: =?utf-8?b?0JPQu9GD0LHQvtC60L4=?=\r\n"
            b"Date: Fri, 15 Mar 2024 09:00:00 +0300\r\nMessage-ID: <deep.1@example.ru>\r\n"
            + inner)


def anonymous_message() -> bytes:
    return raw("Message-ID: <anonymous.1@example.ru>", "Content-Type: text/plain; charset=utf-8",
               "Content-Transfer-Encoding: 8bit", body="Без подписи.".encode())


def start_fetch(client) -> str:
    token = csrf_token(client, "/inbox")
    response = client.post("/fetch", data={"csrf_token": token},
                           headers={"Accept": "application/json"})
    assert response.status_code == 202
    return response.get_json()["job"]


def fetched(client, timeout: float = 15.0) -> tuple[str, dict]:
    """Start a fetch, wait for it to end: its id and final state."""
    job = start_fetch(client)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        state = client.get(f"/fetch/{job}").get_json()
        if state["state"] != "running":
            return job, state
        time.sleep(0.05)
    raise AssertionError("fetch did not end")


def store_ids(app, server) -> dict[str, str]:
    key = AccountKey("localhost", server.pop3_port, "alice")
    items = app.extensions["pochta.store"].mailbox(key).page(1, 500).items
    return {item.message_id.strip("<>"): item.id for item in items}


@pytest.fixture
def mailbox(app, logged_in, mail_server):
    """Alice's mail, fetched: the Message-ID of each sample -> its id in the store."""
    for message in (report_message(), html_message(), files_message(), deep_message(),
                    anonymous_message()):
        mail_server.mailboxes.deliver("alice", message)
    _job, state = fetched(logged_in)
    assert state["state"] == "done" and state["new"] == 5, state
    return store_ids(app, mail_server)


# -- choosing the language ------------------------------------------------------------------


def test_without_accept_language_the_interface_is_english(client):
    html = client.get("/login").get_data(as_text=True)
    assert '<html lang="en">' in html and "Log in to your mail" in html


def test_the_browsers_accept_language_chooses_russian(client):
    html = client.get("/login", headers={"Accept-Language": "ru-RU,ru;q=0.9,en;q=0.8"})
    assert "Вход в почту" in html.get_data(as_text=True)
    html = client.get("/login", headers={"Accept-Language": "de,en;q=0.5"})
    assert "Log in to your mail" in html.get_data(as_text=True)


def test_the_chosen_language_is_remembered_in_the_session(client):
    in_language(client, "ru")
    response = post_form(client, "/language", {"lang": "en", "next": "/login"}, page="/login")
    assert response.status_code == 303
    for _ in range(3):
        assert "Log in to your mail" in client.get("/login").get_data(as_text=True)
    post_form(client, "/language", {"lang": "ru", "next": "/login"}, page="/login")
    in_language(client, "en")
    assert "Вход в почту" in client.get("/login").get_data(as_text=True)


def test_the_language_survives_login_and_logout(client, mail_server):
    post_form(client, "/language", {"lang": "ru", "next": "/login"}, page="/login")
    log_in(client, mail_server)
    assert "Получить почту" in client.get("/inbox").get_data(as_text=True)
    response = post_form(client, "/logout", {}, page="/inbox")
    assert response.status_code == 303
    assert "Вход в почту" in client.get("/login").get_data(as_text=True)


# -- every page, in both languages ----------------------------------------------------------


def test_login_pages(client, mail_server):
    check_page(client, "/login", "Log in to your mail", "Вход в почту")
    # WTForms' own messages come in the user's language too.
    check_page(client, "/login", "This field is required.", "Обязательное поле.", status=400,
               post={"email": "", "password": ""})
    form = {"email": "кто-то", "password": "x", "pop3_host": "localhost",
            "pop3_port": str(mail_server.pop3_port), "pop3_security": "tls",
            "smtp_host": "localhost", "smtp_port": str(mail_server.smtp_port),
            "smtp_security": "starttls"}
    check_page(client, "/login", "is not an e-mail address", "не адрес электронной почты",
               status=400, post=form)
    check_page(client, "/login", "Enter a host name such as", "Введите имя хоста",
               status=400, post={**form, "email": mail_server.address("alice"),
                                 "pop3_host": "плохой хост"})
    wrong = {**form, "email": mail_server.address("alice"), "username": "alice"}
    check_page(client, "/login", "did not accept the user name or password",
               "не принял имя пользователя или пароль", status=403, post=wrong)


def test_inbox_pages_and_fetch_states(app, logged_in, mail_server):
    client = logged_in
    check_page(client, "/inbox", "No messages here yet.", "Здесь пока нет сообщений.")
    store = app.extensions["pochta.store"]
    key = AccountKey("localhost", mail_server.pop3_port, "alice")
    running, _created = store.start_job(key)
    html = check_page(client, f"/inbox?job={running}", "Getting mail…", "Получение почты…")
    assert 'data-format="{done} из {total}"' in html
    store.finish_job(running, error=None, failed=True)
    check_page(client, f"/inbox?job={running}", "Getting mail failed.",
               "Не удалось получить почту.")

    for n in range(51):
        mail_server.mailboxes.deliver("alice", raw(
            "From: =?utf-8?b?0JDQvdC90LA=?= <anna@example.ru>",
            f"Subject: =?utf-8?b?0J/QuNGB0YzQvNC+?= {n}",
            f"Date: Mon, 11 Mar 2024 {n // 60:02d}:{n % 60:02d}:00 +0300",
            f"Message-ID: <many.{n}@example.ru>",
            "Content-Type: text/plain; charset=utf-8", "Content-Transfer-Encoding: 8bit",
            body="Привет.".encode()))
    in_language(client, "ru")
    job, state = fetched(client)
    assert state["new"] == 51
    check_page(client, f"/inbox?job={job}", "Done: 51 new messages.",
               "Готово: 51 новое сообщение.")
    check_page(client, "/inbox", "Page 1 of 2", "Страница 1 из 2")
    check_page(client, "/inbox?page=2", "Newer", "Новее")
    check_page(client, "/inbox?q=Письмо+7", "match", "По запросу")
    check_page(client, "/inbox?q=Ничего", "Nothing matches your search.", "Ничего не найдено.")


def test_a_fetch_problem_is_reported_in_the_language_of_the_request(tmp_path, mail_server):
    app = create_app(app_config(tmp_path, mail_server, POCHTA_MAX_MESSAGE_BYTES="2000"))
    try:
        client = app.test_client()
        log_in(client, mail_server)
        mail_server.mailboxes.deliver("alice", raw(
            "From: ivan@example.ru", "Message-ID: <big.1@example.ru>",
            "Content-Type: text/plain; charset=utf-8", body=b"x" * 5000))
        in_language(client, "ru")
        job, state = fetched(client)
        assert "больше предела" in state["error"], state
        # The job's text was written in the language of the request that started it.
        html = check_russian(client, f"/inbox?job={job}", "Готово: 0 новых сообщений.")
        assert "оно остаётся на сервере" in visible_text(html)
    finally:
        app.extensions["pochta.store"].close()


def test_a_failed_connection_is_explained_in_russian(logged_in, mail_server):
    in_language(logged_in, "ru")
    mail_server.stop()
    _job, state = fetched(logged_in)
    assert state["state"] == "failed"
    assert state["error"].startswith("Не удаётся подключиться к серверу POP3"), state


def test_message_pages(logged_in, mailbox):
    client = logged_in
    report = mailbox["report.1@example.ru"]
    html = check_page(client, f"/message/{report}", "Reply all", "Ответить всем")
    assert "12 мар. 2024 г." in visible_text(html)  # a month name in Russian
    html_id = mailbox["html.1@example.ru"]
    check_page(client, f"/message/{html_id}", "1 remote image was blocked",
               "1 внешнее изображение заблокировано")
    check_page(client, f"/message/{html_id}?images=1", "Remote images are shown.",
               "Внешние изображения показаны.")
    check_page(client, f"/message/{html_id}?view=text", "Show formatted (HTML)",
               "Показать с оформлением (HTML)")
    check_page(client, f"/message/{mailbox['files.1@example.ru']}", "2 attachments",
               "2 вложения")
    # The part left unopened is offered as a download under the file name "part-50".
    check_page(client, f"/message/{mailbox['deep.1@example.ru']}",
               "Parts nested deeper than 50 levels are not opened.",
               "Части с вложенностью глубже 50 уровней не открываются.", data={"part"})
    check_page(client, f"/message/{mailbox['anonymous.1@example.ru']}", "(unknown sender)",
               "(неизвестный отправитель)")
    # The hops' protocols and the verdicts are the servers' words.
    check_page(client, f"/message/{report}/headers", "Delivery path", "Путь доставки",
               data={"ESMTPS", "ESMTPSA", "pass"})
    check_page(client, f"/message/{html_id}/headers", "This message has no Received fields.",
               "В этом сообщении нет полей Received.")
    in_language(client, "ru")
    token = csrf_token(client, f"/message/{html_id}")
    client.post(f"/message/{html_id}/delete", data={"csrf_token": token})
    assert "Сообщение удалено." in visible_text(client.get("/inbox").get_data(as_text=True))


def test_compose_pages(logged_in, mailbox, mail_server):
    client = logged_in
    check_page(client, "/compose", "New message", "Новое сообщение")
    report = mailbox["report.1@example.ru"]
    html = check_page(client, f"/compose?reply={report}", "Reply", "Ответ")
    # The original's own date, written the Russian way (babel's spaces are no-break ones).
    assert "вт, 12 мар. 2024 г., 10:15, Иван Петров пишет:" in visible_text(html)
    # The forwarded block quotes the original's Date field as it was written.
    html = check_page(client, f"/compose?forward={mailbox['files.1@example.ru']}",
                      "Forwarded message", "Пересылаемое сообщение", data={"Thu", "Mar"})
    assert "Приложить также файлы исходного сообщения" in html
    check_page(client, f"/compose?reply={mailbox['anonymous.1@example.ru']}", "someone wrote",
               "Неизвестный отправитель пишет:")
    fields = {"to": "", "subject": "Тема", "body": "Текст"}
    check_page(client, "/compose", "Add at least one recipient", "Укажите хотя бы одного",
               status=400, post=fields)
    html = check_page(client, "/compose", "Your attached files are kept.",
                      "Прикреплённые файлы сохранены.", status=400,
                      post={**fields, "to": "кто-то"}, files=(("смета.txt", b"1;2"),))
    assert "Уже загружены и сохранены для вас." in html
    for language, sent in (("ru", "Сообщение отправлено:"), ("en", "Message sent to")):
        in_language(client, language)
        response = _post(client, "/compose", {**fields, "to": mail_server.address("bob")}, ())
        assert response.status_code == 303
        assert sent in visible_text(client.get("/inbox").get_data(as_text=True))


def test_log_page(logged_in):
    html = check_page(logged_in, "/log", "Protocol log", "Журнал протокола")
    assert "Вход" in visible_text(html) and "успешно" in visible_text(html)


def test_error_pages(app, client):
    app.add_url_rule("/test/abort/<int:code>", "test_abort", lambda code: abort(code))

    def broken() -> str:
        raise RuntimeError("boom")

    app.add_url_rule("/test/broken", "test_broken", broken)
    app.config["MAX_CONTENT_LENGTH"] = 10_000
    check_page(client, "/no/such/page", "Not found", "Не найдено", status=404)
    check_page(client, "/logout", "Not allowed", "Запрос не допускается", status=405)
    check_page(client, "/test/abort/400", "Request refused", "Запрос отклонён", status=400)
    check_page(client, "/test/abort/429", "Too many attempts", "Слишком много попыток",
               status=429)
    check_page(client, "/test/broken", "Something went wrong", "Что-то пошло не так",
               status=500)
    check_page(client, "/language", "Request refused", "Запрос отклонён", status=400,
               post={"lang": "xx"})
    for language, title in (("ru", "Слишком большой объём"), ("en", "Too large")):
        in_language(client, language)
        response = client.post("/login", data={"password": "x" * 20_000})
        assert response.status_code == 413 and title in response.get_data(as_text=True)
        assert language == "en" or not english_left(response.get_data(as_text=True))
    for language, title in (("ru", "Форма устарела"), ("en", "The form has expired")):
        in_language(client, language)
        response = client.post("/logout")
        assert response.status_code == 400 and title in response.get_data(as_text=True)
        assert language == "en" or not english_left(response.get_data(as_text=True))


# -- dates ---------------------------------------------------------------------------------


def test_dates_are_written_in_russian_in_the_servers_time_zone(tmp_path, mail_server):
    app = create_app(app_config(tmp_path, mail_server,
                                BABEL_DEFAULT_TIMEZONE="Asia/Yekaterinburg"))
    try:
        client = app.test_client()
        log_in(client, mail_server)
        mail_server.mailboxes.deliver("alice", report_message())
        fetched(client)
        [message_id] = store_ids(app, mail_server).values()
        # 10:15 in Moscow (+03:00) is 12:15 in Yekaterinburg (+05:00).
        russian = render(client, "ru", f"/message/{message_id}")
        assert "12 мар. 2024 г., 12:15:00" in visible_text(russian)
        english = render(client, "en", f"/message/{message_id}")
        assert "Mar 12, 2024, 12:15:00 PM" in visible_text(english)
        assert "12.03.2024, 12:15" in visible_text(render(client, "ru", "/inbox"))
    finally:
        app.extensions["pochta.store"].close()


@pytest.mark.parametrize(("tz", "zone"), [
    ("Europe/Moscow", "Europe/Moscow"), (":Asia/Novosibirsk", "Asia/Novosibirsk"),
    ("", "UTC"), ("Nowhere/Atlantis", "UTC"), ("MSK-3", "UTC"),
])
def test_the_server_time_zone_comes_from_tz(tz, zone):
    assert server_timezone({"TZ": tz}) == zone
