"""Pochta on a phone (375x667, touch): every page fits the screen's width, nothing scrolls
sideways, and the main actions are on screen and take a tap.
"""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import Page, expect

from tests.browser import mail
from tests.browser.pages import (
    PHONE,
    assert_fits_and_usable,
    body_frame,
    fill_mailbox,
)
from tests.browser.recorder import RecordingServer
from tests.support.realservers import RealServers

pytestmark = [pytest.mark.browser, pytest.mark.realservers]

PHONE_CONTEXT = {"viewport": PHONE, "is_mobile": True, "has_touch": True}


def test_every_page_fits_a_phone(open_page, real_servers: RealServers) -> None:
    page: Page = open_page(**PHONE_CONTEXT)
    page.goto("/login")
    assert_fits_and_usable(
        page,
        page.get_by_label("E-mail address"),
        page.get_by_label("Password"),
        page.get_by_label("POP3 server"),
        page.get_by_role("button", name="Log in"),
    )

    with RecordingServer() as recorder:
        urls = fill_mailbox(page, real_servers, recorder.url)
        main_nav = page.get_by_role("navigation", name="Main")
        assert_fits_and_usable(
            page,
            page.get_by_role("button", name="Get mail"),
            page.get_by_role("searchbox", name="Search mail"),
            page.get_by_role("button", name="Search"),
            main_nav.get_by_role("link", name="Inbox"),
            main_nav.get_by_role("link", name="Write"),
            main_nav.get_by_role("link", name="Protocol log"),
            page.get_by_role("button", name="Log out"),
            *(page.get_by_role("link", name=subject, exact=True) for subject in urls),
        )

        page.goto(urls[mail.PLAIN_SUBJECT])
        assert_fits_and_usable(page, *message_actions(page))
        page.goto(urls[mail.PDF_SUBJECT])
        assert_fits_and_usable(
            page, page.get_by_role("link", name=f"Download {mail.PDF_NAME}"), *message_actions(page)
        )

        page.goto(urls[mail.HTML_SUBJECT])
        body_frame(page)
        assert_fits_and_usable(
            page,
            page.locator("iframe.html-body"),
            page.get_by_role("link", name="Show images"),
            page.get_by_role("link", name="Show as plain text"),
            *message_actions(page),
        )
        page.get_by_role("link", name="Show images").tap()
        body_frame(page)
        assert_fits_and_usable(page, page.get_by_role("link", name="Hide images"))

    page.goto(urls[mail.PLAIN_SUBJECT])
    page.get_by_role("link", name="Headers").tap()
    heading = page.get_by_role("heading", level=1, name="Headers and delivery path")
    expect(heading).to_be_visible()
    assert_fits_and_usable(
        page,
        page.get_by_role("link", name="Back to the message"),
        page.get_by_role("table", name="Received hops in delivery order"),
    )

    page.get_by_role("link", name="Back to the message").tap()
    page.get_by_role("link", name="Reply", exact=True).tap()
    expect(page.get_by_role("heading", level=1, name="Reply")).to_be_visible()
    compose_fields = (
        page.get_by_label("To", exact=True),
        page.get_by_label("Subject"),
        page.get_by_label("Message", exact=True),
        page.get_by_label("Attach files"),
        page.get_by_role("button", name="Send"),
        page.get_by_role("link", name="Cancel"),
    )
    assert_fits_and_usable(page, *compose_fields)
    page.get_by_label("To", exact=True).fill("not an address")
    page.get_by_role("button", name="Send").tap()
    expect(page.locator(".field.invalid")).not_to_have_count(0)
    assert_fits_and_usable(page, *compose_fields)

    page.goto("/log")
    assert_fits_and_usable(page, page.get_by_role("link", name="As plain text"))
    page.goto("/message/no-such-message")
    assert_fits_and_usable(page, page.get_by_role("link", name="Back to Pochta"))
    page.goto("/inbox")
    page.get_by_role("button", name="Log out").tap()
    expect(page).to_have_url(re.compile(r"/login$"))


def message_actions(page: Page) -> list:
    return [
        page.get_by_role("link", name="Back to inbox"),
        page.get_by_role("link", name="Reply", exact=True),
        page.get_by_role("link", name="Reply all"),
        page.get_by_role("link", name="Forward"),
        page.get_by_role("link", name="Headers"),
        page.get_by_role("link", name="Raw source"),
        page.get_by_role("button", name="Delete"),
    ]
