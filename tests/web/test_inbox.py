"""The inbox: newest first, paging, search, unread state, fetch progress."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from email.message import EmailMessage
from email.utils import format_datetime

from tests.web.conftest import fetch_and_wait


def message(n: int, subject: str, body: str = "hello", *, days_ago: int = 0) -> bytes:
    msg = EmailMessage()
    msg["From"] = f"Sender {n} <sender{n}@demo.pochta.test>"
    msg["To"] = "alice@demo.pochta.test"
    msg["Subject"] = subject
    msg["Date"] = format_datetime(datetime(2026, 1, 1, tzinfo=UTC) + timedelta(days=n - days_ago))
    msg.set_content(body)
    return bytes(msg)


def subjects(html: str) -> list[str]:
    return re.findall(r'<a href="/message/[^"]+">([^<]*)</a>', html)


def test_inbox_needs_a_login(client):
    response = client.get("/inbox")
    assert response.status_code == 302
    assert "/login" in response.headers["Location"]


def test_empty_inbox_says_how_to_get_mail(logged_in):
    html = logged_in.get("/inbox").get_data(as_text=True)
    assert "No messages here yet" in html


def test_messages_are_listed_newest_first_with_sender_size_and_date(logged_in, mail_server):
    for n, subject in enumerate(["oldest", "middle", "newest"]):
        mail_server.mailboxes.deliver("alice", message(n, subject))
    assert fetch_and_wait(logged_in)["new"] == 3
    html = logged_in.get("/inbox").get_data(as_text=True)
    assert subjects(html) == ["newest", "middle", "oldest"]
    assert "Sender 2" in html
    assert re.search(r'class="num size">\d+ B<', html)
    assert "2026" in html or "Jan" in html


def test_paging_never_shows_a_page_twice(logged_in, mail_server):
    for n in range(55):
        mail_server.mailboxes.deliver("alice", message(n, f"subject {n:02d}"))
    fetch_and_wait(logged_in)
    first = subjects(logged_in.get("/inbox").get_data(as_text=True))
    second = subjects(logged_in.get("/inbox?page=2").get_data(as_text=True))
    assert len(first) == 50 and len(second) == 5
    assert not set(first) & set(second)
    assert first[0] == "subject 54" and second[-1] == "subject 00"
    assert "Page 1 of 2" in logged_in.get("/inbox").get_data(as_text=True)
    assert logged_in.get("/inbox?page=abc").status_code == 200
    assert subjects(logged_in.get("/inbox?page=999").get_data(as_text=True)) == second


def test_search_finds_subject_sender_and_body_words(logged_in, mail_server):
    mail_server.mailboxes.deliver("alice", message(1, "Отчёт за ноябрь", "квартальный"))
    mail_server.mailboxes.deliver("alice", message(2, "Lunch", "see you at noon"))
    fetch_and_wait(logged_in)
    assert subjects(logged_in.get("/inbox?q=отчёт").get_data(as_text=True)) == ["Отчёт за ноябрь"]
    assert subjects(logged_in.get("/inbox?q=noon").get_data(as_text=True)) == ["Lunch"]
    assert subjects(logged_in.get("/inbox?q=sender2").get_data(as_text=True)) == ["Lunch"]
    html = logged_in.get('/inbox?q="AND NEAR(').get_data(as_text=True)
    assert "Nothing matches" in html


def test_markup_in_subjects_and_names_is_escaped(logged_in, mail_server):
    mail_server.mailboxes.deliver("alice", message(1, '<img src=x onerror="alert(1)">'))
    fetch_and_wait(logged_in)
    html = logged_in.get("/inbox").get_data(as_text=True)
    assert "<img src=x" not in html
    assert "&lt;img src=x onerror=" in html


def test_unread_messages_are_marked(logged_in, mail_server):
    mail_server.mailboxes.deliver("alice", message(1, "unread one"))
    fetch_and_wait(logged_in)
    html = logged_in.get("/inbox").get_data(as_text=True)
    assert '<tr class="unread">' in html
    assert 'class="badge"' in html


def test_a_kept_inbox_page_follows_every_change_of_the_mailbox(logged_in, mail_server):
    mail_server.mailboxes.deliver("alice", message(1, "first"))
    fetch_and_wait(logged_in)
    assert subjects(logged_in.get("/inbox").get_data(as_text=True)) == ["first"]
    assert subjects(logged_in.get("/inbox").get_data(as_text=True)) == ["first"]  # kept
    mail_server.mailboxes.deliver("alice", message(2, "second"))
    fetch_and_wait(logged_in)
    html = logged_in.get("/inbox").get_data(as_text=True)
    assert subjects(html) == ["second", "first"]
    assert html.count('<tr class="unread">') == 2
    link = re.search(r'<a href="(/message/[^"]+)">second</a>', html).group(1)
    logged_in.get(link)  # reading it marks it read
    html = logged_in.get("/inbox").get_data(as_text=True)
    assert html.count('<tr class="unread">') == 1


def test_kept_pages_are_never_shared_between_sessions_or_languages(logged_in, mail_server, app):
    from tests.web.conftest import log_in

    mail_server.mailboxes.deliver("alice", message(1, "mine"))
    fetch_and_wait(logged_in)
    logged_in.get("/inbox")  # kept for this session
    other = app.test_client()
    log_in(other, mail_server, "alice")
    theirs = other.get("/inbox").get_data(as_text=True)
    # The other session's page carries a token of its own: a form posted with it passes.
    token = re.search(r'name="csrf_token" value="([^"]+)"', theirs).group(1)
    response = other.post("/fetch", data={"csrf_token": token},
                          headers={"Accept": "application/json"})
    assert response.status_code == 202
    russian = logged_in.get("/inbox", headers={"Accept-Language": "ru"})
    assert '<html lang="ru">' in russian.get_data(as_text=True)
