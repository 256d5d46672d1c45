"""The whole round trip in a real browser, with JavaScript and without it.

Alice logs in, gets her mail (watching the progress bar), reads a Cyrillic message, downloads
an attachment, replies, writes to Bob with two attachments and logs out; Bob logs in, gets the
mail Postfix delivered, finds both attachments by name, deletes the message and logs out.
Without JavaScript the same forms must do everything: the fetch page refreshes itself until
the fetch is done, and deleting asks nothing.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from playwright.sync_api import Page, expect

from tests.browser import mail
from tests.browser.pages import (
    get_mail,
    log_in,
    log_out,
    message_link,
    open_message,
)
from tests.browser.recorder import RecordingServer
from tests.support.realservers import RealServers

pytestmark = [pytest.mark.browser, pytest.mark.realservers]

REPLY_TEXT = "Буду в 14:30, журнал принесу."


@pytest.fixture
def servers(real_servers: RealServers) -> RealServers:
    for user in (mail.ALICE, mail.BOB):
        real_servers.clear(user)
    return real_servers


def seed_alice(servers: RealServers, recorder: RecordingServer) -> None:
    servers.deliver_many(mail.ALICE, [
        mail.plain_cyrillic(),
        mail.with_pdf(),
        mail.html_with_remote_image(recorder.url("/banner.png"), recorder.url("/trap")),
    ])


@pytest.mark.parametrize("javascript", [True, False], ids=["js", "no-js"])
def test_read_reply_send_with_attachments_and_delete(
    open_page, servers: RealServers, javascript: bool
) -> None:
    page: Page = open_page(java_script_enabled=javascript)
    dialogs: list[str] = []
    page.on("dialog", lambda dialog: (dialogs.append(dialog.message), dialog.accept()))
    with RecordingServer() as recorder:
        seed_alice(servers, recorder)

        log_in(page, servers, mail.ALICE)
        expect(page.get_by_text("No messages here yet.")).to_be_visible()
        get_mail(page, new=3)
        for subject in (mail.PLAIN_SUBJECT, mail.PDF_SUBJECT, mail.HTML_SUBJECT):
            expect(message_link(page, subject)).to_be_visible()
        assert recorder.requests == [], "the inbox loaded a remote image"

        read_and_download(page)
        reply(page)
        write_to_bob(page)
        log_out(page)
        assert recorder.requests == [], "a remote image was loaded without being asked for"

    servers.wait_for_count(mail.BOB, 2)  # the reply and the new message, through Postfix
    log_in(page, servers, mail.BOB)
    get_mail(page, new=2)
    expect(message_link(page, f"Re: {mail.PLAIN_SUBJECT}")).to_be_visible()
    check_received_and_delete(page)
    assert dialogs == (["Delete this message from Pochta?"] if javascript else [])
    log_out(page)


def read_and_download(page: Page) -> None:
    """Read the Cyrillic text, then download the PDF of another message byte for byte."""
    open_message(page, mail.PLAIN_SUBJECT)
    body = page.locator(".text-body")
    expect(body).to_contain_text("Семинар по почтовым протоколам переносится на четверг")
    expect(body.locator("blockquote")).to_have_text("> Во сколько начинаем?")
    expect(page.locator(".message-fields")).to_contain_text("Боб Смирнов")

    page.get_by_role("link", name="Back to inbox").click()
    open_message(page, mail.PDF_SUBJECT)
    with page.expect_download() as download_info:
        page.get_by_role("link", name=f"Download {mail.PDF_NAME}").click()
    download = download_info.value
    assert download.suggested_filename == mail.PDF_NAME
    assert Path(download.path()).read_bytes() == mail.PDF_BYTES


def reply(page: Page) -> None:
    """Reply to the Cyrillic message: the form comes prefilled, the text quoted."""
    page.get_by_role("link", name="Back to inbox").click()
    open_message(page, mail.PLAIN_SUBJECT)
    page.get_by_role("link", name="Reply", exact=True).click()
    expect(page.get_by_role("heading", level=1, name="Reply")).to_be_visible()
    expect(page.get_by_label("To", exact=True)).to_have_value(f"Боб Смирнов <{mail.BOB}>")
    expect(page.get_by_label("Subject")).to_have_value(f"Re: {mail.PLAIN_SUBJECT}")
    body = page.get_by_label("Message", exact=True)
    quoted = body.input_value()
    assert "> Семинар по почтовым протоколам переносится на четверг, 14:30" in quoted
    assert ">> Во сколько начинаем?" in quoted
    body.fill(f"{REPLY_TEXT}\n\n{quoted}")
    page.get_by_role("button", name="Send").click()
    expect(page).to_have_url(re.compile(r"/inbox$"))
    expect(page.get_by_role("status").filter(has_text="Message sent to")).to_contain_text(
        mail.BOB
    )


def write_to_bob(page: Page) -> None:
    """A new message with a Cyrillic subject and two files, one with a Cyrillic name."""
    page.get_by_role("navigation", name="Main").get_by_role("link", name="Write").click()
    expect(page.get_by_role("heading", level=1, name="New message")).to_be_visible()
    page.get_by_label("To", exact=True).fill(mail.BOB)
    page.get_by_label("Subject").fill(mail.SENT_SUBJECT)
    page.get_by_label("Message", exact=True).fill(mail.SENT_BODY)
    page.get_by_label("Attach files").set_input_files([
        {"name": mail.TEXT_NAME, "mimeType": "text/plain", "buffer": mail.TEXT_BYTES},
        {"name": mail.IMAGE_NAME, "mimeType": "image/png", "buffer": mail.IMAGE_BYTES},
    ])
    page.get_by_role("button", name="Send").click()
    expect(page).to_have_url(re.compile(r"/inbox$"))
    expect(page.get_by_role("status").filter(has_text="Message sent to")).to_contain_text(
        mail.BOB
    )


def check_received_and_delete(page: Page) -> None:
    """Bob sees both files by name, gets one back byte for byte, and deletes the message."""
    open_message(page, mail.SENT_SUBJECT)
    expect(page.locator(".text-body")).to_contain_text("Боб, отчёт и схема во вложении.")
    attachments = page.get_by_role("region", name="2 attachments")
    expect(attachments.get_by_role("link")).to_have_count(2)
    expect(attachments.get_by_role("link", name=f"Download {mail.TEXT_NAME}")).to_be_visible()
    expect(attachments.get_by_role("link", name=f"Download {mail.IMAGE_NAME}")).to_be_visible()
    with page.expect_download() as download_info:
        attachments.get_by_role("link", name=f"Download {mail.TEXT_NAME}").click()
    assert download_info.value.suggested_filename == mail.TEXT_NAME
    assert Path(download_info.value.path()).read_bytes() == mail.TEXT_BYTES

    page.get_by_role("button", name="Delete").click()
    expect(page).to_have_url(re.compile(r"/inbox$"))
    expect(page.get_by_role("status").filter(has_text="Message deleted.")).to_be_visible()
    expect(message_link(page, mail.SENT_SUBJECT)).to_have_count(0)
    expect(message_link(page, f"Re: {mail.PLAIN_SUBJECT}")).to_be_visible()
