"""Pochta with the keyboard alone: every control reachable with Tab, a visible focus
indicator on each, form fields named by their labels, and the main actions done end to end
with Tab, typing and Enter.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable

import pytest
from playwright.sync_api import Page, expect

from tests.browser import mail
from tests.browser.pages import (
    assert_every_control_reachable_by_tab,
    body_frame,
    focus_ring_contrasts,
    focused,
    has_focus_ring,
    log_in,
    open_message,
    tab_to,
    unlabelled_fields,
    wait_for_fetch,
)
from tests.browser.recorder import RecordingServer
from tests.support.realservers import RealServers

pytestmark = [pytest.mark.browser, pytest.mark.realservers]

LOGIN_ORDER = [
    "email", "password", "username",
    "pop3_host", "pop3_port", "pop3_security",
    "smtp_host", "smtp_port", "smtp_security",
    "keep_on_server", "Log in",
]


def stop_name(info: dict) -> str:
    return info["id"] or info["text"]


def test_log_in_with_the_keyboard(page: Page, real_servers: RealServers) -> None:
    page.goto("/login")
    assert unlabelled_fields(page) == []
    for label in ("E-mail address", "Password", "User name", "POP3 server", "SMTP server",
                  "Keep mail on the server"):
        expect(page.get_by_label(label, exact=True)).to_have_count(1)

    # The address field has the focus on arrival; Tab then walks the form in reading order.
    expect(page.locator("#email")).to_be_focused()
    start = focused(page)
    assert start is not None and start["id"] == "email"
    order = [stop_name(start)]
    for _ in LOGIN_ORDER[1:]:
        page.keyboard.press("Tab")
        info = focused(page)
        assert info is not None and has_focus_ring(info), info
        order.append(stop_name(info))
    assert order == LOGIN_ORDER
    assert_every_control_reachable_by_tab(page)

    page.reload()
    expect(page.locator("#email")).to_be_focused()
    page.keyboard.type(mail.ALICE)
    page.keyboard.press("Tab")
    page.keyboard.type(real_servers.users[mail.ALICE])
    page.keyboard.press("Enter")
    expect(page).to_have_url(re.compile(r"/inbox$"))


def test_read_reply_and_delete_with_the_keyboard(
    page: Page, real_servers: RealServers
) -> None:
    real_servers.clear(mail.ALICE)
    real_servers.deliver_many(mail.ALICE, [mail.plain_cyrillic(), mail.with_pdf()])
    log_in(page, real_servers, mail.ALICE)

    # The first Tab shows the skip link; Enter on it moves the focus to the content.
    page.keyboard.press("Tab")
    skip = page.get_by_role("link", name="Skip to content")
    expect(skip).to_be_focused()
    expect(skip).to_be_in_viewport()
    page.keyboard.press("Enter")
    expect(page.locator("#main")).to_be_focused()

    tab_to(page, "Get mail")
    page.keyboard.press("Enter")
    wait_for_fetch(page, new=2)
    assert_every_control_reachable_by_tab(page)

    tab_to(page, mail.PLAIN_SUBJECT)
    page.keyboard.press("Enter")
    expect(page.get_by_role("heading", level=1, name=mail.PLAIN_SUBJECT)).to_be_visible()
    assert_every_control_reachable_by_tab(page)
    tab_to(page, "Delete")
    tab_to(page, "Reply", backwards=True)
    page.keyboard.press("Enter")

    # The reply form opens with the focus in the text, the address and subject filled in.
    expect(page.get_by_role("heading", level=1, name="Reply")).to_be_visible()
    assert unlabelled_fields(page) == []
    expect(page.locator("#body")).to_be_focused()
    page.keyboard.type("Приду. ")
    assert_every_control_reachable_by_tab(page)
    expect(page.get_by_label("Message", exact=True)).to_have_value(re.compile(r"^Приду\. "))
    tab_to(page, "Send")
    page.keyboard.press("Enter")
    expect(page.get_by_role("status").filter(has_text="Message sent to")).to_be_visible()

    tab_to(page, mail.PDF_SUBJECT)
    page.keyboard.press("Enter")
    expect(page.get_by_role("heading", level=1, name=mail.PDF_SUBJECT)).to_be_visible()
    page.once("dialog", lambda dialog: dialog.accept())
    tab_to(page, "Delete")
    page.keyboard.press("Enter")
    expect(page.get_by_role("status").filter(has_text="Message deleted.")).to_be_visible()
    expect(page.get_by_role("link", name=mail.PDF_SUBJECT)).to_have_count(0)


def test_other_pages_by_keyboard(page: Page, real_servers: RealServers) -> None:
    """Headers, the HTML view, the protocol log and a form with errors: all by Tab."""
    with RecordingServer() as recorder:
        real_servers.clear(mail.ALICE)
        real_servers.deliver(
            mail.ALICE,
            mail.html_with_remote_image(recorder.url("/banner.png"), recorder.url("/trap")),
        )
        log_in(page, real_servers, mail.ALICE)
        page.get_by_role("button", name="Get mail").click()
        wait_for_fetch(page, new=1)
        tab_to(page, mail.HTML_SUBJECT)
        page.keyboard.press("Enter")
        expect(page.get_by_role("link", name="Show images")).to_be_visible()
        assert_every_control_reachable_by_tab(page)
        tab_to(page, "Show images")
        page.keyboard.press("Enter")
        expect(page.get_by_text("Remote images are shown.")).to_be_visible()
        tab_to(page, "Headers")
        page.keyboard.press("Enter")
        heading = page.get_by_role("heading", level=1, name="Headers and delivery path")
        expect(heading).to_be_visible()
        assert_every_control_reachable_by_tab(page)

    page.goto("/log")
    assert_every_control_reachable_by_tab(page)
    tab_to(page, "Write")
    page.keyboard.press("Enter")
    expect(page.get_by_role("heading", level=1, name="New message")).to_be_visible()
    expect(page.locator("#to")).to_be_focused()
    page.keyboard.type("not an address")
    tab_to(page, "Send")
    page.keyboard.press("Enter")
    expect(page.get_by_role("alert").first).to_be_visible()
    assert unlabelled_fields(page) == []
    assert_every_control_reachable_by_tab(page)


def _becomes_true(check: Callable[[], bool], seconds: float) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if check():
            return True
        time.sleep(0.1)
    return check()


def test_long_html_mail_scrolls_with_the_keyboard(page: Page, real_servers: RealServers) -> None:
    real_servers.clear(mail.ALICE)
    real_servers.deliver(mail.ALICE, mail.long_html())
    log_in(page, real_servers, mail.ALICE)
    page.get_by_role("button", name="Get mail").click()
    wait_for_fetch(page, new=1)
    open_message(page, mail.LONG_SUBJECT)
    frame = body_frame(page)
    assert frame.evaluate("() => document.documentElement.scrollHeight > innerHeight")

    tab_to(page, "Show as plain text")
    page.keyboard.press("Tab")
    assert _becomes_true(lambda: (focused(page) or {}).get("tag") == "iframe", seconds=10), (
        "Tab did not enter the message body"
    )
    # Focus moves into the frame's own document a moment after the Tab: a key pressed
    # before that goes nowhere, as it would for a person pressing it at that instant. The
    # body's frame runs no scripts, so its timers never fire: it is polled from here.
    assert _becomes_true(lambda: frame.evaluate("() => document.hasFocus()"), seconds=10)
    for _attempt in range(3):
        page.keyboard.press("PageDown")
        if _becomes_true(lambda: frame.evaluate("() => scrollY > 0"), seconds=5):
            break
    assert frame.evaluate("() => scrollY > 0"), "PageDown did not scroll the message body"


def test_focus_outline_stands_out_from_the_page(page: Page, real_servers: RealServers) -> None:
    page.goto("/login")
    weak = [(what, ratio) for what, ratio in focus_ring_contrasts(page, 16) if ratio < 3]
    assert weak == [], f"focus outlines under 3:1 against their background: {weak}"
