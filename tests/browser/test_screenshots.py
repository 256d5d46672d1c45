"""Screenshots of every page, saved to docs/screenshots/ on every run (the README links there).

The same fixed mail, dates and window sizes every time, so the pictures change only when
the pages do (the protocol log alone shows times of day). The app here is set up like a
lab's server: the login form offers localhost with the usual ports 995 and 587, and the test
types the real servers' ports into it.
"""

from __future__ import annotations

import re
from collections.abc import Iterator

import pytest
from playwright.sync_api import Page, expect

from tests.browser import mail
from tests.browser.pages import (
    PHONE,
    body_frame,
    fill_mailbox,
    log_in,
    message_states,
    open_message,
    save_screenshot,
)
from tests.browser.recorder import RecordingServer
from tests.support.liveapp import LiveApp, Stopper, real_servers_env, serve_for_test
from tests.support.realservers import RealServers

pytestmark = [pytest.mark.browser, pytest.mark.realservers]

EXPECTED = (
    "login", "inbox", "message-text", "message-attachment", "message-html-blocked",
    "message-html-images", "headers", "compose-reply", "compose", "compose-errors", "log",
    "phone-inbox", "phone-message",
)


@pytest.fixture
def live_app(
    real_servers: RealServers, live_app_stopper: Stopper, request: pytest.FixtureRequest
) -> Iterator[LiveApp]:
    """The app with the login defaults of a typical deployment (ports 995 and 587)."""
    env = {**real_servers_env(real_servers), "POCHTA_POP3_PORT": "995", "POCHTA_SMTP_PORT": "587"}
    yield from serve_for_test(request, live_app_stopper, env)


def test_screenshots_of_every_page(open_page, real_servers: RealServers) -> None:
    saved: list[str] = []

    def shot(page: Page, name: str) -> None:
        saved.append(save_screenshot(page, name).stem)

    real_servers.clear(mail.BOB)
    page: Page = open_page()
    page.goto("/login")
    expect(page.get_by_label("Port").first).to_have_value("995")
    shot(page, "login")

    with RecordingServer() as recorder:
        urls = fill_mailbox(page, real_servers, recorder.url, fill_servers=True)
        shot(page, "inbox")

        for state in message_states(page, urls):
            if state == "message-html-images":  # the picture is in before it is taken
                recorder.wait_for("/banner.png")
                banner = body_frame(page).get_by_role("img", name="Weekly banner")
                assert banner.evaluate("img => img.complete && img.naturalWidth") == 480
            shot(page, state)

    page.goto(urls[mail.PLAIN_SUBJECT])
    page.get_by_role("link", name="Headers").click()
    expect(page.get_by_role("table", name="Received hops in delivery order")).to_be_visible()
    shot(page, "headers")

    page.get_by_role("link", name="Back to the message").click()
    page.get_by_role("link", name="Reply", exact=True).click()
    expect(page.get_by_label("Subject")).to_have_value(f"Re: {mail.PLAIN_SUBJECT}")
    shot(page, "compose-reply")

    page.goto("/compose")
    page.get_by_label("To", exact=True).fill("Боб <bob@>")
    page.get_by_label("Subject").fill(mail.SENT_SUBJECT)
    page.get_by_label("Message", exact=True).fill(mail.SENT_BODY)
    page.get_by_label("Attach files").set_input_files([
        {"name": mail.TEXT_NAME, "mimeType": "text/plain", "buffer": mail.TEXT_BYTES},
        {"name": mail.IMAGE_NAME, "mimeType": "image/png", "buffer": mail.IMAGE_BYTES},
    ])
    shot(page, "compose")
    page.get_by_role("button", name="Send").click()
    expect(page.locator(".field.invalid")).not_to_have_count(0)
    expect(page.locator(".kept-files li")).to_have_count(2)
    shot(page, "compose-errors")
    page.get_by_label("To", exact=True).fill(f"Боб <{mail.BOB}>")
    page.get_by_role("button", name="Send").click()
    expect(page).to_have_url(re.compile(r"/inbox$"))
    real_servers.wait_for_count(mail.BOB, 1)

    page.goto("/log")
    expect(page.locator("details.log-record")).to_have_count(3)
    shot(page, "log")

    phone: Page = open_page(viewport=PHONE, is_mobile=True, has_touch=True)
    log_in(phone, real_servers, mail.ALICE, fill_servers=True)
    shot(phone, "phone-inbox")
    open_message(phone, mail.PLAIN_SUBJECT)
    shot(phone, "phone-message")

    assert saved == list(EXPECTED)
