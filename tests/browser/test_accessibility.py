"""axe-core (from the npm registry) on every page: no serious or critical violations of
WCAG 2 A/AA and axe's best practices. Moderate and minor findings are listed at the end of
the test run.
"""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import Page, expect

from tests.browser import mail
from tests.browser.pages import fill_mailbox, message_states
from tests.browser.recorder import RecordingServer
from tests.support.realservers import RealServers

pytestmark = [pytest.mark.browser, pytest.mark.realservers]


def test_no_serious_violations_on_any_page(
    page: Page, real_servers: RealServers, check_accessibility
) -> None:
    page.goto("/login")
    check_accessibility(page, "login")
    page.get_by_label("E-mail address").fill(mail.ALICE)
    page.get_by_label("Password").fill("not the password")
    page.get_by_role("button", name="Log in").click()
    expect(page.get_by_role("alert")).to_be_visible()
    check_accessibility(page, "login with an error")
    page.get_by_label("E-mail address").fill("")
    page.get_by_role("button", name="Log in").click()
    expect(page.locator(".field.invalid")).not_to_have_count(0)
    check_accessibility(page, "login with field errors")

    page.goto("/no-such-page")
    check_accessibility(page, "404 (logged out)")

    with RecordingServer() as recorder:
        urls = fill_mailbox(page, real_servers, recorder.url)
        check_accessibility(page, "inbox after a fetch")
        page.goto("/inbox?q=семинар")
        expect(page.locator(".search-summary")).to_be_visible()
        check_accessibility(page, "inbox search")
        page.goto("/inbox?q=nothing-matches-this")
        check_accessibility(page, "inbox search without results")

        for state in message_states(page, urls):
            check_accessibility(page, state)
        page.get_by_role("link", name="Show as plain text").click()
        check_accessibility(page, "message (HTML as text)")

    page.goto(urls[mail.PLAIN_SUBJECT])
    page.get_by_role("link", name="Headers").click()
    heading = page.get_by_role("heading", level=1, name="Headers and delivery path")
    expect(heading).to_be_visible()
    check_accessibility(page, "headers")

    page.goto(urls[mail.PLAIN_SUBJECT])
    page.get_by_role("link", name="Reply", exact=True).click()
    check_accessibility(page, "compose (reply)")
    page.goto(urls[mail.PDF_SUBJECT])
    page.get_by_role("link", name="Forward").click()
    check_accessibility(page, "compose (forward)")
    page.goto("/compose")
    check_accessibility(page, "compose (new)")
    page.get_by_label("To", exact=True).fill("bob@")
    page.get_by_label("Attach files").set_input_files(
        [{"name": mail.TEXT_NAME, "mimeType": "text/plain", "buffer": mail.TEXT_BYTES}]
    )
    page.get_by_role("button", name="Send").click()
    expect(page.locator(".field.invalid")).not_to_have_count(0)
    check_accessibility(page, "compose with errors and a kept file")

    page.goto("/message/no-such-message")
    check_accessibility(page, "404 (logged in)")
    page.goto("/inbox")
    page.get_by_role("button", name="Log out").click()
    expect(page).to_have_url(re.compile(r"/login$"))


def test_protocol_log_page(page: Page, real_servers: RealServers, check_accessibility) -> None:
    with RecordingServer() as recorder:
        fill_mailbox(page, real_servers, recorder.url)
    page.goto("/log")
    expect(page.locator("pre.transcript").first).to_be_visible()
    check_accessibility(page, "protocol log")


def test_the_russian_interface_passes_too(
    page: Page, real_servers: RealServers, check_accessibility
) -> None:
    """The language switch changes the page's language (lang) and its words, not its structure."""
    page.goto("/login")
    page.get_by_role("button", name="Русский").click()
    expect(page.locator("html")).to_have_attribute("lang", "ru")
    check_accessibility(page, "login (ru)")
    log_in_ru(page, real_servers)
    check_accessibility(page, "inbox (ru)")


def log_in_ru(page: Page, servers: RealServers) -> None:
    page.locator("#email").fill(mail.ALICE)
    page.locator("#password").fill(servers.users[mail.ALICE])
    page.locator("form:has(#email) button[type=submit]").click()
    expect(page).to_have_url(re.compile(r"/inbox$"))



def test_message_body_opened_in_a_window_of_its_own(
    page: Page, real_servers: RealServers, check_accessibility
) -> None:
    """"Open the message text in a new window" shows the sanitized body as a page of its own.

    Its policy forbids every script (CSP sandbox), axe's included, so axe reads the same
    document, fetched with the user's session, from a blank page.
    """
    with RecordingServer() as recorder:
        urls = fill_mailbox(page, real_servers, recorder.url)
        page.goto(urls[mail.HTML_SUBJECT])
        link = page.get_by_role("link", name="Open the message text in a new window")
        response = page.request.get(link.get_attribute("href") or "")
        assert response.ok
        assert "sandbox" in response.headers["content-security-policy"]
        document = page.context.new_page()
        document.set_content(response.text())
        check_accessibility(document, "message body in a window of its own")
